"""Checks only the grader runs: edge cases the self-checks leave to the learner. Not in the learners' bundle."""
