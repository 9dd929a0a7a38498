"""The project's errors for bad input: what a user can cause and fix, as opposed to a bug.

``lwdvc`` (the command) prints a :class:`UserError` as one line and exits with status 2; every
other exception propagates with its traceback. Each error also inherits the builtin it stands
for, so code that catches ``ValueError`` (or ``KeyError``, ``RuntimeError``) keeps working.

The family:

* :class:`UserError` - the base.
* :class:`BadArgumentError` (``ValueError``) - a bad option or setting; :class:`ConfigError` for
  a training or pruning configuration (``lwdvc.prune.PruneConfigError`` is one).
* :class:`InputFileError` (``ValueError``) - a file that exists but is not what it should be (an
  unreadable video, a YUV file whose size fits no frame size, a foreign model description);
  ``lwdvc.checkpoint.CheckpointError`` is one.
* :class:`UnknownNameError` (``KeyError``) - no model or pretrained codec of that name.
* ``lwdvc.train.TrainingDiverged`` (``RuntimeError``) - the loss, a gradient, the weights or values in
  the forward pass became NaN/inf.

A missing path stays ``FileNotFoundError`` (the command treats it as a user error as well).
"""
from __future__ import annotations

__all__ = ["BadArgumentError", "ConfigError", "InputFileError", "UnknownNameError", "UserError"]


class UserError(Exception):
    """An error in what the user gave (options, settings, files), with a message that says what."""


class BadArgumentError(UserError, ValueError):
    """A bad value of an option or argument."""


class ConfigError(BadArgumentError):
    """A bad training or pruning configuration."""


class InputFileError(UserError, ValueError):
    """A file that exists but cannot be used: unreadable, the wrong size or of the wrong kind."""


class UnknownNameError(UserError, KeyError):
    """No model (or pretrained codec) of the given name."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""
