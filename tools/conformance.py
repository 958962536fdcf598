"""Drift check for maintainers: the same requests to the real Messages API and to the simulator, compared on the wire.

    ./course conformance                      # = .venv/bin/python tools/conformance.py
    ./course conformance --models claude-haiku-4-5 --only plain-stream,cache-write,cache-read --json out.json
    ./course conformance --plan               # what would be sent, without sending anything

With a key (`ANTHROPIC_API_KEY` in the environment or in `.env`) every request of `PROBES` goes to the reference
(the real API, https://api.anthropic.com, or `--reference-url`) and to the candidate (a simulator this tool starts on
a free loopback port, or `--candidate-url`), one after the other, as raw HTTP with `httpx`; streams are parsed with
`course_utils.sse`, so what is compared is the wire, not an SDK's view of it. The real key goes to the reference
only; the candidate always gets a dummy key. Without a key the tool prints its plan and exits 0 without touching
the network.

Compared, request by request: the HTTP status, content type, `x-should-retry`, the error type; for streams the event
sequence (pings dropped, consecutive deltas of one type in one block collapsed into one) and whether it is
well-formed; the block types and each block's keys; `stop_reason`, whether a `stop_sequence` is set, the model echoed,
the message's keys; every usage field (in `message_start` and `message_delta` separately) as absent, null, 0 or >0;
for `GET /v1/models/{id}` every field of the answer. Ignored: ids, text, exact token counts, where pings fall and how
text is split into deltas. Exit status: 0 when both sides agree on every request, 1 when any difference is found,
2 on bad arguments or when the candidate cannot be started.

`--reference-url URL --reference-key KEY` point the tool at any other server (the tests use a second simulator,
with a dummy key). This is a maintainers' tool: it is not part of the learners' package `course_utils`.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere: the course's own package comes from this checkout
    sys.path.insert(0, str(ROOT))

from course_utils.serving import is_loopback  # noqa: E402  (after the path is set)

REAL_API = "https://api.anthropic.com"
API_VERSION = "2026-10-21"  # what the anthropic SDK 2.11 sends (anthropic/_constants.py)
DUMMY_KEY = "conformance-dummy-key"  # all the candidate ever gets
OFFLINE_KEY = "offline-simulator-no-key-needed"  # course_utils.mode's placeholder: not a real key
COURSE_DEFAULT_MODEL = "claude-haiku-4-5"  # course_utils.mode.DEFAULT_MODEL
RETRY_STATUSES = {429, 500, 502, 503, 529}  # transient on the real API: retried, so they do not pass for drift

Body = dict[str, Any]


# -- the requests -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request of the conformance set.

    `model` pins a model-specific probe to its model; None sends it once per chosen model (`--models`). `body` builds
    the JSON body from the model and the run's nonce (which keeps a cache write from hitting an earlier run's cache).
    `omit_headers` leaves standard headers out; `path` may contain `{model}`.
    """

    name: str
    purpose: str
    body: Callable[[str, str], Body] | None = None
    model: str | None = None
    method: str = "POST"
    path: str = "/v1/messages"
    omit_headers: tuple[str, ...] = ()
    # The block layout may begin with text before the first tool_use (tool_choice auto "may explain first"):
    # such text blocks are dropped on both sides before comparing.
    leading_text_optional: bool = False


QUESTION = "In one short sentence: why do rivers meander?"
MATH = "What is 17 * 23? Work it out step by step, then give the number."

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
TIME_TOOL = {
    "name": "get_time",
    "description": "Current local time in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TOOL_USE_ID = "toolu_01ConformanceProbe000001"
TOOL_TURNS = [
    {"role": "user", "content": "What's the weather in Paris right now?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "I'll check the weather in Paris."},
            {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Paris"}},
        ],
    },
]


def _long_system(nonce: str) -> list[dict[str, Any]]:
    """A system prompt well above every model's cache minimum (4096 tokens at most), marked for caching."""
    rules = "\n".join(
        f"Rule {i}: when a learner asks about topic {i} of the streaming course, answer briefly, cite the lesson "
        f"that covers it, and never invent an API field; lesson {i % 7} explains events, deltas and usage."
        for i in range(1, 321)
    )
    text = f"Conformance run {nonce}. You are a concise teaching assistant.\n{rules}"
    return [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]


def _msgs(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def _stream(model: str, max_tokens: int = 200, **extra: Any) -> Body:
    return {"model": model, "max_tokens": max_tokens, "stream": True, "messages": _msgs(QUESTION), **extra}


def _tools(model: str, choice: dict[str, Any]) -> Body:
    return {
        "model": model,
        "max_tokens": 300,
        "stream": True,
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": choice,
        "messages": _msgs("What's the weather in Paris right now?"),
    }


def _cached(model: str, nonce: str) -> Body:
    return {
        "model": model,
        "max_tokens": 50,
        "stream": True,
        "system": _long_system(nonce),
        "messages": _msgs("Which lesson covers topic 12? One line."),
    }


PROBES: tuple[Probe, ...] = (
    Probe("plain-stream", "plain streamed text: the basic event sequence and usage", lambda m, n: _stream(m)),
    Probe(
        "non-streaming",
        "non-streaming create: one JSON message",
        lambda m, n: {"model": m, "max_tokens": 200, "messages": _msgs(QUESTION)},
    ),
    Probe(
        "thinking-enabled",
        "thinking enabled, budget 1024: a thinking block first, then text",
        lambda m, n: {
            **_stream(m, 2048),
            "messages": _msgs(MATH),
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
        model="claude-haiku-4-5",
    ),
    Probe(
        "thinking-adaptive",
        "adaptive thinking: the model decides how much to think",
        lambda m, n: {**_stream(m, 2048), "messages": _msgs(MATH), "thinking": {"type": "adaptive"}},
        model="claude-sonnet-4-6",
    ),
    Probe(
        "thinking-by-default",
        "thinking omitted on a model that thinks by default: the stream still starts with thinking",
        lambda m, n: {**_stream(m, 2048), "messages": _msgs(MATH)},
        model="claude-sonnet-5",
    ),
    Probe(
        "tool-choice-auto",
        "a tool call with tool_choice auto (text may come first)",
        lambda m, n: _tools(m, {"type": "auto"}),
        leading_text_optional=True,
    ),
    Probe(
        "tool-choice-any",
        "a tool call with tool_choice any: the tool_use block comes first",
        lambda m, n: _tools(m, {"type": "any"}),
    ),
    Probe(
        "tool-choice-named",
        "a tool call with a named tool_choice: that tool, first",
        lambda m, n: _tools(m, {"type": "tool", "name": "get_weather"}),
    ),
    Probe(
        "tool-result",
        "a tool_result follow-up: the answer after the tool ran",
        lambda m, n: {
            "model": m,
            "max_tokens": 200,
            "stream": True,
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "messages": [
                *TOOL_TURNS,
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": "14°C, light rain, wind 20 km/h"}
                    ],
                },
            ],
        },
    ),
    Probe(
        "tool-result-missing",
        "a broken tool conversation (tool_use without tool_result): expect 400",
        lambda m, n: {
            "model": m,
            "max_tokens": 200,
            "stream": True,
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "messages": [*TOOL_TURNS, {"role": "user", "content": "Never mind, what about Rome?"}],
        },
    ),
    Probe(
        "cache-write",
        "prompt caching, first of two: a long cached system prompt is written",
        lambda m, n: _cached(m, n),
    ),
    Probe(
        "cache-read",
        "prompt caching, second of two: the same prefix is read from the cache",
        lambda m, n: _cached(m, n),
    ),
    Probe(
        "max-tokens-zero",
        "max_tokens 0 (cache pre-warm): no content, usage filled",
        lambda m, n: {"model": m, "max_tokens": 0, "messages": _msgs(QUESTION)},
    ),
    Probe(
        "max-tokens-reached",
        "max_tokens reached: the stream stops with stop_reason max_tokens",
        lambda m, n: {**_stream(m, 5), "messages": _msgs("Write a long essay about the history of rivers.")},
    ),
    Probe(
        "prefill-allowed",
        "an assistant prefill where the model allows it: the reply continues it",
        lambda m, n: {
            **_stream(m),
            "messages": [*_msgs("Name a colour of the sky."), {"role": "assistant", "content": "The sky is"}],
        },
        model="claude-haiku-4-5",
    ),
    Probe(
        "prefill-rejected",
        "an assistant prefill where the model rejects it: expect 400",
        lambda m, n: {
            **_stream(m),
            "messages": [*_msgs("Name a colour of the sky."), {"role": "assistant", "content": "The sky is"}],
        },
        model="claude-sonnet-4-6",
    ),
    Probe(
        "temperature-rejected",
        "temperature sent through extra body to a model without sampling parameters: expect 400",
        lambda m, n: {**_stream(m), "temperature": 0.5},
        model="claude-opus-4-7",
    ),
    Probe("unknown-field", "an unknown top-level field: expect 400", lambda m, n: {**_stream(m), "temprature": 0.5}),
    Probe(
        "no-version-header",
        "raw HTTP without the anthropic-version header: expect 400",
        lambda m, n: _stream(m),
        omit_headers=("anthropic-version",),
    ),
    Probe(
        "models-retrieve",
        "models.retrieve of the alias: resolves to the dated id, with capabilities and limits",
        None,
        method="GET",
        path="/v1/models/{model}",
    ),
)


def course_models() -> tuple[str, ...]:
    """The models the course names: its default, then the chat app's allowed models (read without importing it)."""
    models = [COURSE_DEFAULT_MODEL]
    try:
        tree = ast.parse((ROOT / "course_utils" / "chat_app" / "settings.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ALLOWED_MODELS" for t in node.targets):
                models += [m for m in ast.literal_eval(node.value) if isinstance(m, str)]
    except (OSError, SyntaxError, ValueError):
        pass
    return tuple(dict.fromkeys(models))


@dataclass(frozen=True)
class Call:
    """One concrete request: a probe on one model."""

    probe: Probe
    model: str

    @property
    def label(self) -> str:
        return f"{self.probe.name} [{self.model}]"

    @property
    def path(self) -> str:
        return self.probe.path.format(model=self.model)


def plan(models: tuple[str, ...], only: set[str] | None = None) -> list[Call]:
    """Every (probe, model) pair, in order: probe by probe, so both cache probes of a model run back to back."""
    calls = []
    for probe in PROBES:
        if only and probe.name not in only:
            continue
        for model in (probe.model,) if probe.model else models:
            calls.append(Call(probe, model))
    return calls


# -- sending ----------------------------------------------------------------------------------------------------------


@dataclass
class Side:
    """One server under comparison. `key` never appears in output, errors or the JSON report."""

    role: str
    url: str
    key: str = field(repr=False)
    described: str = ""

    def client(self) -> Any:
        import httpx

        host = urlsplit(self.url).hostname or ""
        # A loopback server is reached directly: a proxy from the environment would only get in the way.
        return httpx.Client(
            base_url=self.url.rstrip("/"), trust_env=not is_loopback(host), timeout=httpx.Timeout(180.0, connect=15.0)
        )


def headers_for(side: Side, probe: Probe) -> dict[str, str]:
    headers = {
        "x-api-key": side.key,
        "anthropic-version": API_VERSION,
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": "course-conformance/1",
    }
    for name in probe.omit_headers:
        headers.pop(name, None)
    return headers


def send(client: Any, side: Side, call: Call, nonce: str, retries: int) -> dict[str, Any]:
    """Send one call and record what came back on the wire (retrying transient overloads and network errors)."""
    import httpx

    body = call.probe.body(call.model, nonce) if call.probe.body else None
    outcome: dict[str, Any] = {}
    for attempt in range(retries + 1):
        outcome = _send_once(client, side, call, body, httpx)
        outcome["attempts"] = attempt + 1
        status = outcome.get("status")
        last = (outcome.get("events") or [{}])[-1].get("data") or {}
        overloaded_midstream = last.get("type") == "error" and (last.get("error") or {}).get("type") in (
            "overloaded_error",
            "api_error",
        )
        if attempt == retries or not (
            status in RETRY_STATUSES or outcome.get("transport_error") or overloaded_midstream
        ):
            break
        wait = min(_retry_after(outcome.get("headers", {})) or 2.0 * (attempt + 1), 30.0)
        time.sleep(wait)
    return outcome


def _send_once(client: Any, side: Side, call: Call, body: Body | None, httpx: Any) -> dict[str, Any]:
    from course_utils.sse import parse_sse

    outcome: dict[str, Any] = {"status": None}
    try:
        with client.stream(
            call.probe.method,
            call.path,
            headers=headers_for(side, call.probe),
            content=None if body is None else json.dumps(body).encode(),
        ) as response:
            outcome["status"] = response.status_code
            outcome["headers"] = {
                k: response.headers[k]
                for k in ("content-type", "x-should-retry", "retry-after", "request-id")
                if k in response.headers
            }
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                events = []
                for event in parse_sse(response.iter_bytes()):
                    try:
                        data = json.loads(event.data)
                    except ValueError:
                        data = {"unparsed": event.data}
                    events.append({"event": event.event, "data": data})
                outcome["events"] = events
            else:
                raw = response.read()
                try:
                    outcome["json"] = json.loads(raw)
                except ValueError:
                    outcome["text"] = raw.decode("utf-8", "replace")[:2000]
    except httpx.HTTPError as exc:  # the message names the URL at most, never a header
        outcome["transport_error"] = f"{type(exc).__name__}: {exc}"[:300]
    except UnicodeDecodeError as exc:
        outcome["transport_error"] = f"invalid UTF-8 in the stream: {exc}"
    return outcome


def _retry_after(headers: dict[str, str]) -> float | None:
    try:
        return float(headers["retry-after"])
    except (KeyError, ValueError):
        return None


# -- what is compared -------------------------------------------------------------------------------------------------


def _usage_value(value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return ">0" if value > 0 else ("0" if value == 0 else "<0")
    return value  # a string such as service_tier is compared as it is


def _flatten(obj: Any, prefix: str, leaf: Callable[[Any], Any]) -> dict[str, Any]:
    if isinstance(obj, dict):
        flat: dict[str, Any] = {}
        if not obj:
            flat[prefix] = "{}"
        for key, value in obj.items():
            flat.update(_flatten(value, f"{prefix}.{key}", leaf))
        return flat
    return {prefix: leaf(obj)}


def _usage(holder: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Every usage field, flattened (`usage.cache_creation.ephemeral_5m_input_tokens`): absent, null, 0 or >0."""
    return _flatten(holder["usage"], prefix, _usage_value) if "usage" in holder else {}


def _block_keys(block: Any) -> str:
    if not isinstance(block, dict):
        return repr(type(block).__name__)
    return f"{block.get('type')}{{{','.join(sorted(block))}}}"


def _drop_leading_text(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Remove text blocks that come before the first tool_use block, renumbering the later blocks."""
    starts = [
        (e["data"].get("index"), (e["data"].get("content_block") or {}).get("type"))
        for e in events
        if e["data"].get("type") == "content_block_start"
    ]
    first_tool = next((i for i, (_, kind) in enumerate(starts) if kind == "tool_use"), None)
    if not first_tool:
        return events
    dropped = {index for index, kind in starts[:first_tool] if kind == "text"}
    if len(dropped) != first_tool:  # something else (thinking) comes first as well: leave the stream as it is
        return events
    kept = []
    for event in events:
        index = event["data"].get("index")
        if index in dropped and event["data"].get("type", "").startswith("content_block"):
            continue
        if isinstance(index, int):
            event = {**event, "data": {**event["data"], "index": index - len(dropped)}}
        kept.append(event)
    return kept


def _event_label(data: dict[str, Any], name: str | None) -> str:
    kind = data.get("type", name)
    if kind == "content_block_start":
        return f"content_block_start({data.get('index')} {(data.get('content_block') or {}).get('type')})"
    if kind == "content_block_delta":
        return f"content_block_delta({data.get('index')} {(data.get('delta') or {}).get('type')})"
    if kind == "content_block_stop":
        return f"content_block_stop({data.get('index')})"
    if kind == "error":
        return f"error({(data.get('error') or {}).get('type')})"
    return str(kind)


def _structure(events: list[dict[str, Any]]) -> str:
    """Whether a stream is well-formed: `ok`, or its first few problems."""
    problems: list[str] = []
    open_blocks: set[Any] = set()
    next_index = 0
    stopped = False
    for position, event in enumerate(events):
        data, kind = event["data"], event["data"].get("type")
        if event["event"] is not None and event["event"] != kind:
            problems.append(f"event name {event['event']!r} but data type {kind!r}")
        if stopped:
            problems.append(f"{kind} after message_stop")
        if position == 0 and kind != "message_start":
            problems.append(f"starts with {kind}, not message_start")
        index = data.get("index")
        if kind == "content_block_start":
            if index != next_index:
                problems.append(f"block {index} started where block {next_index} was due")
            if open_blocks:
                problems.append(f"block {index} started while block {sorted(open_blocks)} still open")
            open_blocks.add(index)
            next_index = index + 1 if isinstance(index, int) else next_index
        elif kind in ("content_block_delta", "content_block_stop"):
            if index not in open_blocks:
                problems.append(f"{kind} for block {index}, which is not open")
            if kind == "content_block_stop":
                open_blocks.discard(index)
        elif kind in ("message_delta", "message_stop") and open_blocks:
            problems.append(f"{kind} while block {sorted(open_blocks)} never stopped")
            open_blocks.clear()
        stopped = stopped or kind in ("message_stop", "error")
    if not stopped:
        problems.append("no message_stop")
    unique = list(dict.fromkeys(problems))
    return "ok" if not unique else "; ".join(unique[:4]) + (f" (+{len(unique) - 4} more)" if len(unique) > 4 else "")


def _message_aspects(message: dict[str, Any], blocks: list[Any], prefix: str = "") -> dict[str, Any]:
    return {
        "block types": [b.get("type") if isinstance(b, dict) else None for b in blocks],
        "block keys": [_block_keys(b) for b in blocks],
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": None if message.get("stop_sequence") is None else "set",
        "model": message.get("model"),
        f"{prefix}message keys": sorted(message),
    }


def aspects(outcome: dict[str, Any], probe: Probe) -> dict[str, Any]:
    """The comparable facts of one response; everything volatile is left out."""
    if outcome.get("transport_error"):
        return {"status": "transport error", "transport": outcome["transport_error"].split(":")[0]}
    headers = outcome.get("headers", {})
    facts: dict[str, Any] = {
        "status": outcome["status"],
        "content type": headers.get("content-type", "").split(";")[0].strip() or None,
        "x-should-retry": headers.get("x-should-retry"),
        "request-id header": "present" if headers.get("request-id") else None,
    }
    if "events" in outcome:
        events = [e for e in outcome["events"] if e["data"].get("type") != "ping" and e["event"] != "ping"]
        if probe.leading_text_optional:
            events = _drop_leading_text(events)
        labels: list[str] = []
        for event in events:
            label = _event_label(event["data"], event["event"])
            if not (labels and label == labels[-1] and label.startswith("content_block_delta")):
                labels.append(label)
        facts["event sequence"] = labels
        facts["stream structure"] = _structure(events)
        start = next((e["data"].get("message") or {} for e in events if e["data"].get("type") == "message_start"), {})
        blocks = [e["data"].get("content_block") for e in events if e["data"].get("type") == "content_block_start"]
        delta = next((e["data"] for e in reversed(events) if e["data"].get("type") == "message_delta"), {})
        final = {**start, **{k: v for k, v in (delta.get("delta") or {}).items()}}
        facts.update(_message_aspects(final, blocks, prefix="message_start "))
        facts["message_start content"] = "empty" if start.get("content") == [] else start.get("content", "absent")
        facts.update(_usage(start, "message_start.usage"))
        facts.update(_usage(delta, "message_delta.usage"))
        for event in events:
            if event["data"].get("type") == "error":
                facts["stream error.type"] = (event["data"].get("error") or {}).get("type")
        return facts
    body = outcome.get("json")
    if body is None:
        facts["body"] = "not JSON"
        return facts
    if not isinstance(body, dict):
        facts["body"] = f"JSON {type(body).__name__}"
        return facts
    if body.get("type") == "error" or "error" in body:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        facts["error.type"] = error.get("type")
        facts["error body keys"] = sorted(body)
        facts["error keys"] = sorted(error)
    elif body.get("type") == "message":
        content = body.get("content") if isinstance(body.get("content"), list) else []
        facts.update(_message_aspects(body, content))
        facts.update(_usage(body, "usage"))
    else:  # a model, or anything else: every field counts (ids and dates of the catalogue are facts, not noise)
        facts.update(_flatten(body, "body", lambda v: v))
    return facts


ABSENT = "absent"


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value is None:
        return "none"
    return str(value)


def differences(ref: dict[str, Any], cand: dict[str, Any]) -> list[str]:
    """One line per aspect that differs: `name: reference-value vs candidate-value`."""
    lines = []
    grouped: set[str] = set()
    for key in dict.fromkeys([*ref, *cand]):
        a, b = ref.get(key, ABSENT), cand.get(key, ABSENT)
        if a == b:
            continue
        if (key in ref) != (key in cand):  # a whole object missing on one side is one line, not one per field
            present, missing = (ref, cand) if key in ref else (cand, ref)
            top = _missing_root(key, missing)
            if top in grouped:
                continue
            fields = [k for k in present if k == top or k.startswith(top + ".")]
            if len(fields) > 1:
                grouped.add(top)
                shown = f"{{{len(fields)} fields}}"
                lines.append(f"{top}: {shown} vs absent" if present is ref else f"{top}: absent vs {shown}")
                continue
        if isinstance(a, list) or isinstance(b, list):
            lines.append(f"{key}: reference {_fmt(a)} vs candidate {_fmt(b)}")
        else:
            lines.append(f"{key}: {_fmt(a)} vs {_fmt(b)}")
    return lines


def _missing_root(key: str, missing: dict[str, Any]) -> str:
    """The outermost dotted prefix of `key` (below its first part) of which `missing` has no field at all."""
    parts = key.split(".")
    for depth in range(2, len(parts) + 1):
        prefix = ".".join(parts[:depth])
        if not any(k == prefix or k.startswith(prefix + ".") for k in missing):
            return prefix
    return key


def _status_context(role: str, outcome: dict[str, Any], facts: dict[str, Any]) -> str:
    """What one side answered, in a line, for a DIFF whose statuses differ."""
    if outcome.get("transport_error"):
        return f"{role}: {outcome['transport_error']}"
    body = outcome.get("json")
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"{role}: {body['error'].get('type')}: {str(body['error'].get('message'))[:160]}"
    return f"{role}: blocks {_fmt(facts.get('block types', []))}, stop_reason {facts.get('stop_reason')}"


def compare(ref_outcome: dict[str, Any], cand_outcome: dict[str, Any], probe: Probe) -> tuple[list[str], dict, dict]:
    ref, cand = aspects(ref_outcome, probe), aspects(cand_outcome, probe)
    lines = differences(ref, cand)
    if ref.get("status") != cand.get("status"):
        # The rest follows from the status; say what each side answered instead of listing every field.
        lines = [
            lines[0],
            _status_context("reference", ref_outcome, ref),
            _status_context("candidate", cand_outcome, cand),
        ]
    return lines, ref, cand


# -- running ----------------------------------------------------------------------------------------------------------


def find_key(env_file: str | None) -> str | None:
    """The real key from the environment or `.env` (never printed), or None."""
    from dotenv import find_dotenv, load_dotenv

    path = env_file if env_file is not None else find_dotenv(usecwd=True)
    if path and Path(path).is_file():
        load_dotenv(path, override=False)
    key = os.environ.get("ANTHROPIC_API_KEY", "").strip()
    return key if key and key != OFFLINE_KEY else None


def print_plan(
    calls: list[Call],
    models: tuple[str, ...],
    reference: str,
    candidate: str | None,
    have_key: bool = False,
    out: Any = None,
) -> None:
    out = out or sys.stdout

    def say(line: str = "") -> None:
        print(line, file=out)

    if have_key:
        say("--plan: nothing is sent.")
    else:
        say("No API key (ANTHROPIC_API_KEY is set neither in the environment nor in .env): nothing is sent.")
    say(
        f"With a key, this tool would send {len(calls)} requests, each to both sides, as raw HTTP "
        f"(anthropic-version: {API_VERSION}):"
    )
    say(f"  reference: {reference} (with the key as x-api-key)")
    say(f"  candidate: {candidate or 'a simulator it starts on a free loopback port'} (with a dummy key only)")
    say(f"  models: {', '.join(models)} (--models to choose; model-specific requests keep their own model)")
    width = max((len(c.label) for c in calls), default=0)
    for number, call in enumerate(calls, 1):
        say(f"  {number:2d}. {call.label:<{width}}  {call.probe.method} {call.path}: {call.probe.purpose}")
    say(
        "and print, request by request, where event sequences, block types, usage fields, stop reasons and error "
        "statuses/types differ (exit 1 if any do)."
    )


@contextmanager
def candidate_server(url: str | None) -> Iterator[tuple[str, str]]:
    """The candidate's URL and a description: the given one, or a simulator started here for the run."""
    if url:
        yield url, url
        return
    from course_utils.simulator import Simulator

    with Simulator(speed=0) as sim:
        yield sim.base_url, f"{sim.base_url} (local simulator, speed 0)"


def run(calls: list[Call], reference: Side, candidate: Side, retries: int, out: Any = None) -> dict[str, Any]:
    out = out or sys.stdout
    nonce = secrets.token_hex(6)
    print(f"conformance: reference {reference.described} vs candidate {candidate.described}", file=out)
    print("(each difference reads: reference vs candidate)", file=out, flush=True)
    results = []
    width = max((len(c.label) for c in calls), default=0)
    with reference.client() as ref_client, candidate.client() as cand_client:
        for call in calls:
            ref_out = send(ref_client, reference, call, nonce, retries)
            cand_out = send(cand_client, candidate, call, nonce, retries)
            lines, ref_facts, cand_facts = compare(ref_out, cand_out, call.probe)
            print(f"{'DIFF' if lines else 'OK':<5}{call.label:<{width}}  {call.probe.purpose}", file=out)
            for line in lines:
                print(f"        {line}", file=out)
            out.flush()
            body = call.probe.body(call.model, nonce) if call.probe.body else None
            results.append(
                {
                    "name": call.probe.name,
                    "model": call.model,
                    "purpose": call.probe.purpose,
                    "ok": not lines,
                    "differences": lines,
                    "request": {
                        "method": call.probe.method,
                        "path": call.path,
                        "body": body,
                        "omitted_headers": list(call.probe.omit_headers),
                    },
                    "reference": {"compared": ref_facts, "wire": ref_out},
                    "candidate": {"compared": cand_facts, "wire": cand_out},
                }
            )
    differing = sum(not r["ok"] for r in results)
    summary = {"requests": len(results), "ok": len(results) - differing, "diff": differing}
    print(f"summary: {len(results)} requests, {summary['ok']} OK, {differing} DIFF", file=out)
    return {
        "reference": reference.url,
        "candidate": candidate.url,
        "api_version": API_VERSION,
        "summary": summary,
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./course conformance",
        description="Send the same requests to the real Messages API and to the simulator; print where they differ.",
    )
    parser.add_argument(
        "--models",
        help=f"comma-separated models for the per-model requests (default: the course's, {', '.join(course_models())})",
    )
    parser.add_argument("--only", help="comma-separated request names to run (default: all)")
    parser.add_argument("--reference-url", default=REAL_API, help=f"the reference server (default: {REAL_API})")
    parser.add_argument(
        "--reference-key",
        help="key for the reference instead of ANTHROPIC_API_KEY (for testing against a stand-in, e.g. 'dummy')",
    )
    parser.add_argument("--candidate-url", help="the candidate server (default: a simulator started for the run)")
    parser.add_argument("--env-file", help="the .env to read ANTHROPIC_API_KEY from (default: the nearest .env)")
    parser.add_argument("--json", metavar="FILE", help="write the full comparison, wire data included, to FILE")
    parser.add_argument("--retries", type=int, default=2, help="retries of a 429/5xx/network error (default: 2)")
    parser.add_argument("--plan", action="store_true", help="print what would be sent, send nothing")
    args = parser.parse_args(argv)

    models = tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else course_models()
    if not models:
        parser.error("--models needs at least one model")
    only = {n.strip() for n in args.only.split(",") if n.strip()} if args.only else None
    unknown = (only or set()) - {p.name for p in PROBES}
    if unknown:
        parser.error(
            f"unknown request name(s): {', '.join(sorted(unknown))}; known: {', '.join(p.name for p in PROBES)}"
        )
    if args.retries < 0:
        parser.error("--retries must be >= 0")
    for url, option in ((args.reference_url, "--reference-url"), (args.candidate_url, "--candidate-url")):
        if url and urlsplit(url).scheme not in ("http", "https"):
            parser.error(f"{option} must be an http:// or https:// URL")
    calls = plan(models, only)

    key = args.reference_key or find_key(args.env_file)
    if args.plan or not key:
        print_plan(calls, models, args.reference_url, args.candidate_url, have_key=bool(key))
        return 0
    ref_parts = urlsplit(args.reference_url)
    if not args.reference_key and ref_parts.scheme != "https" and not is_loopback(ref_parts.hostname or ""):
        print("error: the real key is only sent over https (or to a loopback address)", file=sys.stderr)
        return 2
    try:
        with candidate_server(args.candidate_url) as (cand_url, cand_described):
            reference = Side("reference", args.reference_url, key, args.reference_url)
            candidate = Side("candidate", cand_url, DUMMY_KEY, cand_described)
            report = run(calls, reference, candidate, args.retries)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        print(f"full comparison written to {args.json}")
    return 1 if report["summary"]["diff"] else 0


if __name__ == "__main__":
    sys.exit(main())
