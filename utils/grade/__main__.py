"""``python -m utils.grade``: see :mod:`utils.grade.cli`."""

import sys

from utils.grade.cli import main

sys.exit(main())
