"""The package's errors and the exit codes the command line gives them.

Every error the package raises on purpose is an `Error`, so a caller can catch them all
with one `except`. The command line prints one as a single line on stderr and exits
with its `exit_code`; anything else is a bug and keeps its traceback.

The exit codes are the same in every project made from this template:
0 done; 1 the job ran and its result is a failure; 2 nothing was done, because an
argument, setting or input was wrong; 3 a service the job calls failed it; 4 the
project's state stops the command until you act; 130 interrupted; 141 the reader of
the output went away.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the job ran and its result is a failure (a check, a test, a metric)
EXIT_USAGE = 2  # bad arguments, settings or input: nothing done (argparse uses 2 too)
EXIT_SERVICE = 3  # a service failed: unreachable, timed out, refused, rate limited
EXIT_BLOCKED = 4  # the project's state blocks the command: unsaved work, a stopped step
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
EXIT_BROKEN_PIPE = 141  # the reader of our output went away (`... | head`)


class Error(Exception):
    """Base of every error this package raises on purpose."""

    exit_code: int = EXIT_FAILURE


class ConfigError(Error):
    """A setting, argument or input file is wrong; the message says which and why."""

    exit_code = EXIT_USAGE


class ServiceError(Error):
    """A service the job calls failed it; the message says which and how."""

    exit_code = EXIT_SERVICE


class BlockedError(Error):
    """The project's state stops the command; the message says what to do first."""

    exit_code = EXIT_BLOCKED
