"""``python -m mlfer`` (and ``torchrun -m mlfer``) runs the command line."""

import sys

from mlfer.cli import main

sys.exit(main())
