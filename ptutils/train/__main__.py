"""``python -m ptutils.train``: the command (a module of its own, so that ``import ptutils``,
which imports :mod:`ptutils.train`, does not import what ``-m`` is about to run)."""

import sys

from . import main

sys.exit(main())
