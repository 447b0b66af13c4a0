"""``python -m ptutils.classroom <notebooks-dir> <out-dir>``: write the student notebooks and hidden tests."""

import sys

from .student import main

sys.exit(main())
