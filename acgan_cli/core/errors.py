"""Errors the library raises: each carries a one-line message and a hint for the user."""

from __future__ import annotations


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type's name when it has none): for one-line errors.

    With `limit`, a longer line is cut to that many characters, the last one an ellipsis: for
    messages that quote file contents.
    """
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


class Notice(UserWarning):
    """Something the user should know that does not stop the command (a fallback it took).

    Raised with `warnings.warn`; the CLI prints it as one `note:` line on stderr, in the words of
    `cli_message` where the message names Python arguments that the CLI calls by its options.
    """

    def __init__(self, message: str, cli_message: str | None = None) -> None:
        super().__init__(message)
        self.cli_message = cli_message


class AcganError(Exception):
    """A problem the user can fix; the CLI prints `error: message` and `hint: hint`.

    The hint names what to change as a caller in Python gives it (`precision 'fp32'`, `run_dir`);
    where the CLI calls that by its options (`--precision fp32`, `--out`), `cli_hint` says it so, for
    the CLI to print instead (None: the hint serves both). `cli_message` does the same for a message
    that names an argument (`download=False` against `--no-download`).
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        cli_hint: str | None = None,
        cli_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.cli_hint = cli_hint
        self.cli_message = cli_message
        # A traceback, as a notebook or a script shows one, ends with the hint too (Python 3.11 on):
        # it showed `ConfigError: message` alone, the fix only in `.hint`.
        self.hint_note = f"hint: {hint}" if hint else None
        if self.hint_note is not None and hasattr(self, "add_note"):
            self.add_note(self.hint_note)


class UsageError(AcganError):
    """An option value that cannot work (exit code 2).

    `option` names the config field ("batch_size") and `detail` says what is wrong with its
    value ("must be at least 1 (got 0)"), so the CLI can name its own option: the message names the
    field as a caller in Python gives it. `detail` is in the CLI's words, as it follows the option's.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        option: str | None = None,
        detail: str | None = None,
        *,
        cli_hint: str | None = None,
        cli_message: str | None = None,
    ) -> None:
        super().__init__(message, hint, cli_hint=cli_hint, cli_message=cli_message)
        self.option = option
        self.detail = detail or message


class ConfigError(UsageError):
    """A configuration value outside its valid range."""


class DeviceError(UsageError):
    """A device that does not exist on this machine."""


class DataError(AcganError):
    """A dataset that is missing, cannot be downloaded, or is malformed."""


class CheckpointError(AcganError):
    """A file that is not a readable acgan checkpoint."""


class RunDirError(AcganError):
    """A run folder that cannot be created or would be overwritten."""


class ExportError(AcganError):
    """An export that could not be written or did not compute the generator's images."""


class DivergedError(AcganError):
    """A loss or the model's state became NaN or infinite; training stopped without saving that state."""

    def __init__(self, step: int, checkpoint: str | None, exact: bool = True, log: str | None = None) -> None:
        kept = (
            f"the last good checkpoint is {checkpoint}"
            if checkpoint
            else "no checkpoint had been written yet" + (f" (the losses are in {log})" if log else "")
        )
        # `exact`: the step is the first bad one; otherwise the state was found bad at this step.
        when = f"at step {step}" if exact else f"by step {step}"
        super().__init__(
            f"training diverged: a loss or the model's state became NaN or infinite {when}; {kept}",
            hint="resume from the last good checkpoint with a lower lr "
            "(train(dataclasses.replace(config, lr=...), resume=...)), or start a new run with another seed"
            if checkpoint
            else "start a new run with a lower lr or another seed",
            cli_hint="--resume from the last good checkpoint with a lower --lr, or start a new run with another --seed"
            if checkpoint
            else "start a new run with a lower --lr or another --seed",
        )
        self.step = step
        self.checkpoint = checkpoint
        self._made_with = (step, checkpoint, exact, log)

    def __reduce__(self) -> tuple[type, tuple[int, str | None, bool, str | None]]:
        # pickle and copy call __init__ with these: a worker process's divergence re-raised in its
        # parent (multiprocessing, concurrent.futures) failed with "missing argument 'checkpoint'"
        return type(self), self._made_with
