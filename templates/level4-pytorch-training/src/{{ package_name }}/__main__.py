"""`python -m <package> train`, the form torchrun runs: `torchrun ... -m <package>`."""

import sys

from .cli import main

sys.exit(main())
