"""Bad input: property-based fuzzing of `/api/chat` and of the simulator, over real HTTP on loopback.

`/api/chat` is fuzzed from its own OpenAPI document: bodies drawn from the request schema, each field also pushed
just past its limits (one too long, one too many, one below the minimum), then mutated with arbitrary JSON, bytes
and content types. The simulator is fuzzed with Messages-API-shaped bodies and its control endpoints. The
properties: never a 5xx, never a stack trace in a response, every rejection a 4xx with a JSON error body that
says what is wrong, and every accepted request ends with exactly one terminal event.

Examples are derandomized so CI is repeatable; `COURSE_FUZZ_EXAMPLES=2000 COURSE_FUZZ_EXPLORE=1` searches further.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_utils.chat_app import AppServer, ChatSettings, create_app
from course_utils.simulator import FAULTS, Simulator, signing
from course_utils.simulator.validation import (
    ApiError,
    check_version,
    validate_count_tokens,
    validate_messages,
)
from course_utils.sse import parse_sse

from conftest import MODEL

KEY = "fuzz-key-not-a-secret"
EXAMPLES = int(os.environ.get("COURSE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not os.environ.get("COURSE_FUZZ_EXPLORE"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
# What a response must never show: a traceback, a source location, a Python object's repr.
LEAKS = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|<[\w.]+ object at 0x")

pytestmark = pytest.mark.timeout(120)


# -- strategies -------------------------------------------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Instances of a JSON schema (the subset FastAPI emits), plus the values just outside each limit."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return st.deferred(lambda: from_schema(defs[name], defs))
    if "anyOf" in schema:
        return st.one_of([from_schema(option, defs) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"]) | st.text(max_size=12)
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        edges = [int(v) + d for v in (low, high) if v is not None for d in (-1, 0, 1)]
        return st.integers(
            min_value=int(low) if low is not None else None, max_value=int(high) if high is not None else None
        ) | st.sampled_from(edges or [0])
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        edges = [n for n in (low - 1, low, high, (high or 0) + 1) if n is not None and n >= 0]
        # At the limits the text is one repeated character: generating 20 000 random ones would be slow, not wiser.
        return st.text(max_size=min(high or 60, 60)) | st.builds(
            lambda c, n: c * n, st.characters(), st.sampled_from(edges)
        )
    if kind == "array":
        items = from_schema(schema.get("items", {}), defs)
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        normal = st.lists(items, min_size=low, max_size=min(high or 4, 4))
        edges = [n for n in (low - 1, high, (high or 0) + 1) if n is not None and n >= 0]
        return normal | st.builds(lambda item, n: [item] * n, items, st.sampled_from(edges))
    if kind == "object":
        properties = {name: from_schema(sub, defs) for name, sub in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
    return json_values


def mutated(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A schema instance with one field replaced, removed or added, or arbitrary JSON instead."""

    def mutate(body: Any, data: st.DataObject) -> Any:
        if not isinstance(body, dict) or not body:
            return body
        body = dict(body)
        key = data.draw(st.sampled_from(sorted(body)))
        action = data.draw(st.sampled_from(["replace", "delete", "add", "nest"]))
        if action == "replace":
            body[key] = data.draw(json_values)
        elif action == "delete":
            del body[key]
        elif action == "add":
            body[data.draw(st.text(min_size=1, max_size=10))] = data.draw(json_values)
        elif isinstance(body[key], list) and body[key] and isinstance(body[key][0], dict):
            inner = dict(body[key][0])
            inner[data.draw(st.sampled_from(sorted(inner) or ["role"]))] = data.draw(json_values)
            body[key] = [inner, *body[key][1:]]
        return body

    return valid | json_values | st.builds(mutate, valid, st.data())


# -- fixtures ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """A simulator of its own: fuzzing its control endpoints must not disturb the session's."""
    with Simulator(speed=0) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def app(sim: Simulator) -> Iterator[AppServer]:
    """The app as deployed, in front of that simulator."""
    with AppServer(create_app(ChatSettings(model=MODEL, base_url=sim.base_url, api_key=KEY))) as server:
        yield server


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    """One keep-alive client for every example."""
    with httpx.Client(timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
def openapi(app: AppServer, http: httpx.Client) -> dict[str, Any]:
    """The app's own OpenAPI document, as a client would fetch it."""
    return http.get(app.url + "api/openapi.json").json()


def chat_schema(openapi: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request body schema of `POST /api/chat`, and the document's component schemas."""
    defs = openapi["components"]["schemas"]
    ref = openapi["paths"]["/api/chat"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return ref, defs


# -- properties -------------------------------------------------------------------------------------------------------


def assert_clear_rejection(response: httpx.Response, shape: str) -> dict[str, Any]:
    """A 4xx whose body is JSON naming the error's type and saying what is wrong, with nothing leaked."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    assert not LEAKS.search(response.text), response.text[:300]
    body = response.json()
    error = body["error"]
    if shape == "api":  # the Messages API's own shape: {"type": "error", "error": {...}, "request_id": ...}
        assert body["type"] == "error"
    else:  # the app's: {"error": {...}} and nothing else
        assert set(body) == {"error"}
    assert isinstance(error["type"], str) and error["type"].endswith("_error") or error["type"] == "request_too_large"
    assert isinstance(error["message"], str) and 0 < len(error["message"]) <= 20_000
    return error


def assert_chat_answer(response: httpx.Response) -> list[str]:
    """A 200 from the app: `text` events, then exactly one `done` or `error`; or a clear rejection."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code != 200:
        assert_clear_rejection(response, "app")
        return []
    names = [event.event for event in parse_sse([response.content], strict_eof=True)]
    assert names and names[-1] in ("done", "error") and set(names[:-1]) <= {"text"}, names
    return names


def post_json(http: httpx.Client, url: str, body: Any, **headers: str) -> httpx.Response:
    """POST any JSON value, NaN and Infinity included (Python's JSON reader accepts them, so a server may see them)."""
    content = json.dumps(body, allow_nan=True)
    return http.post(url, content=content, headers={"content-type": "application/json", **headers})


@FUZZ
@given(data=st.data())
def test_chat_schema_driven_bodies(
    app: AppServer, http: httpx.Client, openapi: dict[str, Any], data: st.DataObject
) -> None:
    schema, defs = chat_schema(openapi)
    body = data.draw(mutated(from_schema(schema, defs)), label="body")
    response = post_json(http, app.url + "api/chat", body)
    names = assert_chat_answer(response)
    valid = schema_valid(body, openapi)
    if names:
        assert valid, f"accepted a body its own schema forbids: {body!r}"
    elif valid and response.status_code != 413:  # the body limit is not in the schema
        # Nor are these rules; every other schema-valid body must be served.
        assert response.status_code == 422, response.text
        assert re.search(r"last message|blank|characters long|not available", response.json()["error"]["message"])


def schema_valid(body: Any, openapi: dict[str, Any]) -> bool:
    """Whether `body` is valid against the app's published request schema."""
    schema, defs = chat_schema(openapi)
    return jsonschema.Draft202012Validator({**schema, "components": {"schemas": defs}}).is_valid(body)


@FUZZ
@given(
    content=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=utf-16",
            "application/json; charset=latin-1",
            "text/event-stream",
        ]
    ),
)
def test_chat_raw_bytes_and_content_types(
    app: AppServer, http: httpx.Client, content: bytes, content_type: str
) -> None:
    response = http.post(app.url + "api/chat", content=content, headers={"content-type": content_type})
    assert_chat_answer(response)


@FUZZ
@given(
    method=st.sampled_from(["GET", "PUT", "DELETE", "PATCH", "POST", "OPTIONS"]),
    path=st.sampled_from(["api/chat", "api/config", "api/", "healthz", "static/", "api/openapi.json"])
    | st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"), max_size=30).map(
        lambda p: "api/" + p.lstrip("/")
    ),
)
def test_other_methods_and_paths(app: AppServer, http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, app.url + path.replace("//", "/"), content=b"{}")
    assert response.status_code < 500, (method, path, response.status_code)
    assert not LEAKS.search(response.text)
    if response.status_code >= 400 and method != "HEAD":
        assert_clear_rejection(response, "app")


def test_oversized_bodies_are_a_clear_413(app: AppServer, http: httpx.Client) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 300_000}]}
    assert_clear_rejection(post_json(http, app.url + "api/chat", big), "app")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while the body streams in
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"y" * 10_000
        yield b'"}]}'

    response = http.post(app.url + "api/chat", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and assert_clear_rejection(response, "app")


# -- the simulator ----------------------------------------------------------------------------------------------------

API_HEADERS = {"x-api-key": "k", "anthropic-version": "2026-10-21"}
MODELS = [
    MODEL,
    "claude-sonnet-4-6",
    "claude-opus-4-8",
    "claude-sonnet-5",
    "claude-fable-5",
    "claude-3-5-sonnet-20241022",
    "",
]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
PDF = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
cache_controls = st.none() | st.fixed_dictionaries(
    {"type": st.sampled_from(["ephemeral", "persistent"])}, optional={"ttl": st.sampled_from(["5m", "1h", "2h", 5])}
)
signed_thinking = st.builds(
    lambda text, keep: {
        "type": "thinking",
        "thinking": text,
        "signature": signing.sign_thinking(text) if keep else "EuAAAA",
    },
    st.text(max_size=20),
    st.booleans(),
)
redacted = st.builds(
    lambda seed, keep: {"type": "redacted_thinking", "data": signing.redacted_data(seed) if keep else seed},
    st.text(max_size=8),
    st.booleans(),
)
images = st.fixed_dictionaries(
    {
        "type": st.just("image"),
        "source": st.fixed_dictionaries(
            {
                "type": st.sampled_from(["base64", "url", "svg"]),
                "media_type": st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"]),
                "data": st.sampled_from([PNG, PDF, "not base64!", ""]) | st.text(max_size=8),
            },
            optional={"url": st.text(max_size=12)},
        ),
    },
    optional={"cache_control": cache_controls},
)
documents = st.fixed_dictionaries(
    {
        "type": st.just("document"),
        "source": st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.just("text"),
                    "media_type": st.sampled_from(["text/plain", "text/html"]),
                    "data": st.text(max_size=20) | json_values,
                }
            ),
            st.fixed_dictionaries(
                {
                    "type": st.just("base64"),
                    "media_type": st.sampled_from(["application/pdf", "image/png"]),
                    "data": st.sampled_from([PDF, PNG, "%%%"]),
                }
            ),
            st.fixed_dictionaries({"type": st.just("content"), "content": st.text(max_size=10) | json_values}),
            st.fixed_dictionaries({"type": st.just("url")}, optional={"url": st.text(max_size=12)}),
            json_values,
        ),
    },
    optional={
        "title": st.text(max_size=8) | json_values,
        "context": json_values,
        "citations": st.fixed_dictionaries({}, optional={"enabled": st.booleans() | json_values}) | json_values,
        "cache_control": cache_controls,
    },
)
text_blocks = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["text", "image", "tool_result", "thinking", "x"]),
        "text": st.text(max_size=30) | json_values,
    },
    optional={"tool_use_id": st.text(max_size=10), "cache_control": cache_controls | json_values},
)
tool_ids = st.sampled_from(["toolu_01", "toolu_02", ""]) | json_values
tool_uses = st.fixed_dictionaries(
    {
        "type": st.just("tool_use"),
        "id": tool_ids,
        "name": st.just("get_weather"),
        "input": st.just({"location": "Paris"}) | json_values,
    }
)
tool_results = st.fixed_dictionaries(
    {"type": st.just("tool_result"), "tool_use_id": tool_ids},
    optional={
        "content": st.text(max_size=10) | st.lists(text_blocks, max_size=2),
        "is_error": st.booleans() | json_values,
    },
)
blocks = text_blocks | images | documents | signed_thinking | redacted | tool_uses | tool_results
messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant", "system", ""]),
            "content": st.text(max_size=40) | st.lists(blocks, max_size=3),
        }
    ),
    max_size=5,
)
tools = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["get_weather", "get weather", "x" * 65]) | st.text(max_size=12) | json_values},
        optional={
            "input_schema": st.just({"type": "object"}) | json_values,
            "type": st.sampled_from(["custom", "web_search_20250305"]) | st.text(max_size=10),
            "description": st.text(max_size=20),
            "cache_control": cache_controls,
        },
    ),
    max_size=2,
)
thinking_configs = (
    st.fixed_dictionaries(
        {"type": st.sampled_from(["enabled", "adaptive", "disabled", "between_tools", "on"])},
        optional={
            "budget_tokens": st.integers(min_value=-1, max_value=70_000) | json_values,
            "display": st.sampled_from(["summarized", "omitted", "verbose"]),
        },
    )
    | json_values
)
tool_choices = (
    st.fixed_dictionaries(
        {"type": st.sampled_from(["auto", "any", "tool", "none", "maybe"])},
        optional={
            "name": st.sampled_from(["get_weather", "nope"]),
            "disable_parallel_tool_use": st.booleans() | json_values,
        },
    )
    | json_values
)
api_bodies = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS) | json_values,
        "max_tokens": st.integers(min_value=-2, max_value=130_000) | json_values,
        "messages": messages | json_values,
    },
    optional={
        "stream": st.booleans() | json_values,
        "system": st.text(max_size=30) | st.lists(text_blocks) | json_values,
        "stop_sequences": st.lists(st.text(max_size=5), max_size=3) | json_values,
        "tools": tools | json_values,
        "tool_choice": tool_choices,
        "temperature": st.floats() | json_values,
        "top_p": st.floats() | json_values,
        "top_k": st.integers(min_value=-2, max_value=500) | json_values,
        "metadata": json_values,
        "thinking": thinking_configs,
        "cache_control": cache_controls | json_values,
        "service_tier": st.sampled_from(["auto", "standard_only", "priority"]),
        "output_config": json_values,
    },
)
versions = st.sampled_from(["2026-10-21", "2023-06-01", None, "", "2024-01-01"])


def assert_api_answer(response: httpx.Response, body: Any) -> None:
    """Never a 5xx; a rejection in the real API's error shape (marked not worth retrying); or a complete reply."""
    assert response.status_code < 500, (body, response.status_code, response.text[:300])
    assert not LEAKS.search(response.text)
    if response.status_code != 200:
        assert_clear_rejection(response, "api")
        assert set(response.json()) == {"type", "error", "request_id"}
        assert response.headers.get("x-should-retry") == "false", response.headers
    elif response.headers["content-type"].startswith("text/event-stream"):
        names = [event.event for event in parse_sse([response.content], strict_eof=True)]
        assert names[0] == "message_start" and names[-1] == "message_stop", names
    else:
        assert response.json()["type"] == "message"


WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
}


def valid_body(
    model: str,
    stream: bool,
    think: int | None,
    history: bool,
    attach: str | None,
    cached: bool,
    choice: str | None,
    max_tokens: int,
) -> dict[str, Any]:
    """A request every rule accepts: Haiku 4.5 or Sonnet 4.6, optional manual thinking, a finished tool loop whose
    assistant turn starts with its signed thinking block, an image or document, cache breakpoints, a tool choice."""
    text = "Paris is asked about."
    question: list[dict[str, Any]] = [
        {
            "type": "text",
            "text": "What is the weather in Paris?",
            **({"cache_control": {"type": "ephemeral", "ttl": "1h"}} if cached else {}),
        }
    ]
    if attach == "image":
        question.insert(0, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}})
    elif attach == "document":
        question.insert(
            0,
            {
                "type": "document",
                "title": "Notes",
                "citations": {"enabled": True},
                "source": {"type": "text", "media_type": "text/plain", "data": "Paris is in France."},
            },
        )
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    if history:
        messages += [
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": text, "signature": signing.sign_thinking(text)},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 C"}]},
        ]
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": messages,
        "tools": [WEATHER],
        "system": [
            {"type": "text", "text": "Be brief.", **({"cache_control": {"type": "ephemeral"}} if cached else {})}
        ],
    }
    if stream:
        body["stream"] = True
    if think is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": think}
        body["max_tokens"] = max(max_tokens, think + 1)
    if choice and (think is None or choice in ("auto", "none")):
        body["tool_choice"] = {"type": choice, **({"name": "get_weather"} if choice == "tool" else {})}
    return body


valid_bodies = st.builds(
    valid_body,
    model=st.sampled_from([MODEL, "claude-sonnet-4-6"]),
    stream=st.booleans(),
    think=st.none() | st.integers(min_value=1024, max_value=4096),
    history=st.booleans(),
    attach=st.sampled_from([None, "image", "document"]),
    cached=st.booleans(),
    choice=st.sampled_from([None, "auto", "any", "tool", "none"]),
    max_tokens=st.integers(min_value=0, max_value=300),
)


@FUZZ
@given(body=valid_bodies, version=st.sampled_from(["2026-10-21", "2023-06-01"]))
def test_simulator_serves_every_valid_body(
    sim: Simulator, http: httpx.Client, body: dict[str, Any], version: str
) -> None:
    response = post_json(http, sim.base_url + "/v1/messages", body, **{"x-api-key": "k", "anthropic-version": version})
    assert response.status_code == 200, (body, response.text[:300])
    assert_api_answer(response, body)


@FUZZ
@given(body=mutated(api_bodies), version=versions)
def test_simulator_messages_bodies(sim: Simulator, http: httpx.Client, body: Any, version: str | None) -> None:
    headers = {"x-api-key": "k", **({"anthropic-version": version} if version is not None else {})}
    response = post_json(http, sim.base_url + "/v1/messages", body, **headers)
    assert_api_answer(response, body)
    if version not in ("2026-10-21", "2023-06-01"):
        assert response.status_code == 400 and response.json()["error"]["message"].startswith("anthropic-version:")


@FUZZ
@given(body=mutated(api_bodies))
def test_simulator_count_tokens_bodies(sim: Simulator, http: httpx.Client, body: Any) -> None:
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("max_tokens", "stream")} if body.get("model") else body
    response = post_json(http, sim.base_url + "/v1/messages/count_tokens", body, **API_HEADERS)
    assert response.status_code < 500, (body, response.status_code, response.text[:300])
    if response.status_code != 200:
        assert_clear_rejection(response, "api")
    else:
        assert isinstance(response.json()["input_tokens"], int)


# The rules themselves, called directly and far more often: nothing escapes but ApiError, always a 4xx that names
# what is wrong.
@settings(FUZZ, max_examples=EXAMPLES * 2)
@given(body=mutated(api_bodies), version=st.sampled_from(["2026-10-21", "2023-06-01"]))
def test_validation_raises_nothing_but_api_errors(body: Any, version: str) -> None:
    for validate in (validate_messages, validate_count_tokens):
        try:
            validate(body, version=version)
        except ApiError as err:
            assert 400 <= err.status < 500 and err.error_type.endswith("_error") and err.message


@FUZZ
@given(
    headers=st.dictionaries(
        st.sampled_from(["anthropic-version", "Anthropic-Version", "x-api-key", "other"]),
        st.text(max_size=12),
        max_size=3,
    )
)
def test_check_version_raises_nothing_but_api_errors(headers: dict[str, str]) -> None:
    try:
        assert check_version(headers) in ("2023-06-01", "2026-10-21")
    except ApiError as err:
        assert err.status == 400 and err.message.startswith("anthropic-version:")


# Counts stay below 10**4 here: an absurd count is its own test below.
numbers = (
    st.integers(min_value=-5, max_value=10_000)
    | st.floats(allow_nan=False, max_value=1e6)
    | st.booleans()
    | st.text(max_size=4)
    | st.none()
)


@FUZZ
@given(
    payload=st.fixed_dictionaries(
        {},
        optional={
            "fault": st.sampled_from(FAULTS) | st.text(max_size=12),
            "count": numbers,
            "after": numbers,
            "retry_after": numbers,
            "stall_seconds": numbers,
            "other": json_values,
        },
    )
    | json_values
)
def test_simulator_fault_endpoint(sim: Simulator, http: httpx.Client, payload: Any) -> None:
    response = post_json(http, sim.base_url + "/_sim/faults", payload)
    assert response.status_code in (200, 400), (payload, response.status_code, response.text[:300])
    if response.status_code == 400:
        assert_clear_rejection(response, "api")
    sim.clear_faults()


@FUZZ
@given(payload=st.fixed_dictionaries({"speed": numbers}) | json_values)
def test_simulator_config_endpoint(sim: Simulator, http: httpx.Client, payload: Any) -> None:
    response = post_json(http, sim.base_url + "/_sim/config", payload)
    assert response.status_code in (200, 400), (payload, response.status_code)
    if response.status_code == 400:
        assert_clear_rejection(response, "api")
    sim.speed = 0


def test_simulator_refuses_a_nan_speed(sim: Simulator, http: httpx.Client) -> None:
    try:
        response = post_json(http, sim.base_url + "/_sim/config", {"speed": math.nan})
        assert response.status_code == 400
    finally:
        sim.speed = 0


def test_simulator_refuses_an_absurd_fault_count(sim: Simulator, http: httpx.Client) -> None:
    try:
        response = post_json(http, sim.base_url + "/_sim/faults", {"fault": "overloaded", "count": 10**5})
        assert response.status_code == 400
    finally:
        sim.clear_faults()
