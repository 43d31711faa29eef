"""``python -m coursekit.grade``: see :mod:`coursekit.grade.cli`."""

import sys

from coursekit.grade.cli import main

sys.exit(main())
