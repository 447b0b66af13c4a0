"""``python -m ptutils.classroom <notebooks-dir> <out-dir>``, the same as the command ``ptutils-student``: write the
student notebooks and hidden tests (:mod:`ptutils.classroom.student`)."""

import sys

from .student import main

sys.exit(main())
