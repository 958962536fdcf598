"""The grader's side inside the learner's kernel: loaded from disk by the first cell, before any submission code.

It keeps what it needs out of the submission's reach as far as plain Python allows (this is not a sandbox):
- the checks are loaded fresh from disk under a random package name, so patching `course_utils.checks` in
  `sys.modules` changes nothing;
- the functions the checks and this file rely on (builtins, json, hmac, time, the SDK, the simulator...) are
  fingerprinted before the submission runs; a change is undone before each check and reported as tampering;
- each result travels back as one line signed with a per-run secret (HMAC over the grader's nonce for that check),
  written to the kernel's own stdout object captured now, so printed fakes or a replaced `sys.stdout` are useless.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import importlib
import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PREFIX = "course-grade/v1 "  # lines the learner prints with it are only candidates: the signature decides
WATCHED = (
    "builtins",
    "json",
    "hmac",
    "hashlib",
    "importlib",
    "time",
    "signal",
    "inspect",
    "threading",
    "io",
    "contextlib",
    "reprlib",
    "anthropic",
    "httpx2",
    "course_utils",
)
VOLATILE_BUILTINS = {
    "input",
    "raw_input",
    "getpass",
    "exit",
    "quit",
    "get_ipython",
    "display",
    "_",
    "__",
    "___",
    "help",
    "copyright",
    "credits",
    "license",
}
_FINGERPRINTED = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    type,
    classmethod,
    staticmethod,
    property,
)

_harness: Harness | None = None


def install(config: dict[str, Any]) -> None:
    """Called by the bootstrap cell with the grader's configuration for this kernel."""
    global _harness
    _harness = Harness(config)


def run(key: str, nonce: str) -> None:
    """Called by each check cell: run one check and write its signed result."""
    if _harness is None:
        raise RuntimeError("the grading harness was not installed")
    _harness.run(key, nonce)


class Harness:
    """Runs the exercise's checks on demand against the kernel's user namespace."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._key = bytes.fromhex(config["secret"])
        self._out = sys.stdout  # the kernel's stream to the grader, whatever sys.stdout becomes later
        self._dumps = json.dumps
        self._hmac_new = hmac.new
        self._sha256 = hashlib.sha256
        self._capture = int(config.get("capture", 4000))
        self._cap = config.get("check_timeout")
        checks = _load_package(config["checks_alias"], Path(config["checks_dir"]))
        self._run_check = checks.run_check
        self._outcome = checks.Outcome
        checks.exercise(config["exercise"])  # loads the fresh copy's exNN, which the hidden checks build on
        # The hidden checks, fresh from their files too. They import the public helpers by their real name: while
        # they load, that name is the fresh copy, so the errors they catch are the ones the public checks raise.
        with _named_as(config["checks_alias"], "course_utils.checks"):
            hidden = _load_package(config["hidden_alias"], Path(config["hidden_dir"]))
            extra = hidden.hidden_checks(config["exercise"])
        self.exercise = checks.exercise(config["exercise"], extra=extra)
        # The public checks, as the learner's self-check cells import them: fingerprinted below, so a submission
        # that patches them is told the patch changed nothing.
        importlib.import_module(f"course_utils.checks.ex{config['exercise']}")
        for module in ("anthropic", "httpx2"):  # what the checks rely on, fingerprinted before the submission runs
            importlib.import_module(module)
        importlib.import_module("course_utils.selfcheck")
        from course_utils.simulator import Simulator  # noqa: PLC0415 - imported before any submission code runs

        self._sim = Simulator(speed=0).start()
        import IPython  # noqa: PLC0415

        shell = IPython.get_ipython()
        self._user_ns = shell.user_ns if shell is not None else vars(sys.modules["__main__"])
        self._public_checks = {name for name in sys.modules if name.startswith("course_utils.checks")}
        self._baseline = fingerprint((*WATCHED, config["checks_alias"], config["hidden_alias"], __name__))
        self._tampering: list[str] = []
        self._timed_out: dict[str, float] = {}  # task -> the limit an earlier check of it ran past

    def run(self, key: str, nonce: str) -> None:
        """Undo and record tampering, run the check with `key`, and write the signed outcome."""
        self._inspect()
        check = next(c for c in self.exercise.checks if c.key == key)
        if self._cap and check.timeout > self._cap:
            check = dataclasses.replace(check, timeout=float(self._cap))
        if check.task in self._timed_out:  # the same endless loop again: do not wait for it once more
            outcome = self._outcome(
                task=check.task,
                key=key,
                title=check.title,
                kind="timeout",
                points=0.0,
                max_points=check.points,
                visibility=check.visibility,
                message=f"not run: an earlier check of this task did not finish within "
                f"{self._timed_out[check.task]:g} s.",
            )
        else:
            outcome = self._run_check(
                check, self.exercise.tasks[check.task], self._user_ns, self._sim, capture=self._capture
            )
            if outcome.kind == "timeout":
                self._timed_out[check.task] = check.timeout
        self._inspect()
        body = self._dumps(
            {"key": key, "nonce": nonce, "outcome": outcome.to_dict(), "tampering": self._tampering[:12]},
            sort_keys=True,
        )
        mac = self._hmac_new(self._key, f"{nonce}\n{body}".encode(), self._sha256).hexdigest()
        self._out.write(f"{PREFIX}{mac} {body}\n")
        self._out.flush()

    def _inspect(self) -> None:
        """Restore fingerprinted objects the submission replaced, and remember what it did."""
        for (module, owner, name), (where, original) in self._baseline.items():
            current = (where.__dict__ if isinstance(where, type) else where).get(name, _MISSING)
            if current is original:
                continue
            what = f"{module}.{owner + '.' if owner else ''}{name}"
            if (name if module == "sys.modules" else module) in self._public_checks:
                note = f"ignored: {what} was changed (the grader uses its own copy of the checks)"
            else:
                note = f"{what} was {'removed' if current is _MISSING else 'replaced'}"
            if note not in self._tampering:
                self._tampering.append(note)
            try:
                if isinstance(where, type):
                    setattr(where, name, original)
                else:
                    where[name] = original
            except Exception:  # e.g. a class made read-only: it is reported, nothing more to do
                pass


_MISSING = object()


def fingerprint(prefixes: tuple[str, ...]) -> dict[tuple[str, str, str], tuple[Any, Any]]:
    """Every function, class and module at the top of the matching modules (and in their classes), each with the
    dict (or class) that holds it, so checking them all again is quick."""
    found: dict[tuple[str, str, str], tuple[Any, Any]] = {}
    for module_name, module in list(sys.modules.items()):
        if module is None or not any(module_name == p or module_name.startswith(p + ".") for p in prefixes):
            continue
        found[("sys.modules", "", module_name)] = (sys.modules, module)
        namespace = vars(module)
        for name, value in list(namespace.items()):
            if module_name == "builtins" and name in VOLATILE_BUILTINS:
                continue
            if not isinstance(value, _FINGERPRINTED):
                continue
            found[(module_name, "", name)] = (namespace, value)
            if isinstance(value, type) and getattr(value, "__module__", None) == module_name:
                for attr, member in list(vars(value).items()):
                    if isinstance(member, _FINGERPRINTED) and not attr.startswith("__"):
                        found[(module_name, name, attr)] = (value, member)
    return found


@contextlib.contextmanager
def _named_as(alias: str, name: str) -> Iterator[None]:
    """For a moment, let `name` and its submodules be the modules loaded as `alias`; then put everything back."""
    before = dict(sys.modules)
    real = {key: mod for key, mod in before.items() if key == name or key.startswith(name + ".")}
    fresh = {
        name + key[len(alias) :]: mod for key, mod in before.items() if key == alias or key.startswith(alias + ".")
    }
    sys.modules.update(fresh)
    try:
        yield
    finally:
        for key in [k for k in sys.modules if (k == name or k.startswith(name + ".")) and k not in real]:
            del sys.modules[key]  # what was imported by the real name meanwhile belongs to the fresh copy
        sys.modules.update(real)


def _load_package(alias: str, folder: Path) -> Any:
    """Import the package in `folder` under the name `alias`, fresh from its files, whatever sys.modules holds."""
    spec = importlib.util.spec_from_file_location(
        alias, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the checks from {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module
