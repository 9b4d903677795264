"""Errors in the user's input: the CLI prints the message as one line, no traceback."""


class UserError(Exception):
    """Something the user can fix: a setting, a path, a missing device."""


class ConfigError(UserError):
    """A configuration value that is unknown, of the wrong type or impossible here."""


class CheckpointError(UserError):
    """A checkpoint or run folder that is missing or unreadable."""
