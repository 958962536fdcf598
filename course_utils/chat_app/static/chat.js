/* The chat page (lesson 06): POST the conversation with fetch(), read the answer as Server-Sent Events.
 *
 * Not EventSource: it can only GET, and it reconnects by itself, which would re-run a generation.
 * fetch() + a ReadableStream reader + SSEParser (sse.js) + an AbortController for Stop do the whole job.
 *
 * A deployment (lesson 08) says in /api/config what it needs: a token (asked once, kept in this variable only,
 * never in storage), the new turn only (the server keeps the history), and resuming a cut answer by its event ids.
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const els = {
    messages: $("messages"), scroller: $("scroller"), welcome: $("welcome"), form: $("composer"),
    prompt: $("prompt"), send: $("send"), stop: $("stop"), model: $("model"), mode: $("mode"),
    newChat: $("new-chat"), tokenDialog: $("token-dialog"), tokenForm: $("token-form"), tokenInput: $("token-input"),
  };

  // The conversation as the API sees it. A turn joins it only once its answer is complete: a stopped or failed
  // turn stays on screen but is never sent again (lesson 04: the history must say what really happened).
  const history = [];
  let controller = null; // the AbortController of the answer being streamed, if any
  let config = { auth: false, history: "client", resumable: false };
  let token = null; // in memory only: a reload asks again, and nothing on disk can leak it
  let conversationId = newId();
  const RESUME_ATTEMPTS = 5;

  /** A random conversation id (crypto.randomUUID needs a secure context; getRandomValues does not). */
  function newId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return "c" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** The token, asked for once in a small dialog (not window.prompt: it can be styled and tested). */
  function askToken() {
    if (token) return Promise.resolve(token);
    return new Promise((resolve) => {
      els.tokenInput.value = "";
      els.tokenDialog.showModal();
      els.tokenForm.addEventListener("submit", (e) => {
        e.preventDefault();
        token = els.tokenInput.value.trim() || null;
        els.tokenDialog.close();
        resolve(token);
      }, { once: true });
    });
  }

  function authHeaders() {
    return token ? { Authorization: "Bearer " + token } : {};
  }

  /** A failure with a type the page can show: HTTP errors, `error` events, cut connections. */
  class ChatFailure extends Error {
    constructor(type, message) {
      super(message);
      this.type = type;
    }
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text; // never innerHTML: model text is not markup
    return node;
  }

  function nearBottom() {
    const s = els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  function scrollDown(force) {
    if (force || nearBottom()) els.scroller.scrollTop = els.scroller.scrollHeight;
  }

  function addUserMessage(text) {
    els.welcome.hidden = true;
    const row = el("div", "msg user");
    const bubble = el("div", "bubble");
    bubble.append(el("div", "text", text));
    row.append(bubble);
    els.messages.append(row);
    scrollDown(true);
    return row;
  }

  /** An assistant message that starts as a typing indicator and grows as text arrives. */
  function addAssistantMessage() {
    const row = el("div", "msg assistant streaming");
    const bubble = el("div", "bubble");
    const typing = el("div", "typing");
    typing.setAttribute("aria-label", "Claude is typing");
    typing.append(el("span"), el("span"), el("span"));
    const text = el("div", "text");
    bubble.append(typing, text);
    row.append(el("div", "avatar"), bubble);
    els.messages.append(row);
    scrollDown(true);
    return {
      row,
      append(piece) {
        typing.remove();
        const follow = nearBottom();
        text.append(piece); // a text node per delta: no re-rendering of what is already there
        if (follow) scrollDown(true);
      },
      finish(tags) {
        row.classList.remove("streaming");
        typing.remove();
        if (!tags.length) return;
        const meta = el("div", "meta");
        for (const [label, warn] of tags) meta.append(el("span", warn ? "tag warn" : "tag", label));
        bubble.append(meta);
      },
      resumed() {
        row.dataset.resumed = String(Number(row.dataset.resumed || 0) + 1); // how often this answer was resumed
      },
      incomplete() {
        row.classList.add("incomplete"); // the text stays, visibly unfinished
      },
      fail(failure, retry) {
        const banner = el("div", "error-banner");
        banner.setAttribute("role", "alert");
        const body = el("div", "", failure.message);
        body.append(el("span", "kind", failure.type));
        banner.append(body);
        if (retry) {
          const button = el("button", "retry", "Try again");
          button.type = "button";
          button.addEventListener("click", () => { if (!controller) { button.remove(); retry(); } });
          banner.append(button);
        }
        bubble.append(banner);
        scrollDown(false);
      },
    };
  }

  function setStreaming(on) {
    els.send.hidden = on;
    els.stop.hidden = !on;
    els.model.disabled = on;
    if (!on) els.prompt.focus();
  }

  // Failures that the same request could get past: a retry only makes sense for these, not for a refused input.
  const FINAL = new Set(["invalid_request_error", "request_too_large", "not_found_error", "permission_error"]);

  /** The failure of a connection that never got an answer. */
  function unreachable() {
    return new ChatFailure("network_error", "Could not reach the server. Check it is running and try again.");
  }

  /** The failure of a connection lost after the answer began: what is on screen is only part of it. */
  function cut(received, why) {
    const what = received ? "The connection was lost mid-answer: the text above is incomplete."
      : "The connection was lost before the answer began.";
    return new ChatFailure("connection_lost", why ? `${what} It could not be resumed: ${why}` : what);
  }

  /** The JSON error body of a failed response, as a ChatFailure. */
  async function failureOf(response) {
    let error = { type: "http_" + response.status, message: "The server answered " + response.status + "." };
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) error = body.error;
    } catch (_) { /* not JSON: keep the generic message */ }
    const wait = response.headers.get("retry-after");
    const message = wait ? `${error.message} (retry after ${wait} s)` : error.message;
    return new ChatFailure(error.type, message);
  }

  /** The request body: the whole conversation (lesson 06), or the new turn of a conversation the server keeps. */
  function bodyFor(turn) {
    const model = els.model.value || undefined;
    if (config.history === "server") return { conversation_id: conversationId, message: turn.content, model };
    return { messages: [...history, turn], model };
  }

  async function ask(text) {
    const turn = { role: "user", content: text };
    const userRow = addUserMessage(text);
    const answer = addAssistantMessage();
    controller = new AbortController();
    setStreaming(true);
    let received = "";
    let answered = false; // a response came back: a network error from here on is a cut, not an unreachable server
    const started = performance.now();
    const stream = { answerId: null, lastId: null };
    current = stream;
    try {
      if (config.auth) await askToken();
      // Relative URLs (no leading "/"): the page also works under a path prefix, e.g. jupyter-server-proxy's.
      let response = await fetch("api/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
        body: JSON.stringify(bodyFor(turn)),
        signal: controller.signal,
      });
      answered = true;
      if (response.status === 401) token = null; // wrong or revoked: ask again next time
      if (!response.ok) throw await failureOf(response);
      stream.answerId = response.headers.get("x-answer-id");
      let done = null;
      for (let attempt = 0; ; attempt++) {
        if (response) {
          try {
            for await (const event of readEvents(response)) {
              if (event.id) stream.lastId = event.id;
              const data = JSON.parse(event.data);
              if (event.event === "text") {
                received += data.text;
                answer.append(data.text);
              } else if (event.event === "done") {
                done = data;
              } else if (event.event === "error") {
                throw new ChatFailure(data.type, data.message);
              }
            }
          } catch (err) {
            if (err instanceof ChatFailure || err.name === "AbortError" || !stream.answerId) throw err;
            // The connection broke mid-answer; a resumable answer is still being written: fall through to resume.
          }
        }
        if (done || !stream.answerId || attempt >= RESUME_ATTEMPTS) break;
        // Resume where this page left off, on whichever worker answers: the same answer, not a new one.
        await new Promise((r) => setTimeout(r, 200 * attempt));
        response = null;
        try {
          response = await fetch("api/answers/" + encodeURIComponent(stream.answerId), {
            headers: { Accept: "text/event-stream", "Last-Event-ID": stream.lastId || stream.answerId + ":0",
              ...authHeaders() },
            signal: controller.signal,
          });
        } catch (err) {
          if (err.name === "AbortError") throw err;
          continue; // the server is not reachable yet: try again
        }
        if (!response.ok) throw cut(received, (await failureOf(response)).message);
        answer.resumed();
      }
      // A body that ends without `done` or `error` was cut (a proxy timeout, a restart), and so is an answer whose
      // resumes all failed: say so.
      if (!done) throw cut(received);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const tags = [[`${done.usage.output_tokens} tokens · ${seconds} s`, false]];
      if (done.stop_reason === "max_tokens") tags.push(["cut at max_tokens", true]);
      answer.finish(tags);
      if (received) history.push(turn, { role: "assistant", content: received });
    } catch (err) {
      userRow.classList.add("unrecorded");
      if (err.name === "AbortError") {
        answer.finish([["stopped", true], ["not kept in the conversation", false]]);
      } else {
        // fetch() rejects with a TypeError on a network failure, before the response and while reading its body.
        const failure = err instanceof ChatFailure ? err : answered ? cut(received) : unreachable();
        answer.fail(failure, FINAL.has(failure.type) ? null : () => ask(text));
        const tags = [["not kept in the conversation", false]];
        if (received) {
          answer.incomplete();
          tags.unshift(["incomplete", true]);
        }
        answer.finish(tags);
      }
    } finally {
      controller = null;
      current = null;
      setStreaming(false);
    }
  }

  let current = null; // the answer being streamed: its id and the last event id seen

  function stop() {
    // With resumable answers a closed connection no longer stops the model: say so explicitly, to any worker.
    if (current && current.answerId) {
      fetch("api/answers/" + encodeURIComponent(current.answerId) + "/cancel",
        { method: "POST", headers: authHeaders() }).catch(() => {});
    }
    if (controller) controller.abort(); // aborts fetch and the body reader: the server sees the disconnect
  }

  function submit() {
    const text = els.prompt.value.trim();
    if (!text || controller) return;
    els.prompt.value = "";
    autosize();
    ask(text);
  }

  function autosize() {
    els.prompt.style.height = "auto";
    els.prompt.style.height = Math.min(els.prompt.scrollHeight, 200) + "px";
  }

  function newChat() {
    stop();
    history.length = 0;
    conversationId = newId(); // a new conversation on the server too
    for (const node of [...els.messages.querySelectorAll(".msg")]) node.remove();
    els.welcome.hidden = false;
    els.prompt.focus();
  }

  async function loadConfig() {
    try {
      config = { ...config, ...(await (await fetch("api/config")).json()) };
      for (const model of config.models) {
        const option = el("option", "", model);
        option.value = model;
        option.selected = model === config.model;
        els.model.append(option);
      }
      els.mode.textContent = config.offline ? "offline · simulator" : "live API";
      els.mode.classList.toggle("live", !config.offline);
      els.mode.hidden = false;
    } catch (_) {
      els.model.hidden = true; // the server picks its default model
    }
  }

  els.form.addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  els.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  els.prompt.addEventListener("input", autosize);
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") stop(); });
  els.stop.addEventListener("click", stop);
  els.newChat.addEventListener("click", newChat);
  for (const chip of document.querySelectorAll(".chip")) {
    chip.addEventListener("click", () => { els.prompt.value = chip.textContent; autosize(); els.prompt.focus(); });
  }

  // For tests and the curious: the history the next request will send (a copy).
  window.chatHistory = () => history.map((turn) => ({ ...turn }));
  window.chatConversationId = () => conversationId;
  loadConfig();
  els.prompt.focus();
})();
