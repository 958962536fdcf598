"""The simulator's request rules (issue 10): what the real API rejects, the simulator rejects, with the same status,
error type and a message naming the field.

Requests go over real HTTP: through the real SDK where it can send them (`extra_body` for fields 2.11 lacks), raw
httpx otherwise. Each rule names its source in a comment above its test:
  [skills X]   github.com/anthropics/skills, skills/claude-api/X (mirror in /work/.mirror/anthropics+skills)
  [SDK X]      the installed anthropic 2.11, anthropic/X
  [recorded]   /work/shared/fixtures/anthropic-sdk-python/recorded/f59a9391-*.json (a real 400)
  [api-today]  /work/shared/notes/api-today.md
  [report URL] the real API's message text, quoted verbatim in a public bug report
"""

from __future__ import annotations

import base64
import json
from typing import Any

import anthropic
import httpx
import pytest

from course_utils.simulator import Simulator, signing
from course_utils.simulator.validation import (
    ApiError,
    check_version,
    model_rules,
    thinking_on,
    validate_count_tokens,
    validate_messages,
)

from recorded import fixtures_dir

MODEL = "claude-haiku-4-5"
HEADERS = {"x-api-key": "test-key", "anthropic-version": "2026-10-21"}
OLD = {"anthropic-version": "2023-06-01"}  # the version that still takes temperature / top_p / top_k
TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
}
HI = [{"role": "user", "content": "Hi"}]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": 64, "messages": HI, **fields}


def post(sim: Simulator, payload: Any, path: str = "/v1/messages", headers: dict[str, str] = HEADERS) -> httpx.Response:
    return httpx.post(sim.base_url + path, json=payload, headers=headers, timeout=30)


def rejected(response: httpx.Response, field: str, status: int = 400, error_type: str = "invalid_request_error") -> str:
    """The API's error shape, the status and type asked for, and a message that starts by naming `field`."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"type", "error", "request_id"} and data["type"] == "error"
    assert data["error"]["type"] == error_type
    message = data["error"]["message"]
    assert message.startswith(field), message
    return message


def accepted(response: httpx.Response) -> dict[str, Any]:
    """A 200: the Message, or for a stream its event names."""
    assert response.status_code == 200, response.text[:500]
    if response.headers["content-type"].startswith("text/event-stream"):
        return {"events": [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]}
    return response.json()


def sdk_rejects(client: anthropic.Anthropic, field: str, **kwargs: Any) -> str:
    """The SDK raises BadRequestError for this request, and the API's message names `field`."""
    request = {"model": MODEL, "max_tokens": 64, "messages": HI, "timeout": 10, **kwargs}
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**request)
    assert info.value.status_code == 400 and info.value.type == "invalid_request_error"
    message = info.value.body["error"]["message"]
    assert message.startswith(field), message
    return message


def thinking_block(text: str = "Paris, so look up its weather.") -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": signing.sign_thinking(text)}


def tool_loop(
    use_id: str = "toolu_01A", result_id: str | None = None, first: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """user question -> assistant tool_use (after `first`, if given) -> user tool_result."""
    assistant = ([first] if first else []) + [
        {"type": "tool_use", "id": use_id, "name": "get_weather", "input": {"location": "Paris"}}
    ]
    return [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": assistant},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": result_id or use_id, "content": "18 C and sunny"}],
        },
    ]


# -- the version header ----------------------------------------------------------------------------------------------


# [api-today "API version"] SDK 2.11 sends 2026-10-21, older clients 2023-06-01; a raw request without the header is
# a 400. The message is the real API's for a missing header ("anthropic-version: header is required").
def test_check_version_returns_a_known_version() -> None:
    assert check_version({"anthropic-version": "2026-10-21"}) == "2026-10-21"
    assert check_version({"Anthropic-Version": "2023-06-01"}) == "2023-06-01"


@pytest.mark.parametrize("headers", [{}, {"anthropic-version": ""}, {"x-api-key": "k"}])
def test_check_version_missing_is_a_400(headers: dict[str, str]) -> None:
    with pytest.raises(ApiError) as info:
        check_version(headers)
    assert (info.value.status, info.value.error_type) == (400, "invalid_request_error")
    assert info.value.message == "anthropic-version: header is required"


@pytest.mark.parametrize("version", ["2024-01-01", "latest", "2026-10-21x"])
def test_check_version_unknown_is_a_400_naming_the_header(version: str) -> None:
    with pytest.raises(ApiError) as info:
        check_version({"anthropic-version": version})
    assert info.value.status == 400 and info.value.message.startswith("anthropic-version:")


# [api-today "API version"] over HTTP, as app.py calls check_version(headers); every 4xx carries x-should-retry: false
# ([wire-format 5.1]: recorded real 400s carry `false`).
def test_a_raw_request_without_the_version_header_is_a_400(fresh_sim: Simulator) -> None:
    response = post(fresh_sim, body(), headers={"x-api-key": "test-key"})
    assert rejected(response, "anthropic-version:") == "anthropic-version: header is required"
    assert response.headers.get("x-should-retry") == "false"
    rejected(
        post(
            fresh_sim, {"model": MODEL, "messages": HI}, "/v1/messages/count_tokens", headers={"x-api-key": "test-key"}
        ),
        "anthropic-version:",
    )


def test_both_versions_are_served(fresh_sim: Simulator) -> None:
    for version in ("2023-06-01", "2026-10-21"):
        accepted(post(fresh_sim, body(), headers={**HEADERS, "anthropic-version": version}))


def test_validation_takes_the_version() -> None:
    for version in ("2023-06-01", "2026-10-21"):
        assert validate_messages(body(), version=version)["model"] == MODEL
        assert validate_count_tokens({"model": MODEL, "messages": HI}, version=version)["model"] == MODEL
        with pytest.raises(ApiError):
            validate_messages(body(temprature=0.5), version=version)
    assert validate_messages(body(temperature=0.5), version="2023-06-01")["temperature"] == 0.5
    with pytest.raises(ApiError) as info:
        validate_messages(body(temperature=0.5))  # the default version is the SDK's, 2026-10-21
    assert info.value.message == "temperature: Extra inputs are not permitted"


# [third-party measurements of the real API: https://codersera.com/blog/anthropic-api-2026-10-21-sdk-migration-guide-2026/
# and https://qiita.com/Synthorai/items/01a0067e88747257a4e6 ("temperature: 1.0 fails with 'temperature: Extra inputs
# are not permitted'"); consistent with SDK 2.11 (which sends 2026-10-21) having dropped the three parameters] from
# 2026-10-21 temperature, top_p and top_k are unknown fields on every model, even at their defaults.
@pytest.mark.parametrize("model", ["claude-haiku-4-5", "claude-sonnet-4-6", "claude-sonnet-5"])
@pytest.mark.parametrize("field", ["temperature", "top_p", "top_k"])
def test_2026_10_21_takes_no_sampling_parameters(client: anthropic.Anthropic, model: str, field: str) -> None:
    message = sdk_rejects(client, f"{field}:", model=model, extra_body={field: 1})
    assert message == f"{field}: Extra inputs are not permitted"


# [same third-party measurements] 2026-10-21 also rejects document blocks in assistant messages and citations on text
# blocks in user messages; 2023-06-01 takes both.
DOC = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."}}
CITED = {
    "type": "text",
    "text": "As quoted:",
    "citations": [
        {
            "type": "char_location",
            "cited_text": "The sky",
            "document_index": 0,
            "start_char_index": 0,
            "end_char_index": 7,
        }
    ],
}


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        (
            [
                *HI,
                {"role": "assistant", "content": [DOC, {"type": "text", "text": "Noted."}]},
                {"role": "user", "content": "Go on"},
            ],
            "messages.1.content.0.type:",
        ),
        ([{"role": "user", "content": [CITED]}], "messages.0.content.0.citations:"),
    ],
)
def test_2026_10_21_content_rules(fresh_sim: Simulator, messages: list[dict[str, Any]], field: str) -> None:
    rejected(post(fresh_sim, body(messages=messages)), field)
    accepted(post(fresh_sim, body(messages=messages), headers={**HEADERS, **OLD}))


# -- unknown top-level fields ----------------------------------------------------------------------------------------


# [api-today "Errors"] unknown top-level fields are a 400 "Extra inputs are not permitted"; the accepted set is the
# SDK's messages.create() body (resources/messages/messages.py, types/message_create_params.py and the beta
# MessageCreateParams) plus temperature/top_p/top_k, which 2.11 no longer exposes but the API still takes.
@pytest.mark.parametrize("field", ["max_token", "temprature", "top-p", "stream_options", "betas", "user"])
def test_a_misspelt_or_unknown_field_is_a_400_naming_it(client: anthropic.Anthropic, field: str) -> None:
    message = sdk_rejects(client, f"{field}:", extra_body={field: 1})
    assert message == f"{field}: Extra inputs are not permitted"


def test_every_documented_field_is_accepted(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=64,
        messages=HI,
        timeout=10,
        system="Be brief.",
        stop_sequences=["STOP"],
        metadata={"user_id": "learner-1"},
        service_tier="auto",
        tools=[TOOL],
        tool_choice={"type": "auto"},
        thinking={"type": "disabled"},
        cache_control={"type": "ephemeral"},
        inference_geo="us",
        speed="standard",
        output_config={"effort": "high"},
    )
    assert message.type == "message"
    assert (
        client.messages.create(
            model=MODEL, max_tokens=64, messages=HI, timeout=10, extra_headers=OLD, extra_body={"temperature": 0.5}
        ).type
        == "message"
    )


# [SDK resources/messages/messages.py count_tokens()] count_tokens takes no max_tokens, stream or sampling fields.
@pytest.mark.parametrize("field", ["max_tokens", "stream", "temperature"])
def test_count_tokens_rejects_fields_it_does_not_take(fresh_sim: Simulator, field: str) -> None:
    response = post(fresh_sim, {"model": MODEL, "messages": HI, field: 1}, "/v1/messages/count_tokens")
    assert rejected(response, f"{field}:") == f"{field}: Extra inputs are not permitted"


# -- sampling parameters ---------------------------------------------------------------------------------------------


# On 2023-06-01 (the only version that takes them):
# [skills shared/error-codes.md "400 Validation Errors"] temperature must be 0.0-1.0; top_p is a probability; top_k a
# non-negative integer (the API's historical parameter ranges).
@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"temperature": 1.5}, "temperature:"),
        ({"temperature": -0.1}, "temperature:"),
        ({"temperature": "hot"}, "temperature:"),
        ({"temperature": True}, "temperature:"),
        ({"top_p": 1.01}, "top_p:"),
        ({"top_p": "all"}, "top_p:"),
        ({"top_k": -1}, "top_k:"),
        ({"top_k": 2.5}, "top_k:"),
        ({"top_k": "5"}, "top_k:"),
    ],
)
def test_sampling_types_and_ranges(client: anthropic.Anthropic, extra: dict[str, Any], field: str) -> None:
    assert "Extra inputs" not in sdk_rejects(client, field, extra_headers=OLD, extra_body=extra)


# [skills shared/model-migration.md "Sampling parameters: temperature OR top_p, not both"] on Claude 4.x passing both
# is a 400; either alone, and top_k, are fine.
def test_claude_4_takes_one_of_temperature_and_top_p(client: anthropic.Anthropic) -> None:
    for extra in ({"temperature": 0.2}, {"top_p": 0.9}, {"top_k": 40}, {"temperature": 0.2, "top_k": 40}):
        assert (
            client.messages.create(
                model="claude-sonnet-4-6", max_tokens=32, messages=HI, timeout=10, extra_headers=OLD, extra_body=extra
            ).type
            == "message"
        )
    sdk_rejects(
        client,
        "temperature:",
        model="claude-sonnet-4-6",
        extra_headers=OLD,
        extra_body={"temperature": 0.2, "top_p": 0.9},
    )


# [skills shared/error-codes.md "Model-specific 400s on Fable 5 / Opus 4.8 / 4.7"] temperature, top_p and top_k are
# removed: sending any of them is a 400.
@pytest.mark.parametrize("model", ["claude-opus-4-7", "claude-opus-4-8", "claude-fable-5"])
@pytest.mark.parametrize("extra", [{"temperature": 1.0}, {"top_p": 0.9}, {"top_k": 5}])
def test_sampling_removed_on_the_newest_models(client: anthropic.Anthropic, model: str, extra: dict[str, Any]) -> None:
    message = sdk_rejects(client, f"{next(iter(extra))}:", model=model, extra_headers=OLD, extra_body=extra)
    assert model in message


# [skills shared/model-migration.md "Migrating to Claude Sonnet 5" 2.] a non-default value is a 400; omitting the
# parameter, or passing its default, is accepted (temperature's default is 1.0).
def test_sonnet_5_only_takes_default_sampling(client: anthropic.Anthropic) -> None:
    assert (
        client.messages.create(
            model="claude-sonnet-5",
            max_tokens=32,
            messages=HI,
            timeout=10,
            extra_headers=OLD,
            extra_body={"temperature": 1.0},
        ).type
        == "message"
    )
    assert "claude-sonnet-5" in sdk_rejects(
        client, "temperature:", model="claude-sonnet-5", extra_headers=OLD, extra_body={"temperature": 0.2}
    )


# -- max_tokens ------------------------------------------------------------------------------------------------------


# [SDK types/message_create_params.py max_tokens] "Set to `0` to populate the prompt cache without generating a
# response"; [skills shared/prompt-caching.md "pre-warming"] the reply has content [] and stop_reason max_tokens.
def test_max_tokens_zero_is_accepted(fresh_sim: Simulator) -> None:
    reply = accepted(post(fresh_sim, body(max_tokens=0)))
    assert reply["content"] == [] and reply["stop_reason"] == "max_tokens"


@pytest.mark.parametrize(("value", "start"), [(-1, "max_tokens:"), ("64", "max_tokens:"), (1.5, "max_tokens:")])
def test_max_tokens_negative_or_not_an_integer(fresh_sim: Simulator, value: Any, start: str) -> None:
    rejected(post(fresh_sim, body(max_tokens=value)), start)


# [skills shared/models.md "Current Models"] Haiku 4.5 64K output, Sonnet 4.6 / Opus 4.6-4.8 / Sonnet 5 128K; the
# message names the model and its limit (the current simulator's wording).
@pytest.mark.parametrize(
    ("model", "limit"), [("claude-haiku-4-5", 64_000), ("claude-sonnet-4-6", 128_000), ("claude-opus-4-8", 128_000)]
)
def test_max_tokens_limit_per_model(fresh_sim: Simulator, model: str, limit: int) -> None:
    accepted(post(fresh_sim, body(model=model, max_tokens=limit, stream=True)))
    message = rejected(post(fresh_sim, body(model=model, max_tokens=limit + 1)), "max_tokens:")
    assert str(limit) in message and model in message


# -- system ----------------------------------------------------------------------------------------------------------


# [SDK types/message_create_params.py system: Union[str, Iterable[TextBlockParam]]; types/text_block_param.py] a
# string or text blocks with optional cache_control / citations; empty text is rejected like a message's.
def test_system_as_text_blocks(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model=MODEL,
        max_tokens=32,
        messages=HI,
        timeout=10,
        system=[
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Answer in English.", "cache_control": {"type": "ephemeral"}},
        ],
    )
    assert reply.type == "message"


@pytest.mark.parametrize(
    ("system", "field"),
    [
        ([{"type": "text", "text": ""}], "system: text content blocks must be non-empty"),
        ([{"type": "text", "text": "   "}], "system: text content blocks must contain non-whitespace text"),
        ([{"type": "image", "text": "x"}], "system.0.type:"),
        ([{"type": "text"}], "system.0.text:"),
        ([{"type": "text", "text": "x", "cache_control": {"type": "forever"}}], "system.0.cache_control.type:"),
        (42, "system:"),
    ],
)
def test_bad_system_prompts(fresh_sim: Simulator, system: Any, field: str) -> None:
    rejected(post(fresh_sim, body(system=system)), field)


# -- cache_control ---------------------------------------------------------------------------------------------------


# [SDK types/cache_control_ephemeral_param.py] {"type": "ephemeral", "ttl": "5m" | "1h"}; [skills
# shared/prompt-caching.md] "Max 4 cache_control breakpoints per request" (tools -> system -> messages, plus the
# top-level automatic one). The over-limit wording is the real API's.
@pytest.mark.parametrize(
    ("cache_control", "field"),
    [
        ({"type": "ephemeral", "ttl": "2h"}, "messages.0.content.0.cache_control.ttl:"),
        ({"type": "persistent"}, "messages.0.content.0.cache_control.type:"),
        ({"type": "ephemeral", "scope": "org"}, "messages.0.content.0.cache_control.scope: Extra inputs"),
        ("ephemeral", "messages.0.content.0.cache_control:"),
    ],
)
def test_bad_cache_control(fresh_sim: Simulator, cache_control: Any, field: str) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": cache_control}]}]
    rejected(post(fresh_sim, body(messages=messages)), field)


def cached(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": "1h"}}


def test_four_breakpoints_pass_and_a_fifth_is_a_400(fresh_sim: Simulator) -> None:
    tools = [{**TOOL, "cache_control": {"type": "ephemeral"}}]
    system = [cached("You are terse.")]
    messages = [{"role": "user", "content": [cached("Hi"), cached("there")]}]
    accepted(post(fresh_sim, body(tools=tools, system=system, messages=messages)))
    message = rejected(
        post(fresh_sim, body(tools=tools, system=system, messages=messages, cache_control={"type": "ephemeral"})),
        "cache_control:",
    )
    assert "A maximum of 4 blocks with cache_control may be provided. Found 5." in message


# -- tools and tool_choice -------------------------------------------------------------------------------------------


# [api-today "Tool conversations"] tool names match ^[a-zA-Z0-9_-]{1,64}$ and input_schema is an object schema;
# [SDK types/tool_param.py] input_schema is required for a custom tool; names must be unique.
@pytest.mark.parametrize(
    ("tools", "field"),
    [
        ([{**TOOL, "name": "get weather"}], "tools.0.name:"),
        ([{**TOOL, "name": "x" * 65}], "tools.0.name:"),
        ([{**TOOL, "name": ""}], "tools.0.name:"),
        ([{"name": "get_weather"}], "tools.0.input_schema: Field required"),
        ([{**TOOL, "input_schema": {"type": "array"}}], "tools.0.input_schema.type:"),
        ([{**TOOL, "input_schema": "object"}], "tools.0.input_schema:"),
        ([TOOL, TOOL], "tools: Tool names must be unique."),
    ],
)
def test_bad_tool_definitions(client: anthropic.Anthropic, tools: list[dict[str, Any]], field: str) -> None:
    sdk_rejects(client, field, tools=tools)


# [SDK types/tool_union_param.py] server tools carry their own `type` (web_search_20250305...) and no input_schema.
def test_a_server_tool_passes(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model=MODEL,
        max_tokens=32,
        messages=HI,
        timeout=10,
        tools=[TOOL, {"type": "web_search_20250305", "name": "web_search"}],
    )
    assert reply.type == "message"


# [SDK types/tool_choice_*_param.py] auto / any / tool (name) / none; disable_parallel_tool_use is a bool.
@pytest.mark.parametrize(
    ("tool_choice", "field"),
    [
        ({"type": "tool", "name": "get_time"}, "tool_choice.name:"),
        ({"type": "tool"}, "tool_choice.name:"),
        ({"type": "maybe"}, "tool_choice.type:"),
        ({"type": "auto", "disable_parallel_tool_use": "yes"}, "tool_choice.disable_parallel_tool_use:"),
        ({"type": "none", "disable_parallel_tool_use": True}, "tool_choice.disable_parallel_tool_use: Extra inputs"),
        ("auto", "tool_choice:"),
    ],
)
def test_bad_tool_choice(fresh_sim: Simulator, tool_choice: Any, field: str) -> None:
    rejected(post(fresh_sim, body(tools=[TOOL], tool_choice=tool_choice)), field)


def test_good_tool_choices(client: anthropic.Anthropic) -> None:
    for choice in (
        {"type": "auto", "disable_parallel_tool_use": True},
        {"type": "any"},
        {"type": "none"},
        {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    ):
        assert (
            client.messages.create(
                model=MODEL, max_tokens=64, messages=HI, timeout=10, tools=[TOOL], tool_choice=choice
            ).type
            == "message"
        )


# -- the conversation ------------------------------------------------------------------------------------------------


# [skills shared/error-codes.md "Common Mistakes"] the first message must be `user`.
@pytest.mark.parametrize("role", ["assistant", "system"])
def test_the_first_message_must_be_user(fresh_sim: Simulator, role: str) -> None:
    messages = [{"role": role, "content": "Hello"}, {"role": "user", "content": "Hi"}]
    rejected(post(fresh_sim, body(messages=messages)), "messages.0.role:")


# [SDK types/message_create_params.py messages] "Consecutive user or assistant turns in your request will be combined
# into a single turn" (the recorded real 400 below shows it): no alternation error.
def test_consecutive_user_turns_are_combined(fresh_sim: Simulator) -> None:
    accepted(post(fresh_sim, body(messages=[{"role": "user", "content": "Hi"}, {"role": "user", "content": "there"}])))


# [skills shared/model-migration.md "mid-session system prompts"; SDK types/system_message_param.py] role "system"
# entries in `messages` (string or text blocks).
def test_a_mid_session_system_message_is_accepted(fresh_sim: Simulator) -> None:
    messages = [*HI, {"role": "system", "content": "This project's codebase is Go."}]
    accepted(post(fresh_sim, body(model="claude-opus-4-8", messages=messages)))


# [recorded] the real API's 400 for an orphan tool_result, replayed byte for byte: the same message.
def test_the_recorded_orphan_tool_result_gets_the_real_apis_message(fresh_sim: Simulator) -> None:
    path = next(fixtures_dir().glob("recorded/f59a9391-*.json"))
    exchange = next(e for e in json.loads(path.read_text()) if e["response"]["status_code"] == 400)
    headers = {"x-api-key": "test-key", "anthropic-version": exchange["request"]["headers"]["anthropic-version"]}
    response = post(fresh_sim, exchange["request"]["body"], "/v1/messages?beta=true", headers=headers)
    assert rejected(response, "messages.0.content.1:") == exchange["response"]["body"]["error"]["message"]


# [recorded] + [report https://github.com/anthropics/claude-code/issues/1237] every tool_use must be answered by a
# tool_result with its id in the very next user turn; a result whose id is not in the previous turn is an orphan.
def test_a_tool_use_without_its_result_is_a_400(client: anthropic.Anthropic) -> None:
    messages = tool_loop()
    messages[2] = {"role": "user", "content": "Never mind."}
    message = sdk_rejects(client, "messages.1:", tools=[TOOL], messages=messages)
    assert message == (
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: "
        "toolu_01A. Each `tool_use` block must have a corresponding `tool_result` block in the next "
        "message."
    )


def test_a_mismatched_tool_result_id_is_a_400(client: anthropic.Anthropic) -> None:
    # The unanswered tool_use is found first, as the real API reports the assistant turn before the user turn.
    sdk_rejects(client, "messages.1:", tools=[TOOL], messages=tool_loop(result_id="toolu_01B"))


def test_an_orphan_tool_result_after_a_text_turn_is_a_400(client: anthropic.Anthropic) -> None:
    messages = [
        *HI,
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01X", "content": "?"}]},
    ]
    message = sdk_rejects(client, "messages.2.content.0:", tools=[TOOL], messages=messages)
    assert "unexpected `tool_use_id` found in `tool_result` blocks: toolu_01X" in message


def test_duplicate_tool_use_ids_are_a_400(fresh_sim: Simulator) -> None:
    messages = tool_loop()
    messages[1]["content"].append(dict(messages[1]["content"][0]))
    assert "ids must be unique" in rejected(
        post(fresh_sim, body(tools=[TOOL], messages=messages)), "messages.1.content.1:"
    )


def test_a_complete_tool_loop_is_answered(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(model=MODEL, max_tokens=64, timeout=10, tools=[TOOL], messages=tool_loop())
    assert reply.type == "message"


# [SDK types/tool_use_block_param.py, tool_result_block_param.py] required fields of the blocks themselves.
@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"type": "tool_use", "name": "get_weather", "input": {}}, "messages.1.content.0.id:"),
        ({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": "Paris"}, "messages.1.content.0.input:"),
    ],
)
def test_bad_tool_use_blocks(fresh_sim: Simulator, block: dict[str, Any], field: str) -> None:
    messages = [*HI, {"role": "assistant", "content": [block]}, {"role": "user", "content": "ok"}]
    rejected(post(fresh_sim, body(tools=[TOOL], messages=messages)), field)


# -- images and documents --------------------------------------------------------------------------------------------


def image(media_type: str, data: str) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def with_block(block: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [block, {"type": "text", "text": "What is this?"}]}]


# [SDK types/base64_image_source_param.py] media_type image/jpeg|png|gif|webp, base64 data; the data must decode and
# be an image of the type it claims; [SDK types/url_image_source_param.py] url sources pass.
def test_good_images(client: anthropic.Anthropic) -> None:
    for block in (
        image("image/png", b64(PNG)),
        image("image/jpeg", b64(JPEG)),
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ):
        assert (
            client.messages.create(model=MODEL, max_tokens=32, timeout=10, messages=with_block(block)).type == "message"
        )


@pytest.mark.parametrize(
    ("block", "field", "words"),
    [
        (image("image/bmp", b64(PNG)), "messages.0.content.0.source.media_type:", "image/webp"),
        (image("image/png", "not base64!"), "messages.0.content.0.source.data:", "base64"),
        (image("image/jpeg", b64(PNG)), "messages.0.content.0.source.data:", "image/png"),
        (image("image/png", b64(b"hello world")), "messages.0.content.0.source.data:", "valid image"),
        ({"type": "image", "source": {"type": "url"}}, "messages.0.content.0.source.url:", ""),
        ({"type": "image"}, "messages.0.content.0.source:", ""),
        ({"type": "image", "source": {"type": "svg", "data": "x"}}, "messages.0.content.0.source.type:", ""),
    ],
)
def test_bad_images_name_the_field(fresh_sim: Simulator, block: dict[str, Any], field: str, words: str) -> None:
    assert words in rejected(post(fresh_sim, body(messages=with_block(block))), field)


# [SDK types/document_block_param.py and its sources] text/plain text, base64 application/pdf, url, content; optional
# title, context and citations {"enabled": bool}.
def test_good_documents(client: anthropic.Anthropic) -> None:
    for block in (
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "The sky is blue."},
            "title": "Sky",
            "context": "A fact",
            "citations": {"enabled": True},
        },
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "Chunk one."}]}},
    ):
        assert (
            client.messages.create(model=MODEL, max_tokens=32, timeout=10, messages=with_block(block)).type == "message"
        )


@pytest.mark.parametrize(
    ("block", "field"),
    [
        (
            {"type": "document", "source": {"type": "text", "media_type": "text/html", "data": "x"}},
            "messages.0.content.0.source.media_type:",
        ),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PNG)}},
            "messages.0.content.0.source.data:",
        ),
        (
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "%%%"}},
            "messages.0.content.0.source.data:",
        ),
        (
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}, "title": 7},
            "messages.0.content.0.title:",
        ),
        (
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                "citations": {"enabled": "yes"},
            },
            "messages.0.content.0.citations.enabled:",
        ),
        ({"type": "document", "source": {"type": "content", "content": []}}, "messages.0.content.0.source.content:"),
    ],
)
def test_bad_documents_name_the_field(fresh_sim: Simulator, block: dict[str, Any], field: str) -> None:
    rejected(post(fresh_sim, body(messages=with_block(block))), field)


# -- prefill ---------------------------------------------------------------------------------------------------------


# [skills shared/model-migration.md "Assistant-turn prefills return 400 (Opus 4.6 and Sonnet 4.6)", SKILL.md "Prefill
# removed (Fable 5 and the 4.6/4.7/4.8 family)"; SDK message_create_params.py "Prefill not supported"]; the wording
# is the real API's ([report https://github.com/jikig-ai/soleur/issues/3250]). Haiku 4.5 still takes a prefill.
PREFILL = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "The colour is"}]


@pytest.mark.parametrize("model", ["claude-sonnet-4-6", "claude-opus-4-6", "claude-opus-4-8", "claude-fable-5"])
def test_prefill_is_a_400_where_the_model_has_none(client: anthropic.Anthropic, model: str) -> None:
    message = sdk_rejects(client, "This model", model=model, messages=PREFILL)
    assert message == (
        "This model does not support assistant message prefill. The conversation must end with a user message."
    )


def test_prefill_is_accepted_on_haiku_4_5(client: anthropic.Anthropic) -> None:
    assert client.messages.create(model=MODEL, max_tokens=32, messages=PREFILL, timeout=10).type == "message"
    # the existing rule, kept: a prefill may not end with whitespace
    sdk_rejects(
        client,
        "messages: final assistant content cannot end with trailing whitespace",
        messages=[PREFILL[0], {"role": "assistant", "content": "The colour is "}],
    )


# -- thinking configuration ------------------------------------------------------------------------------------------


# [SDK types/thinking_config_enabled_param.py] budget_tokens "Must be ≥1024 and less than `max_tokens`"; [skills
# shared/error-codes.md] budget_tokens >= max_tokens is a 400 (the real API's wording for it is used).
def test_enabled_thinking_budget_rules(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model=MODEL, max_tokens=2048, messages=HI, timeout=10, thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert reply.type == "message"
    sdk_rejects(
        client, "thinking.enabled.budget_tokens:", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1023}
    )
    message = sdk_rejects(client, "max_tokens:", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 2048})
    assert "`max_tokens` must be greater than `thinking.budget_tokens`" in message


@pytest.mark.parametrize(
    ("thinking", "field"),
    [
        ({"type": "enabled"}, "thinking.enabled.budget_tokens: Field required"),
        ({"type": "enabled", "budget_tokens": "2000"}, "thinking.enabled.budget_tokens:"),
        ({"type": "enabled", "budget_tokens": 2000, "display": "verbose"}, "thinking.enabled.display:"),
        ({"type": "disabled", "budget_tokens": 2000}, "thinking.disabled.budget_tokens: Extra inputs"),
        ({"type": "on"}, "thinking.type:"),
        ("enabled", "thinking:"),
    ],
)
def test_malformed_thinking_configs(fresh_sim: Simulator, thinking: Any, field: str) -> None:
    rejected(post(fresh_sim, body(max_tokens=4096, thinking=thinking)), field)


# [skills shared/models.md, SKILL.md "Thinking & Effort", error-codes.md]: Haiku 4.5 takes manual thinking only;
# Opus 4.7/4.8 adaptive or disabled, `budget_tokens` a 400; Sonnet 4.6 all three.
@pytest.mark.parametrize(
    ("model", "thinking", "ok"),
    [
        ("claude-haiku-4-5", {"type": "adaptive"}, False),
        ("claude-haiku-4-5", {"type": "disabled"}, True),
        ("claude-opus-4-7", {"type": "enabled", "budget_tokens": 2048}, False),
        ("claude-opus-4-8", {"type": "adaptive", "display": "summarized"}, True),
        ("claude-opus-4-8", {"type": "disabled"}, True),
        ("claude-sonnet-4-6", {"type": "enabled", "budget_tokens": 2048}, True),
        ("claude-sonnet-4-6", {"type": "adaptive"}, True),
        ("claude-sonnet-5", {"type": "enabled", "budget_tokens": 2048}, False),
        ("claude-fable-5", {"type": "adaptive", "display": "omitted"}, True),
    ],
)
def test_thinking_types_per_model(fresh_sim: Simulator, model: str, thinking: dict[str, Any], ok: bool) -> None:
    response = post(fresh_sim, body(model=model, max_tokens=4096, thinking=thinking))
    if ok:
        accepted(response)
    else:
        assert model in rejected(response, "thinking.type:")


# [skills shared/error-codes.md "Fable 5 only: an explicit thinking: {type: "disabled"} returns 400"].
def test_fable_5_rejects_explicit_disabled(fresh_sim: Simulator) -> None:
    assert "disabled" not in model_rules("claude-fable-5").thinking_types  # the catalogue (models.json) agrees
    rejected(post(fresh_sim, body(model="claude-fable-5", thinking={"type": "disabled"})), "thinking.type:")


# [skills SKILL.md "Thinking & Effort"] on Sonnet 5 omitting `thinking` runs adaptive; on Opus 4.7/4.8 it runs
# without thinking. Thinking is on for enabled/adaptive, or when omitted on an adaptive-by-default model.
def test_thinking_on_means_enabled_adaptive_or_an_adaptive_default() -> None:
    assert thinking_on(body(model="claude-sonnet-5"))
    assert not thinking_on(body(model="claude-opus-4-8"))
    assert thinking_on(body(model="claude-opus-4-8", thinking={"type": "adaptive"}))
    assert not thinking_on(body(model="claude-sonnet-5", thinking={"type": "disabled"}))
    assert not thinking_on(body(model="claude-sonnet-5", thinking={"type": "between_tools"}))


# [api-today "Tool choice with thinking"; report https://github.com/anthropics/claude-code/issues/19414 quoting the
# extended-thinking docs: "Thinking isn't compatible with ... forced tool use"] only auto and none with thinking on.
@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        ("claude-haiku-4-5", {"type": "enabled", "budget_tokens": 1024}),
        ("claude-sonnet-5", None),  # adaptive by default
    ],
)
@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_forced_tool_use_with_thinking_is_a_400(
    fresh_sim: Simulator, model: str, thinking: dict[str, Any] | None, choice: dict[str, Any]
) -> None:
    extra = {"thinking": thinking} if thinking else {}
    rejected(
        post(fresh_sim, body(model=model, max_tokens=2048, tools=[TOOL], tool_choice=choice, **extra)), "tool_choice:"
    )
    accepted(post(fresh_sim, body(model=model, max_tokens=2048, tools=[TOOL], tool_choice={"type": "auto"}, **extra)))


# [AWS Bedrock "Extended thinking" (Anthropic's feature-compatibility list): "Thinking isn't compatible with
# temperature, top_p, or top_k modifications" and "You cannot pre-fill responses when thinking is enabled";
# https://docs.memberjunction.org/v6.2/api/functions/_memberjunction_ai-anthropic.ResolveSamplingParams.html quoting the
# thinking docs' "Sampling parameters": temperature and top_k are incompatible with thinking, top_p allowed between
# 0.95 and 1] (on 2023-06-01: 2026-10-21 takes no sampling parameters at all)
def test_thinking_rules_out_sampling_changes_and_prefill(client: anthropic.Anthropic) -> None:
    on = {"type": "enabled", "budget_tokens": 1024}
    assert "thinking" in sdk_rejects(
        client, "temperature:", max_tokens=2048, thinking=on, extra_headers=OLD, extra_body={"temperature": 0.5}
    )
    assert "thinking" in sdk_rejects(
        client, "top_k:", max_tokens=2048, thinking=on, extra_headers=OLD, extra_body={"top_k": 5}
    )
    assert "thinking" in sdk_rejects(
        client, "top_p:", max_tokens=2048, thinking=on, extra_headers=OLD, extra_body={"top_p": 0.5}
    )
    for allowed in ({"temperature": 1}, {"top_p": 0.95}):
        assert (
            client.messages.create(
                model=MODEL,
                max_tokens=2048,
                messages=HI,
                timeout=10,
                thinking=on,
                extra_headers=OLD,
                extra_body=allowed,
            ).type
            == "message"
        )
    sdk_rejects(client, "messages.1:", max_tokens=2048, thinking=on, messages=PREFILL)


# -- thinking blocks in the history ----------------------------------------------------------------------------------


# [skills SKILL.md "Claude Fable 5", model-migration.md "Thinking output": pass thinking blocks back unchanged; the API
# rejects modified blocks]; the wording is the real API's ([report https://github.com/ding113/claude-code-hub/issues/
# 518]: "messages.1.content.0: Invalid `signature` in `thinking` block").
def history_with(block: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *HI,
        {"role": "assistant", "content": [block, {"type": "text", "text": "Hello!"}]},
        {"role": "user", "content": "And now?"},
    ]


def test_an_unchanged_thinking_block_is_accepted(client: anthropic.Anthropic) -> None:
    for block in (thinking_block(), {**thinking_block(), "thinking": ""}):  # display omitted: empty text, signed
        assert (
            client.messages.create(model=MODEL, max_tokens=64, timeout=10, messages=history_with(block)).type
            == "message"
        )


@pytest.mark.parametrize(
    "block",
    [
        {**thinking_block(), "signature": thinking_block()["signature"][:-4] + "AAA="},
        {**thinking_block(), "signature": "not a signature"},
        {**thinking_block(), "signature": ""},
    ],
)
def test_a_forged_signature_is_a_400(client: anthropic.Anthropic, block: dict[str, Any]) -> None:
    message = sdk_rejects(client, "messages.1.content.0", messages=history_with(block))
    assert message == "messages.1.content.0: Invalid `signature` in `thinking` block"


# [report https://github.com/anthropics/claude-code/issues/63284: the real API's message] a genuine block whose text
# was changed, in the latest assistant message; in an earlier one the signature no longer matches its text.
MODIFIED = (
    "messages.1.content.0: `thinking` or `redacted_thinking` blocks in the latest assistant message cannot be "
    "modified. These blocks must remain as they were in the original response."
)


def test_modified_thinking_text_is_a_400(client: anthropic.Anthropic) -> None:
    changed = {**thinking_block(), "thinking": "Something else entirely."}
    assert sdk_rejects(client, "messages.1.content.0:", messages=history_with(changed)) == MODIFIED
    earlier = [*history_with(changed), {"role": "assistant", "content": "Later."}, {"role": "user", "content": "Ok"}]
    assert sdk_rejects(client, "messages.1.content.0:", messages=earlier) == (
        "messages.1.content.0: Invalid `signature` in `thinking` block"
    )


# [SDK types/redacted_thinking_block.py] "Pass `redacted_thinking` blocks back to the API unchanged".
def test_redacted_thinking_data_must_be_unchanged(client: anthropic.Anthropic) -> None:
    good = {"type": "redacted_thinking", "data": signing.redacted_data("seed")}
    assert client.messages.create(model=MODEL, max_tokens=64, timeout=10, messages=history_with(good)).type == "message"
    bad = {**good, "data": good["data"][:-6] + "AAAAA="}
    assert sdk_rejects(client, "messages.1.content.0:", messages=history_with(bad)) == MODIFIED
    earlier = [*history_with(bad), {"role": "assistant", "content": "Later."}, {"role": "user", "content": "Ok"}]
    sdk_rejects(client, "messages.1.content.0.data:", messages=earlier)


# [report https://github.com/Kilo-Org/kilocode/issues/5219: the real API's message] with thinking on, a request that
# continues a tool loop must send the assistant turn that called the tools starting with its thinking block.
TOOL_LOOP_ERROR = (
    "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
    "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult "
    "our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


def test_a_tool_loop_with_thinking_needs_its_thinking_block(client: anthropic.Anthropic) -> None:
    on = {"type": "enabled", "budget_tokens": 1024}
    message = sdk_rejects(
        client, "messages.1.content.0.type:", max_tokens=2048, thinking=on, tools=[TOOL], messages=tool_loop()
    )
    assert message == TOOL_LOOP_ERROR
    for first in (thinking_block(), {"type": "redacted_thinking", "data": signing.redacted_data("x")}):
        reply = client.messages.create(
            model=MODEL, max_tokens=2048, timeout=10, thinking=on, tools=[TOOL], messages=tool_loop(first=first)
        )
        assert reply.type == "message"


def test_a_tool_loop_on_an_adaptive_default_model_needs_it_too(fresh_sim: Simulator) -> None:
    response = post(fresh_sim, body(model="claude-sonnet-5", max_tokens=2048, tools=[TOOL], messages=tool_loop()))
    assert rejected(response, "messages.1.content.0.type:") == TOOL_LOOP_ERROR


# [AWS Bedrock "Extended thinking": previous turns' thinking blocks are ignored]: with thinking off a tool loop without
# thinking blocks, or earlier turns with them, are fine.
def test_without_thinking_no_thinking_block_is_needed(client: anthropic.Anthropic) -> None:
    for messages in (tool_loop(), tool_loop(first=thinking_block())):
        assert (
            client.messages.create(model=MODEL, max_tokens=64, timeout=10, tools=[TOOL], messages=messages).type
            == "message"
        )


# [report https://github.com/tailcallhq/forgecode/issues/1853: the real API's message, claude-sonnet-4-5 on
# api.anthropic.com] with thinking off, a final assistant turn (a prefill) may not hold thinking blocks.
def test_a_prefill_with_thinking_blocks_needs_thinking_on(client: anthropic.Anthropic) -> None:
    messages = [PREFILL[0], {"role": "assistant", "content": [thinking_block(), {"type": "text", "text": "It is"}]}]
    message = sdk_rejects(client, "messages.1.content.0:", messages=messages)
    assert message == (
        "messages.1.content.0: When thinking is disabled, an `assistant` message in the final position "
        "cannot contain `thinking`. To use thinking blocks, enable `thinking` in your request."
    )


# -- every malformed value: a 400 naming the field, never another exception -------------------------------------------


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": MODEL, "max_tokens": 10, "messages": HI, "metadata": {"user": "x"}}, "metadata.user:"),
        ({"model": MODEL, "max_tokens": 10, "messages": HI, "metadata": "x"}, "metadata:"),
        ({"model": MODEL, "max_tokens": 10, "messages": HI, "service_tier": "priority"}, "service_tier:"),
        ({"model": MODEL, "max_tokens": 10, "messages": HI, "speed": "warp"}, "speed:"),
        (
            {"model": MODEL, "max_tokens": 10, "messages": HI, "output_config": {"effort": "huge"}},
            "output_config.effort:",
        ),
        (
            {"model": MODEL, "max_tokens": 10, "messages": HI, "output_config": {"format": {"type": "xml"}}},
            "output_config.format.type:",
        ),
        (
            {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x", "name": "bob"}]},
            "messages.0.name: Extra inputs",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 10,
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_use"}]}],
                    }
                ],
            },
            "messages.0.content.0.content.0.type:",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 10,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "no"}]}
                ],
            },
            "messages.0.content.0.is_error:",
        ),
    ],
)
def test_malformed_values_name_their_field(fresh_sim: Simulator, payload: dict[str, Any], field: str) -> None:
    rejected(post(fresh_sim, payload), field)
