"""The package's errors and the exit codes the command line gives them.

Every error the package raises on purpose is an `Error`, so a caller can catch them all
with one `except`. The command line prints one as a single line on stderr and exits
with its `exit_code`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the job ran and its result is a failure (a check, a service)
EXIT_USAGE = 2  # bad arguments, settings or input: nothing done (argparse uses 2 too)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_BROKEN_PIPE = 141  # the reader of our output went away (`... | head`)


class Error(Exception):
    """Base of every error this package raises on purpose."""

    exit_code: int = EXIT_FAILURE


class ConfigError(Error):
    """A setting, argument or input file is wrong; the message says which and why."""

    exit_code = EXIT_USAGE
