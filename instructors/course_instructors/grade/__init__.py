"""The instructor's autograder: `python -m course_instructors.grade SUBMISSION... [--out DIR] [--csv FILE] [--timeout S]
[--jobs N]`.

Each exercise notebook runs in a fresh kernel (nbclient) against the course's simulator, offline, with per-cell time
limits; then every check of its tasks, public and hidden, runs as its own cell with its own time limit. The results
are Gradescope's `results.json` per learner, a Markdown feedback file, and one CSV for the class.

It is not a sandbox: submissions run with the grader's rights. Grade in a throwaway container (docs/instructors.md).
"""

import sys

# nbformat validates with jsonschema, which imports the optional `rfc3987_syntax` when installed; that module builds
# a grammar at import (1.5-4 s here) in every worker process, for IRI formats no notebook schema uses. Skip it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]  # None blocks an import: typeshed has no say

from .cli import Submission, find_submissions, grade, main  # noqa: E402
from .results import class_csv, feedback, learner_results, read_class  # noqa: E402
from .runner import Job, grade_notebook  # noqa: E402

__all__ = [
    "Job",
    "Submission",
    "class_csv",
    "feedback",
    "find_submissions",
    "grade",
    "grade_notebook",
    "learner_results",
    "main",
    "read_class",
]
