"""The simulator over plain HTTP: authentication, error bodies, the control endpoints, concurrency and shutdown."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import anthropic
import httpx
import pytest

from course_utils.simulator import FAULTS, Simulator

MODEL = "claude-haiku-4-5"
BODY = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}
KEY = {"x-api-key": "sk-test-do-not-log-me", "anthropic-version": "2023-06-01"}  # the header raw requests need


def assert_error(response: httpx.Response, status: int, error_type: str) -> str:
    """Check the API's error shape (body and header) and return the message."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"type", "error", "request_id"} and body["type"] == "error"
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == error_type
    assert body["request_id"].startswith("req_01") and response.headers["request-id"] == body["request_id"]
    return body["error"]["message"]


# -- authentication --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/messages", BODY),
        ("POST", "/v1/messages/count_tokens", {"model": MODEL, "messages": BODY["messages"]}),
        ("GET", "/v1/models", None),
    ],
)
def test_no_credentials_is_a_401(fresh_sim: Simulator, method: str, path: str, body: Any) -> None:
    response = httpx.request(method, fresh_sim.base_url + path, json=body)
    assert assert_error(response, 401, "authentication_error") == "x-api-key header is required"
    basic = httpx.request(method, fresh_sim.base_url + path, json=body, headers={"authorization": "Basic eDp5"})
    assert basic.status_code == 401  # only a Bearer token or an x-api-key counts


@pytest.mark.parametrize(
    "headers",
    [
        {"x-api-key": "any", "anthropic-version": "2023-06-01"},
        {"authorization": "Bearer any", "anthropic-version": "2026-10-21"},
    ],
    ids=["x-api-key", "bearer"],
)
def test_both_auth_styles_are_accepted(fresh_sim: Simulator, headers: dict[str, str]) -> None:
    response = httpx.post(fresh_sim.base_url + "/v1/messages", json=BODY, headers=headers)
    assert response.status_code == 200 and response.json()["type"] == "message"


def test_a_json_reply_has_the_real_apis_headers(fresh_sim: Simulator) -> None:
    response = httpx.post(fresh_sim.base_url + "/v1/messages", json=BODY, headers=KEY)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["request-id"].startswith("req_01")
    assert len([h for h in response.headers if h.startswith("anthropic-ratelimit-")]) == 12
    assert int(response.headers["content-length"]) == len(response.content)


def test_the_request_log_never_holds_a_credential(fresh_sim: Simulator) -> None:
    httpx.post(fresh_sim.base_url + "/v1/messages", json=BODY, headers=KEY)
    logged = httpx.get(fresh_sim.base_url + "/_sim/requests").json()["requests"]
    assert len(logged) == 1 and logged[0]["status"] == 200
    assert KEY["x-api-key"] not in json.dumps(logged)


def test_unknown_paths_and_bad_bodies(fresh_sim: Simulator) -> None:
    url = fresh_sim.base_url
    assert "GET /v1/nothing" in assert_error(httpx.get(url + "/v1/nothing", headers=KEY), 404, "not_found_error")
    bad_json = httpx.post(url + "/v1/messages", content=b"{not json", headers=KEY)
    assert assert_error(bad_json, 400, "invalid_request_error").startswith("Request body is not valid JSON")
    empty = httpx.post(url + "/v1/messages", content=b"", headers=KEY)
    assert "empty" in assert_error(empty, 400, "invalid_request_error")
    unknown = httpx.get(url + "/v1/models/claude-nonexistent-1", headers=KEY)
    assert assert_error(unknown, 404, "not_found_error") == "model: claude-nonexistent-1"


# -- faults over HTTP ------------------------------------------------------------------------------------------------


def test_post_sim_faults_fail_twice_then_succeed(fresh_sim: Simulator, client: anthropic.Anthropic) -> None:
    queued = httpx.post(
        fresh_sim.base_url + "/_sim/faults", json={"fault": "overloaded", "count": 2, "retry_after": 0.01}
    )
    assert queued.status_code == 200 and queued.json()["queued"] == 2 and queued.json()["pending"] == 2
    assert len(httpx.get(fresh_sim.base_url + "/_sim/faults").json()["pending"]) == 2
    message = client.messages.create(model=MODEL, max_tokens=20, messages=BODY["messages"])
    assert message.content
    log = httpx.get(fresh_sim.base_url + "/_sim/requests").json()["requests"]
    assert [(r["retry_count"], r["status"]) for r in log] == [(0, 529), (1, 529), (2, 200)]


def test_post_sim_faults_mid_stream_with_after(fresh_sim: Simulator, client: anthropic.Anthropic) -> None:
    httpx.post(fresh_sim.base_url + "/_sim/faults", json={"fault": "error_midstream", "after": 6}).raise_for_status()
    with pytest.raises(anthropic.APIStatusError):
        with client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Count to 20"}]
        ) as stream:
            for _ in stream.text_stream:
                pass
    assert stream.current_message_snapshot.content[0].text.startswith("1, 2, 3")
    assert not stream.current_message_snapshot.content[0].text.startswith("1, 2, 3, 4, 5, 6, 7, 8, 9")


def test_delete_sim_faults_drops_the_queue(fresh_sim: Simulator) -> None:
    fresh_sim.inject("api_error", count=3)
    assert httpx.delete(fresh_sim.base_url + "/_sim/faults").json() == {"cleared": 3}
    assert httpx.post(fresh_sim.base_url + "/v1/messages", json=BODY, headers=KEY).status_code == 200


@pytest.mark.parametrize(
    ("payload", "names"),
    [
        ({"fault": "meltdown"}, "unknown fault 'meltdown'"),
        ({"count": 2}, "fault: Field required"),
        ({"fault": "overloaded", "count": 0}, "'count' must be a whole number from 1 to 1000"),
        ({"fault": "overloaded", "count": "2"}, "'count'"),
        ({"fault": "error_midstream", "after": -1}, "'after'"),
        ({"fault": "stall_midstream", "stall_seconds": "long"}, "'stall_seconds'"),
        ({"fault": "rate_limit", "retry_after": -5}, "'retry_after'"),
        ({"fault": "overloaded", "colour": "red"}, "unknown field(s): colour"),
        (["overloaded"], "body must be a JSON object"),
    ],
)
def test_bad_fault_requests_are_400s_naming_the_problem(fresh_sim: Simulator, payload: Any, names: str) -> None:
    response = httpx.post(fresh_sim.base_url + "/_sim/faults", json=payload)
    assert names in assert_error(response, 400, "invalid_request_error")
    assert fresh_sim.stats()["faults_pending"] == 0
    # Every kind is listed when the kind is wrong, so the message is also the documentation.
    if "unknown fault" in names:
        assert all(kind in response.json()["error"]["message"] for kind in FAULTS)


def test_bad_fault_headers_are_400s(fresh_sim: Simulator) -> None:
    response = httpx.post(
        fresh_sim.base_url + "/v1/messages",
        json=BODY,
        headers={**KEY, "x-sim-fault": "error_midstream", "x-sim-fault-after": "soon"},
    )
    assert "x-sim-fault-after must be a whole number" in assert_error(response, 400, "invalid_request_error")


def test_inject_from_python_rejects_bad_faults(fresh_sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fresh_sim.inject("meltdown")
    with pytest.raises(ValueError, match="'count'"):
        fresh_sim.inject("overloaded", count=0)


# -- the other control endpoints -------------------------------------------------------------------------------------


def test_stats_reset_and_config(fresh_sim: Simulator) -> None:
    url = fresh_sim.base_url
    httpx.post(url + "/v1/messages", json={**BODY, "stream": True}, headers=KEY)
    stats = httpx.get(url + "/_sim/stats").json()
    assert {
        "requests",
        "streams_open",
        "streams_completed",
        "streams_abandoned",
        "streams_failed",
        "faults_injected",
        "faults_pending",
        "speed",
    } <= set(stats)
    assert (stats["requests"], stats["streams_open"], stats["streams_completed"]) == (1, 0, 1)
    assert httpx.post(url + "/_sim/reset").json() == {"ok": True}
    assert httpx.get(url + "/_sim/stats").json()["requests"] == 0
    assert httpx.post(url + "/_sim/config", json={"speed": 3}).json() == {"speed": 3.0}
    assert fresh_sim.speed == 3.0
    bad = httpx.post(url + "/_sim/config", json={"speed": -1})
    assert "speed" in assert_error(bad, 400, "invalid_request_error")
    assert "/_sim/nothing" in assert_error(httpx.get(url + "/_sim/nothing"), 404, "not_found_error")


# -- concurrency, threads, lifecycle ---------------------------------------------------------------------------------


def test_concurrent_streams_are_counted_exactly(fresh_sim: Simulator) -> None:
    async def one(client: httpx.AsyncClient, n: int) -> bytes:
        body = {**BODY, "stream": True, "messages": [{"role": "user", "content": f"Tell me about topic {n}"}]}
        async with client.stream("POST", fresh_sim.base_url + "/v1/messages", json=body, headers=KEY) as response:
            return b"".join([chunk async for chunk in response.aiter_raw()])

    async def many() -> list[bytes]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=50)) as client:
            return await asyncio.gather(*(one(client, n) for n in range(40)))

    bodies = asyncio.run(many())
    assert all(body.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n') for body in bodies)
    assert fresh_sim.wait_idle()
    stats = fresh_sim.stats()
    assert (stats["requests"], stats["streams_completed"], stats["streams_open"]) == (40, 40, 0)


def test_a_stream_read_to_the_end_is_already_counted(fresh_sim: Simulator) -> None:
    with httpx.Client() as client:
        for n in range(1, 31):
            with client.stream(
                "POST", fresh_sim.base_url + "/v1/messages", json={**BODY, "stream": True}, headers=KEY
            ) as response:
                response.read()
            stats = fresh_sim.stats()  # no wait_idle(): the count lands before the stream's last byte
            assert (stats["streams_completed"], stats["streams_open"]) == (n, 0)
            assert fresh_sim.requests()[-1]["status"] == 200


def test_faults_and_counters_are_thread_safe(fresh_sim: Simulator) -> None:
    fresh_sim.inject("overloaded", count=10, retry_after=0.01)
    client = anthropic.Anthropic(base_url=fresh_sim.base_url, api_key="k", max_retries=10)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                with client.messages.stream(model=MODEL, max_tokens=20, messages=BODY["messages"]) as stream:
                    stream.get_final_message()
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert fresh_sim.wait_idle()
    stats = fresh_sim.stats()
    # Each queued fault is consumed exactly once: 40 calls, 10 of their attempts failed.
    assert (stats["requests"], stats["faults_injected"], stats["streams_completed"]) == (50, 10, 40)
    assert sum(r["status"] == 529 for r in fresh_sim.requests()) == 10


def test_stop_is_quick_and_quiet_with_a_stalled_stream_open(capfd: pytest.CaptureFixture[str]) -> None:
    sim = Simulator(speed=0).start()
    sim.inject("stall_midstream", after=2)  # stalls for an hour unless cut
    outcome: list[str] = []

    def reader() -> None:
        with httpx.stream(
            "POST", sim.base_url + "/v1/messages", json={**BODY, "stream": True}, headers=KEY, timeout=30
        ) as response:
            try:
                for _ in response.iter_raw():
                    pass
                outcome.append("completed")
            except httpx.RemoteProtocolError:
                outcome.append("cut")

    thread = threading.Thread(target=reader)
    thread.start()
    deadline = time.monotonic() + 5
    while sim.stats()["streams_open"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 1.0
    thread.join(5)
    assert outcome == ["cut"]  # the connection was dropped, as when a real server goes down
    assert sim.stats()["streams_failed"] == 1 and sim.stats()["streams_open"] == 0
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "ERROR" not in captured.err
    with pytest.raises(RuntimeError, match="cannot be restarted"):
        sim.start()


def test_a_context_manager_on_a_free_port() -> None:
    with Simulator(speed=0) as first, Simulator(speed=0) as second:
        assert first.port != second.port and first.base_url.startswith("http://127.0.0.1:")
        assert httpx.get(first.base_url + "/_sim/stats").status_code == 200
        assert repr(first) == f"Simulator({first.base_url!r}, speed=0)"
    with pytest.raises(httpx.ConnectError):
        httpx.get(first.base_url + "/_sim/stats")
    with pytest.raises(ValueError, match="speed"):
        Simulator(speed=-1)
