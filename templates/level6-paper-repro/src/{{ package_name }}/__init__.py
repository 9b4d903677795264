"""A research repository: experiments x seeds -> summary, tables, figures -> paper."""

import os

# x86-64 CPUs of different generations round differently: torch picks AVX-512, AVX2 or
# plain kernels by CPU, and MKL a code path of its own. Their portable paths give every
# x86-64 CPU, Intel or AMD, the same bytes for the same run, so a reviewer's
# `reproduce` rewrites none of the committed results; for models this small they cost
# no measurable time. Set on import, before torch runs an operation (both are read
# once, at the first); a value already in the environment is kept. Run processes,
# spawned by the pool or submitit, inherit them.
os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

__version__ = "0.1.0"
