"""One result format, Gradescope's `results.json`, per learner; the feedback file and the class CSV are folds over it.

{"score": 7.0, "execution_time": 12.4, "output": "...", "visibility": "visible", "stdout_visibility": "hidden",
 "tests": [{"name": "01.1 collect_text: joins the text of every text delta", "number": "01.1", "score": 1.0,
            "max_score": 1.0, "status": "passed", "output": "...", "visibility": "visible"}, ...],
 "extra_data": {"learner": "ada", "max_score": 8.0, "exercises": {"01": {...}}}}
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from course_utils.checks import exercise

from ..hidden_checks import with_hidden

MARK = {"passed": "✅", "failed": "❌"}


def learner_results(learner: str, notebooks: list[dict[str, Any]], expected: Iterable[str] = ()) -> dict[str, Any]:
    """Gradescope's results.json for one learner, from the graded notebooks (and the exercises they owed)."""
    by_exercise = {nb["exercise"]: nb for nb in notebooks}
    for missing in sorted(set(expected) - set(by_exercise)):
        by_exercise[missing] = not_submitted(missing)
    tests, exercises, seconds = [], {}, 0.0
    for ex_id in sorted(by_exercise):
        nb = by_exercise[ex_id]
        seconds += nb.get("seconds", 0.0)
        names = {t.id: t.name for t in exercise(ex_id).tasks.values()}
        for o in nb["outcomes"]:
            status = "passed" if o["kind"] == "passed" else "failed"
            tests.append(
                {
                    "name": f"{o['task']} {names.get(o['task'], '')}: {o['title']}",
                    "number": o["task"],
                    "score": float(o["points"]),
                    "max_score": float(o["max_points"]),
                    "status": status,
                    "output": _test_output(o),
                    "visibility": o["visibility"],
                    "tags": [ex_id, o["task"], o["kind"]],
                }
            )
        exercises[ex_id] = {
            "path": nb.get("path"),
            "seconds": nb.get("seconds", 0.0),
            "notes": nb.get("notes", []),
            "tampering": nb.get("tampering", []),
            "grader_error": nb.get("grader_error"),
        }
    score = sum(t["score"] for t in tests)
    maximum = sum(t["max_score"] for t in tests)
    results = {
        "score": round(score, 4),
        "execution_time": round(seconds, 1),
        "output": "",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"learner": learner, "max_score": round(maximum, 4), "exercises": exercises},
    }
    results["output"] = _summary(results)
    return results


def not_submitted(exercise_id: str) -> dict[str, Any]:
    """A graded-notebook record for an exercise the learner did not hand in: every check 0, saying why."""
    checks = with_hidden(exercise_id)
    return {
        "exercise": exercise_id,
        "path": None,
        "seconds": 0.0,
        "notes": [f"Exercise {exercise_id} was not submitted."],
        "outcomes": [
            {
                "task": c.task,
                "key": c.key,
                "title": c.title,
                "kind": "not_run",
                "points": 0.0,
                "max_points": c.points,
                "message": "not submitted.",
                "visibility": c.visibility,
                "printed": "",
            }
            for c in checks.checks
        ],
    }


def _test_output(o: Mapping[str, Any]) -> str:
    text = "Passed." if o["kind"] == "passed" else o["message"] or o["kind"]
    if o.get("printed"):
        text += f"\n\nYour code printed:\n{o['printed']}"
    return text


def _summary(results: Mapping[str, Any]) -> str:
    extra = results["extra_data"]
    lines = [f"{extra['learner']}: {results['score']:g} / {extra['max_score']:g} points."]
    for ex_id, info in extra["exercises"].items():
        lines += [f"[{ex_id}] {note}" for note in info["notes"]]
    return "\n".join(lines)


def feedback(results: Mapping[str, Any]) -> str:
    """A readable Markdown feedback file: a table per exercise, then what failed and why, then notes."""
    extra = results["extra_data"]
    out = [
        f"# Feedback for {extra['learner']}",
        "",
        f"**Score: {results['score']:g} / {extra['max_score']:g} points.**",
        "",
    ]
    for ex_id, info in extra["exercises"].items():
        tests = [t for t in results["tests"] if t["tags"][0] == ex_id]
        got, of = sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)
        name = Path(info["path"]).name if info.get("path") else "not submitted"
        out += [f"## Exercise {ex_id} ({name}): {got:g} / {of:g}", "", "| check | points | result |", "|---|---|---|"]
        for t in tests:
            hidden = " (hidden)" if t["visibility"] != "visible" else ""
            out.append(f"| {t['name']}{hidden} | {t['score']:g} / {t['max_score']:g} | {MARK[t['status']]} |")
        fixes = _what_to_fix([t for t in tests if t["status"] == "failed"])
        if fixes:
            out += ["", "What to fix:", ""] + fixes
        if info["notes"]:
            out += ["", "While running your notebook:", ""] + [f"- {note}" for note in info["notes"]]
        out.append("")
    return "\n".join(out)


def _what_to_fix(failed: list[dict[str, Any]]) -> list[str]:
    """One line per failed check, or one per task when all its failures say the same thing."""
    lines: list[str] = []
    for number in dict.fromkeys(t["number"] for t in failed):
        tests = [t for t in failed if t["number"] == number]
        if len(tests) > 1 and len({t["output"] for t in tests}) == 1:
            task = tests[0]["name"].partition(":")[0]
            lines.append(f"- **{task}** ({len(tests)} checks): {_one_paragraph(tests[0]['output'])}")
        else:
            lines += [f"- **{t['name']}**: {_one_paragraph(t['output'])}" for t in tests]
    return lines


def _one_paragraph(text: str) -> str:
    text = text.replace("\n\nYour code printed:\n", " — your code printed: ")
    text = " ".join(text.split())
    return text if len(text) <= 600 else text[:597] + "..."


def task_scores(results: Mapping[str, Any]) -> dict[str, float]:
    """Points per task id ("01.1") in one learner's results."""
    scores: dict[str, float] = {}
    for t in results["tests"]:
        scores[t["number"]] = scores.get(t["number"], 0.0) + t["score"]
    return scores


def class_csv(by_learner: Mapping[str, Mapping[str, Any]]) -> str:
    """The class's grades: a row per learner, a column per task, and the total."""
    tasks = sorted({number for results in by_learner.values() for number in task_scores(results)})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["learner", *tasks, "total", "max"])
    for learner in sorted(by_learner):
        results = by_learner[learner]
        scores = task_scores(results)
        writer.writerow(
            [
                learner,
                *(f"{scores.get(t, 0.0):g}" for t in tasks),
                f"{results['score']:g}",
                f"{results['extra_data']['max_score']:g}",
            ]
        )
    return buffer.getvalue()


def write_learner(out: Path, learner: str, results: Mapping[str, Any]) -> Path:
    """Write `OUT/LEARNER/results.json` and `feedback.md`; returns the folder."""
    folder = out / learner
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "feedback.md").write_text(feedback(results), encoding="utf-8")
    return folder


def read_class(out: Path) -> dict[str, dict[str, Any]]:
    """Every learner's results.json under a grading output folder (to rebuild the CSV)."""
    return {p.parent.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*/results.json"))}
