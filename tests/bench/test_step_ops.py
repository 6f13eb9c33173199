import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PHASES = [
    "noise and labels",
    "G forward",
    "D forward, call 1",
    "losses, backward and Adam of G",
    "moving average, stats",
    "D forward, call 2",
    "losses, backward and Adam of D",
    "stats",
]


def test_step_ops_counts_one_step_by_phase() -> None:
    # bench/step_ops.py reaches into the Trainer's step (its optimizer calls, D's calls): it
    # stopped working once when those were renamed, and nothing noticed until it was run.
    done = subprocess.run(
        [sys.executable, "bench/step_ops.py", "--precision", "fp32"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    first, *rows = done.stdout.strip().splitlines()
    total = re.fullmatch(r"(\d+) operations a step \(fp32, D called 2 times\)", first)
    assert total, first
    counts = {}
    for row in rows:
        phase, count = re.fullmatch(r"  (.+?)\s{2,}(\d+)  .*", row).groups()
        counts[phase] = int(count)
    assert list(counts) == PHASES  # every phase, in the order the step runs them
    assert all(counts.values()) and sum(counts.values()) == int(total.group(1))
