"""The instructors' room: the release tool, the grader and the hidden checks. Learners never get this package.

It imports the learners' package (`course_utils`: the public checks, the simulator), never the other way round.
It lives in the course's repository only: `pip install -e ./instructors` (the checkout's `./course` does it).
"""
