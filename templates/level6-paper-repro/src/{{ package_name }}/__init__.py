"""A research repository: experiments x seeds -> summary, tables, figures -> paper."""

__version__ = "0.1.0"
