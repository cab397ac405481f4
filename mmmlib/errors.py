"""Errors that the command line turns into one sentence and an exit code (docs/contract.md)."""


class MMMError(Exception):
    """Base error: its message is a sentence fit to show a user."""

    exit_code = 1


class InputError(MMMError):
    """The data, config or model is not acceptable (exit 1)."""

    exit_code = 1


class UsageError(MMMError):
    """Wrong arguments or an unreadable file (exit 2)."""

    exit_code = 2
