"""Errors a user can cause.

Every error a user can fix (bad flag, unknown model, unreachable server, missing tool) is a
:class:`UsageError` subclass whose message names the fix. The front door prints it as one line and
exits with code 2. Anything else is a bug and may show a traceback.

    UsageError
    ├── ConfigError        a flag or spec value is out of range or inconsistent
    ├── ModelError         unknown model, model file that does not fit, wrong shape or dtype
    ├── BackendError       unknown backend, device or provider that is not available
    ├── ServerError        server unreachable, port in use, bad access token
    └── ToolMissingError   an external tool (nvidia-smi, apptainer, sbatch, ...) is not installed
"""

from __future__ import annotations

EXIT_USAGE = 2


class UsageError(Exception):
    """An error the user can fix; the message says how. Exit code 2."""


class ConfigError(UsageError):
    """A flag or spec value is out of range or inconsistent with another."""


class ModelError(UsageError):
    """Unknown model, or a model/input that does not fit its specification."""


class BackendError(UsageError):
    """Unknown backend, or a device/provider that is not available here."""


class ServerError(UsageError):
    """The inference server cannot be reached, started or authenticated against."""


class ToolMissingError(UsageError):
    """An external command-line tool or library is not installed."""
