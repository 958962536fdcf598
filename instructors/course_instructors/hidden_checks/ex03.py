"""Exercise 03, hidden checks: no prompts at all, and the same races with the prompts in another order."""

from __future__ import annotations

from course_utils.checks.base import expect_equal, task_check
from course_utils.checks.env import Env
from course_utils.checks.ex03 import PROMPTS, expect_finish_order, expect_first, run_learner

REORDERED = [PROMPTS[3], PROMPTS[0], PROMPTS[2], PROMPTS[1]]


@task_check("03.1", "no prompts, no replies", visibility="after_published")
def gathers_nothing(env: Env) -> None:
    got, _ = run_learner(env, [])
    expect_equal(got, [], "gather_replies(client, model, [], max_tokens)")


@task_check("03.2", "the same with the prompts in another order", visibility="after_published", timeout=20)
def order_reordered(env: Env) -> None:
    expect_finish_order(env, REORDERED)


@task_check("03.3", "the same when the fastest prompt comes first", visibility="after_published", timeout=20)
def first_reordered(env: Env) -> None:
    expect_first(env, REORDERED)
