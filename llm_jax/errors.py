"""The one family of user errors: the CLI prints the message as one line, with no traceback.

`exit_code`: 2 for configuration and command-line mistakes, 1 for the rest."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input; the message alone says what and where."""

    exit_code = 1


class ConfigError(UserError):
    """An experiment reference, config key or override value."""

    exit_code = 2


class DataError(UserError):
    """Training or evaluation data, or a tokenizer, named by file and line (or field)."""


class ModelFileError(UserError, ValueError):
    """A model folder or checkpoint this project cannot read (or a model it cannot write)."""


class RunError(UserError):
    """A run directory that cannot be used as asked (held by another job, unreadable, ...)."""


class RunInUseError(RunError):
    """The run directory is held by another job (named by host, pid and start time)."""


class CheckpointError(RunError):
    """No usable checkpoint although some exist, or a checkpoint could not be written."""


class Preempted(RuntimeError):  # noqa: N818 - a stop reason, not a failure
    """SIGTERM/SIGINT arrived; a checkpoint was written before stopping."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
