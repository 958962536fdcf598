"""The chat page in a real headless Chromium: streaming, history, Stop, errors, and the SSE parser at every split."""

from __future__ import annotations

import base64
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import anthropic
import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from course_utils.chat_app import AppServer, ChatSettings, create_app
from course_utils.serving import page_address
from course_utils.simulator import Simulator
from course_utils.sse import encode_event, parse_sse

from browser_support import CHROMIUM_ARGS, chromium_path, jupyter_server, screenshot
from conftest import MODEL, fixtures_dir

pytestmark = pytest.mark.browser

TIMEOUT_MS = 15_000
ANSWER_DONE = "document.querySelectorAll('.msg.assistant:not(.streaming)').length >= {n}"
STREAMED = "(document.querySelector('.msg.streaming .text') || {{textContent: ''}}).textContent.length > {n}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module."""
    path = chromium_path()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app(sim: Simulator) -> Iterator[AppServer]:
    """The chat app in front of the session simulator."""
    settings = ChatSettings(base_url=sim.base_url, api_key="test-key", offline=True)
    with AppServer(create_app(settings)) as server:
        yield server


@pytest.fixture
def page(browser: Browser, app: AppServer, fresh_sim: Simulator) -> Iterator[Page]:
    """A fresh tab on the chat page, its console errors collected (a test fails on any)."""
    context = browser.new_context(viewport={"width": 1100, "height": 820})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(app.url)
    tab.wait_for_selector("#mode:not([hidden])")  # the config has loaded
    yield tab
    context.close()
    assert errors == []


def send(page: Page, text: str) -> None:
    """Type a message and press Enter, as a person would."""
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def chat_requests(page: Page) -> list[dict]:
    """The JSON bodies the page sends to /api/chat from now on, collected as it sends them."""
    bodies: list[dict] = []
    page.on("request", lambda r: bodies.append(r.post_data_json) if r.url.endswith("/api/chat") else None)
    return bodies


def last_answer(page: Page) -> str:
    """The text of the last assistant message."""
    return page.locator(".msg.assistant .text").last.text_content()


def reference(sim: Simulator, messages: list[dict[str, str]]) -> str:
    """The answer the simulator gives the SDK directly for the same conversation (replies are deterministic)."""
    client = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key")
    message = client.messages.create(model=MODEL, max_tokens=1024, messages=messages)  # type: ignore[arg-type]
    return "".join(block.text for block in message.content if block.type == "text")


# -- the chat ----------------------------------------------------------------------------------------------------------


def test_a_message_streams_in_behind_a_typing_indicator(page: Page, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 2  # paced, so the text visibly grows
    page.evaluate("""() => {
        window.seen = {typing: false, lengths: []};
        new MutationObserver(() => {
            if (document.querySelector('.typing')) seen.typing = true;
            const text = document.querySelector('.msg.assistant .text');
            if (text) seen.lengths.push(text.textContent.length);
        }).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")
    question = "Tell me a fun fact about octopuses."
    send(page, question)
    page.wait_for_function(ANSWER_DONE.format(n=1))
    seen = page.evaluate("window.seen")
    growth = sorted(set(seen["lengths"]))
    assert seen["typing"] and len(growth) >= 5 and growth[0] < growth[-1] / 4  # many steps, not one
    assert last_answer(page) == reference(fresh_sim, [{"role": "user", "content": question}])
    assert "tokens" in page.locator(".msg.assistant .meta").text_content()
    assert page.locator(".typing").count() == 0
    screenshot(page, "chat-streamed")


def test_a_second_turn_sends_the_history(page: Page, fresh_sim: Simulator) -> None:
    bodies = chat_requests(page)
    send(page, "My name is Ada.")
    page.wait_for_function(ANSWER_DONE.format(n=1))
    first = last_answer(page)
    send(page, "What's my name?")
    page.wait_for_function(ANSWER_DONE.format(n=2))
    assert "Ada" in last_answer(page)
    assert bodies[-1]["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "What's my name?"},
    ]
    assert bodies[-1]["model"] == MODEL
    screenshot(page, "chat-history")


def test_stop_keeps_the_partial_answer_and_closes_the_upstream(page: Page, fresh_sim: Simulator) -> None:
    fresh_sim.speed = 1
    send(page, "Write 500 words about the ocean.")
    page.wait_for_function(
        "(document.querySelector('.msg.streaming .text') || {textContent: ''}).textContent.length > 60"
    )
    page.click("#stop")
    page.wait_for_selector("#send:not([hidden])")
    partial = last_answer(page)
    assert fresh_sim.wait_idle(1.0)  # the browser's abort reached the simulator through the app
    stats = fresh_sim.stats()
    assert stats["streams_abandoned"] == 1 and stats["streams_completed"] == 0
    time.sleep(0.3)
    assert last_answer(page) == partial and len(partial) > 60  # kept, and nothing arrived after Stop
    assert "stopped" in page.locator(".msg.assistant .meta").text_content()
    assert page.evaluate("chatHistory()") == []  # a stopped turn stays on screen, not in the conversation
    screenshot(page, "chat-stopped")


def test_a_midstream_error_shows_a_banner_and_keeps_the_text(page: Page, fresh_sim: Simulator) -> None:
    question = "Write 300 words about the ocean."
    full = reference(fresh_sim, [{"role": "user", "content": question}])
    fresh_sim.inject("error_midstream", after=12)
    send(page, question)
    banner = page.wait_for_selector(".error-banner")
    assert "overloaded" in banner.text_content()
    partial = last_answer(page)
    assert partial and full.startswith(partial) and len(partial) < len(full)
    assert page.is_visible("#send")
    assert page.evaluate("chatHistory()") == []
    screenshot(page, "chat-error")
    bodies = chat_requests(page)
    send(page, "Hello")
    page.wait_for_function(ANSWER_DONE.format(n=2))
    assert bodies[-1]["messages"] == [{"role": "user", "content": "Hello"}]  # the failed turn is not resent


def test_an_error_before_the_stream_shows_its_message(page: Page, fresh_sim: Simulator) -> None:
    fresh_sim.inject("rate_limit", count=3, retry_after=0.01)
    send(page, "Hello")
    banner = page.wait_for_selector(".error-banner")
    assert "Too many requests" in banner.text_content() and "retry after 0.01 s" in banner.text_content()
    assert last_answer(page) == ""


def test_screenshot_of_a_conversation(page: Page, fresh_sim: Simulator) -> None:
    send(page, "My name is Ada.")
    page.wait_for_function(ANSWER_DONE.format(n=1))
    send(page, "What's my name?")
    page.wait_for_function(ANSWER_DONE.format(n=2))
    fresh_sim.inject("error_midstream", after=10)
    send(page, "Tell me a fun fact about octopuses.")
    page.wait_for_selector(".error-banner")
    path = screenshot(page, "chat")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000


def test_the_page_works_behind_jupyter_server_proxy(browser: Browser, app: AppServer, fresh_sim: Simulator) -> None:
    # As on a JupyterHub: the single-user server lives under a prefix, and the page is opened at the address the
    # lesson prints there, <prefix>proxy/<port>/, with every request of the page going through the Jupyter server.
    question = "Write 300 words about the ocean."
    expected = reference(fresh_sim, [{"role": "user", "content": question}])
    with jupyter_server(base_url="/user/ada/") as jupyter:
        url = jupyter.origin + page_address(app.port, environ={"JUPYTERHUB_SERVICE_PREFIX": jupyter.base_url})
        tab, errors = open_page(browser, f"{url}?token={jupyter.token}")  # the token, then its login cookie
        requests: list[str] = []
        tab.on("request", lambda r: requests.append(r.url))
        fresh_sim.speed = 2
        send(tab, question)
        tab.wait_for_function(STREAMED.format(n=40))  # streamed on, not buffered until the end
        tab.wait_for_function(ANSWER_DONE.format(n=1))
        answer, meta = last_answer(tab), tab.locator(".msg.assistant .meta").text_content()
        screenshot(tab, "chat-jupyter-proxy")
        tab.context.close()
    assert answer == expected and "tokens" in meta  # the whole answer, and its `done`
    assert requests == [f"{url}api/chat"]
    assert errors == []


# -- the page's SSE parser, split at every byte ------------------------------------------------------------------------

# What the page does with a list of chunks, and what the seed article's parser does (split each chunk on "\n").
SPLIT_HARNESS = """([b64, seed]) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const ours = (chunks) => {
        const parser = new SSEParser();
        const events = chunks.flatMap((chunk) => parser.feed(chunk)).concat(parser.end());
        return events.map((e) => [e.event, e.data]);
    };
    const seeds = (chunks) => {
        const decoder = new TextDecoder();
        const out = [];
        for (const value of chunks) {
            for (const line of decoder.decode(value).split("\\n")) {
                if (!line.startsWith("data: ")) continue;
                const data = line.slice(6);
                try { JSON.parse(data); out.push(["message", data]); } catch (_) { /* "ignore malformed chunks" */ }
            }
        }
        return out;
    };
    const parse = seed ? seeds : ours;
    const whole = parse([bytes]);
    const broken = [];
    for (let i = 0; i <= bytes.length; i++) {
        if (JSON.stringify(parse([bytes.slice(0, i), bytes.slice(i)])) !== JSON.stringify(whole)) broken.push(i);
    }
    const bytewise = JSON.stringify(parse(Array.from(bytes, (b) => Uint8Array.of(b)))) === JSON.stringify(whole);
    return {whole, broken, bytewise, size: bytes.length};
}"""


def tricky_stream() -> bytes:
    """Every line ending, a comment, multi-line data and multi-byte characters: the splits that break parsers."""
    text = (
        encode_event("text", {"text": "Grüße, 日本 🌊"})
        + b": ping\r\n\r\n"
        + b'event: text\r\ndata: {"text": "crlf"}\r\n\r\n'
        + b'event: text\rdata: {"text": "cr only"}\r\r'
        + b"event: note\ndata: line one\ndata: line two\n\n"
        + b"data: no event name\n\n"
        + encode_event("done", {"stop_reason": "end_turn", "usage": {"output_tokens": 3}})
    )
    return text


def streams(app: AppServer) -> dict[str, bytes]:
    """Recorded streams from the SDK's repository, one captured from this app, and the tricky one."""
    fixtures = fixtures_dir() / "streaming"
    basic = (fixtures / "basic_response.txt").read_bytes().rstrip(b"\n") + b"\n\n"
    captured = httpx.post(
        app.url + "api/chat",
        timeout=10,
        json={"messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 40},
    ).content
    return {
        "recorded basic_response": basic,
        "recorded basic_response, CRLF": basic.replace(b"\n", b"\r\n"),
        "recorded stream-a-refusal (padded JSON)": (fixtures / "stream-a-refusal.sse").read_bytes(),
        "captured from /api/chat": captured,
        "tricky line endings and UTF-8": tricky_stream(),
    }


def test_page_parser_is_right_at_every_split_point(page: Page, app: AppServer) -> None:
    for name, raw in streams(app).items():
        result = page.evaluate(SPLIT_HARNESS, [base64.b64encode(raw).decode(), False])
        expected = [[e.event or "message", e.data] for e in parse_sse([raw], strict_eof=True)]
        assert result["whole"] == expected, name  # the same events as the Python parser
        assert len(expected) >= 5, name
        assert result["broken"] == [], f"{name}: wrong at split points {result['broken'][:10]}"
        assert result["bytewise"], f"{name}: wrong when fed one byte at a time"


def test_the_seed_articles_parser_breaks_at_split_points(page: Page, app: AppServer) -> None:
    # The same harness finds the seed's bug, so the test above could fail.
    raw = streams(app)["recorded basic_response"]
    result = page.evaluate(SPLIT_HARNESS, [base64.b64encode(raw).decode(), True])
    assert len(result["whole"]) == 9
    assert len(result["broken"]) > result["size"] // 2  # a split inside any data line loses or garbles it


# -- a deployment (lesson 08): the token prompt, a resumed answer --------------------------------------------------


def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    """A fresh tab on a page whose config has loaded, and the list its page errors go to."""
    tab = browser.new_context(viewport={"width": 1100, "height": 820}).new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(url)
    tab.wait_for_selector("#mode:not([hidden])")
    return tab, errors


def test_the_page_asks_for_the_token_once_and_keeps_it_in_memory(browser: Browser, fresh_sim: Simulator) -> None:
    settings = ChatSettings(
        base_url=fresh_sim.base_url, api_key="test-key", offline=True, tokens=("letmein",), server_history=True
    )
    with AppServer(create_app(settings)) as app:
        tab, errors = open_page(browser, app.url)
        auth: list[str | None] = []
        tab.on("request", lambda r: auth.append(r.headers.get("authorization")) if "/api/chat" in r.url else None)
        send(tab, "My name is Ada.")
        tab.wait_for_selector("#token-dialog[open]")
        screenshot(tab, "chat-token")
        tab.fill("#token-input", "letmein")
        tab.press("#token-input", "Enter")
        tab.wait_for_function(ANSWER_DONE.format(n=1))
        send(tab, "What's my name?")  # no second prompt
        tab.wait_for_function(ANSWER_DONE.format(n=2))
        assert "Ada" in last_answer(tab) and auth == ["Bearer letmein", "Bearer letmein"]
        assert tab.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie") == "{}{}"
        tab.reload()
        tab.wait_for_selector("#mode:not([hidden])")
        send(tab, "Hello")
        tab.wait_for_selector("#token-dialog[open]")  # a reload forgot it
        tab.context.close()
    assert errors == []


class CuttableProxy:
    """A TCP proxy on loopback in front of the app whose open connections the test can cut, as a network would."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.conns = target, []  # type: ignore[var-annotated]
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Reset every connection open now (the browser sees a network error mid-body)."""
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.shutdown(socket.SHUT_RDWR)  # close() alone waits for the thread blocked in recv()
            with contextlib.suppress(OSError):
                conn.close()
        self.conns = []

    def close(self) -> None:
        """Stop accepting (new connections are refused) and cut what is open."""
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # close() alone leaves a socket blocked in accept() listening
        self.listener.close()
        self.cut()


def banner_of(tab: Page) -> str:
    """The text of the error banner under the last answer, once it shows."""
    return tab.wait_for_selector(".msg.assistant:last-child .error-banner").text_content()


def test_a_connection_cut_mid_answer_says_the_answer_was_cut(
    browser: Browser, app: AppServer, fresh_sim: Simulator
) -> None:
    question = "Write 300 words about the ocean."
    full = reference(fresh_sim, [{"role": "user", "content": question}])
    proxy = CuttableProxy((app.host, app.port))
    tab, errors = open_page(browser, proxy.url)
    try:
        fresh_sim.speed = 2
        send(tab, question)
        tab.wait_for_function(STREAMED.format(n=40))
        proxy.cut()
        banner = banner_of(tab)
        assert "connection was lost mid-answer" in banner and "incomplete" in banner
        assert "Could not reach" not in banner and "connection_lost" in banner
        partial = last_answer(tab)
        assert full.startswith(partial) and 40 < len(partial) < len(full)  # the text that arrived stays
        assert tab.locator(".msg.assistant.incomplete").count() == 1
        assert "incomplete" in tab.locator(".msg.assistant .meta").text_content()
        assert tab.evaluate("chatHistory()") == []
        assert fresh_sim.wait_idle()  # the app saw the cut and closed the upstream
        assert fresh_sim.stats()["streams_abandoned"] == 1
        screenshot(tab, "chat-cut")
        fresh_sim.speed = 0
        tab.click(".error-banner .retry")  # the same question, sent again
        tab.wait_for_function(ANSWER_DONE.format(n=2))
        assert last_answer(tab) == full
        assert tab.evaluate("chatHistory()") == [
            {"role": "user", "content": question},
            {"role": "assistant", "content": full},
        ]
        assert tab.locator(".msg.assistant.incomplete").count() == 1  # only the cut one
    finally:
        tab.context.close()
        proxy.close()
    assert errors == []


def test_a_server_that_cannot_be_reached_says_so(browser: Browser, app: AppServer, fresh_sim: Simulator) -> None:
    proxy = CuttableProxy((app.host, app.port))
    tab, errors = open_page(browser, proxy.url)
    try:
        proxy.close()  # the page is loaded; nothing answers any more
        send(tab, "Hello")
        banner = banner_of(tab)
        assert "Could not reach the server" in banner and "network_error" in banner
        assert last_answer(tab) == "" and tab.locator(".msg.assistant.incomplete").count() == 0
        assert tab.is_visible(".error-banner .retry")
    finally:
        tab.context.close()
    assert errors == []
    assert fresh_sim.stats()["requests"] == 0


def test_a_dropped_connection_resumes_the_same_answer(browser: Browser, fresh_sim: Simulator) -> None:
    import redis as redis_py

    from test_deploy import start_redis

    question = "Write 300 words about the ocean."
    expected = reference(fresh_sim, [{"role": "user", "content": question}])
    assert fresh_sim.wait_idle()
    fresh_sim.reset()
    with start_redis() as url:
        settings = ChatSettings(
            base_url=fresh_sim.base_url, api_key="test-key", offline=True, server_history=True, redis_url=url
        )
        with AppServer(create_app(settings)) as app:
            proxy = CuttableProxy((app.host, app.port))
            tab, errors = open_page(browser, proxy.url)
            fresh_sim.speed = 2
            send(tab, question)
            tab.wait_for_function(STREAMED.format(n=40))
            proxy.cut()
            tab.wait_for_function(ANSWER_DONE.format(n=1))
            resumed = tab.get_attribute(".msg.assistant", "data-resumed")
            answer = last_answer(tab)
            assert fresh_sim.wait_idle()  # the page has the answer's end a moment before the simulator counts it
            stats = fresh_sim.stats()
            screenshot(tab, "chat-resumed")
            tab.context.close()
            proxy.close()
        with redis_py.Redis.from_url(url) as r:
            r.flushdb()
    assert resumed is not None and int(resumed) >= 1
    assert answer == expected  # whole, nothing twice
    assert stats["requests"] == 1 and stats["streams_completed"] == 1  # one generation
    assert errors == []


def test_a_resumable_answer_whose_resume_fails_says_it_was_cut(browser: Browser, fresh_sim: Simulator) -> None:
    import redis as redis_py

    from test_deploy import start_redis

    with start_redis() as url:
        settings = ChatSettings(
            base_url=fresh_sim.base_url,
            api_key="test-key",
            offline=True,
            server_history=True,
            redis_url=url,
            resume_grace=0.5,
        )
        with AppServer(create_app(settings)) as app:
            proxy = CuttableProxy((app.host, app.port))
            tab, errors = open_page(browser, proxy.url)
            fresh_sim.speed = 2
            send(tab, "Write 300 words about the ocean.")
            tab.wait_for_function(STREAMED.format(n=40))
            proxy.close()  # cut, and every resume finds nobody listening
            banner = banner_of(tab)
            resumed = tab.get_attribute(".msg.assistant", "data-resumed")
            incomplete = tab.locator(".msg.assistant.incomplete").count()
            tab.context.close()
            assert fresh_sim.wait_idle(5.0)  # the grace for a reconnect ran out: the upstream closed
        with redis_py.Redis.from_url(url) as r:
            r.flushdb()
    assert "connection was lost mid-answer" in banner and "Could not reach" not in banner
    assert resumed is None and incomplete == 1
    assert errors == []
