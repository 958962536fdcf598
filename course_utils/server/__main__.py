"""`python -m course_utils.server [--host H] [--port P]`: serve the chat page and its streaming endpoint.

With no API key the course's simulator answers (started here, pacing from COURSE_SIM_SPEED), so the page works
offline with this one command. The first line printed is the page's address.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import setup
from ..serving import bind_socket, uvicorn_server
from .app import create_app
from .runner import GRACEFUL_SHUTDOWN, page_url
from .settings import ChatSettings


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until interrupted (SIGINT or SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m course_utils.server",
                                     description="The course's streaming chat app (FastAPI + a plain HTML page).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    print(page_url(host, port), flush=True)  # first line: scripts and the lesson read the address from it
    course = setup(quiet=True)
    where = (f"the course's simulator (speed {course.simulator.speed:g})" if course.simulator
             else "the real Claude API")
    print(f"Answers come from {where}; model {course.model}. Stop with Ctrl+C.", flush=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per upstream request is noise here
    app = create_app(ChatSettings(model=course.model, offline=course.offline))
    server = uvicorn_server(app, log_level="info", graceful=GRACEFUL_SHUTDOWN)
    server.run(sockets=[sock])  # handles SIGINT/SIGTERM itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
