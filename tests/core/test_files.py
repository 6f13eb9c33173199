import os
from pathlib import Path

import pytest

from acgan_cli.core.errors import UsageError
from acgan_cli.core.files import output_destination


def test_an_out_through_a_loop_of_links_is_told_in_the_argument_a_caller_passes(tmp_path: Path) -> None:
    """export_generator(out=LOOP) was told to "choose another --out"; the CLI's words are the cli_hint."""
    loop = tmp_path / "g.onnx"
    os.symlink(loop, loop)
    with pytest.raises(UsageError) as caught:
        output_destination(loop)
    assert (caught.value.message, caught.value.option) == (
        f"{loop} leads through symbolic links that loop",
        "out",
    )
    assert caught.value.hint == "fix the links, or choose another out"
    assert caught.value.cli_hint == "fix the links, or choose another --out"
    assert loop.is_symlink()
