"""`python -m <package>` runs the same command line as the console script."""

from .commandline import console_script

console_script()
