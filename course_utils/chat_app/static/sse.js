/* A buffered Server-Sent Events parser for fetch() streams (lesson 06).
 *
 * A network read can end anywhere: inside a line, between "\r" and "\n", even inside a multi-byte character.
 * So the parser decodes bytes with a streaming TextDecoder, keeps the unfinished last line for the next read,
 * and dispatches an event only at its blank line, following the WHATWG "event stream interpretation" rules
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation), like
 * course_utils/sse.py does in Python.
 *
 *   const parser = new SSEParser();
 *   for (const event of parser.feed(bytes)) { ... }   // event: {event, data, id}
 *   parser.end();                                      // at end of stream
 */
(function (global) {
  "use strict";

  const LINE_END = /\r\n|\r|\n/g;

  class SSEParser {
    constructor() {
      this.decoder = new TextDecoder("utf-8"); // also drops a leading byte-order mark, as the spec asks
      this.line = ""; // text after the last line ending: a line still being received
      this.afterCR = false; // the last line ended with "\r": a "\n" arriving next belongs to it
      this.eventName = "";
      this.dataLines = [];
      this.lastId = null; // per the spec the id carries over to later events
    }

    /** Consume a chunk (Uint8Array, or an already decoded string); return the events it completed. */
    feed(chunk) {
      const text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
      return this.consume(text);
    }

    /** End of stream: return events completed by the last bytes. An event without its blank line is dropped,
     * as the spec says (and as the anthropic SDK does): a stream cut mid-event must not look complete. */
    end() {
      const events = this.consume(this.decoder.decode());
      this.line = "";
      this.eventName = "";
      this.dataLines = [];
      return events;
    }

    consume(text) {
      if (this.afterCR && text.length > 0) {
        // A read ended between the "\r" and "\n" of a CRLF: that line was already processed at "\r".
        if (text[0] === "\n") text = text.slice(1);
        this.afterCR = false;
      }
      const buffer = this.line + text;
      const events = [];
      let start = 0;
      LINE_END.lastIndex = 0;
      for (let match; (match = LINE_END.exec(buffer)) !== null; ) {
        const event = this.processLine(buffer.slice(start, match.index));
        if (event) events.push(event);
        start = match.index + match[0].length;
      }
      this.line = buffer.slice(start);
      this.afterCR = buffer.endsWith("\r");
      return events;
    }

    processLine(line) {
      if (line === "") return this.dispatch();
      if (line[0] === ":") return null; // a comment: servers send them as keep-alive pings
      const colon = line.indexOf(":");
      const name = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1); // exactly one space is part of the syntax
      if (name === "event") this.eventName = value;
      else if (name === "data") this.dataLines.push(value);
      else if (name === "id" && !value.includes("\0")) this.lastId = value;
      // "retry" and unknown fields are ignored: fetch() does not reconnect on its own.
      return null;
    }

    dispatch() {
      // No data line means no event (the spec), even if "event:" was set.
      const event = this.dataLines.length
        ? { event: this.eventName || "message", data: this.dataLines.join("\n"), id: this.lastId }
        : null;
      this.eventName = "";
      this.dataLines = [];
      return event;
    }
  }

  /** Every event of a fetch() Response whose body is an event stream, as an async iterator. */
  async function* readEvents(response) {
    const reader = response.body.getReader();
    const parser = new SSEParser();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        yield* parser.feed(value);
      }
      finished = true;
      yield* parser.end();
    } finally {
      // Leaving early (the caller stopped, or a read failed) must close the connection, not just let go of it.
      if (finished) reader.releaseLock();
      else reader.cancel().catch(() => {});
    }
  }

  global.SSEParser = SSEParser;
  global.readEvents = readEvents;
})(window);
