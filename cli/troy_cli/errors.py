"""Errors the CLI reports and the exit code each one means.

Exit codes: 0 success (for ``release`` and ``rollback``: the build is live), 1 the operation failed
(the API refused it, the build failed, the server could not be reached), 2 usage or configuration
errors (bad arguments, no configuration, token rejected), 130 interrupted.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """Something to tell the user on stderr, then exit with ``exit_code``."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CliError):
    exit_code = EXIT_USAGE


class ConfigError(CliError):
    exit_code = EXIT_USAGE
