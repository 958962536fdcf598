"""`python -m course_instructors COMMAND ...`: the checkout's `course` command (see `console`)."""

import sys

from .console import main

sys.exit(main())
