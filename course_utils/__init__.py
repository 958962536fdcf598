"""Helpers for the *Streaming with Claude* course: the simulator, the SSE parser, chat history, resilience, the web
app, the grader and the displays. Notebooks start with `from course_utils import setup; course = setup()`."""

from .mode import DEFAULT_MODEL, Course, setup

__all__ = ["DEFAULT_MODEL", "Course", "setup"]
