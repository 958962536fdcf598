"""`python -m course_instructors.grade SUBMISSION... [--out DIR] [--csv FILE] [--timeout S] [--jobs N]`"""

import sys

from .cli import main

sys.exit(main())
