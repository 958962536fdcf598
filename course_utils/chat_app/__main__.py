"""`python -m course_utils.chat_app [--host H] [--port P] [deployment options]`: serve the chat page and its endpoint.

With no API key the course's simulator answers (started here, pacing from COURSE_SIM_SPEED), so the page works
offline with this one command. The first line printed is the page's address. Lesson 08's options (a token, limits,
server-held history, Redis) are all off until given; on an address other machines can reach, a token is required.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .. import setup
from ..serving import bind_socket, is_loopback, uvicorn_server
from .app import create_app
from .runner import GRACEFUL_SHUTDOWN, page_url
from .settings import ChatSettings, tokens_from_env

log = logging.getLogger("course_utils.chat_app")


def parser() -> argparse.ArgumentParser:
    """The command line's options."""
    p = argparse.ArgumentParser(
        prog="python -m course_utils.chat_app",
        description="The course's streaming chat app (FastAPI + a plain HTML page).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on; 0 picks a free one")
    d = p.add_argument_group("deployment (lesson 08)")
    d.add_argument(
        "--token",
        action="append",
        default=None,
        help="access token the page must send as `Authorization: Bearer`; repeat for several clients "
        "(default: COURSE_APP_TOKEN, commas between several). Required off loopback.",
    )
    d.add_argument("--requests-per-minute", type=int, metavar="N", help="requests per client per minute")
    d.add_argument("--tokens-per-day", type=int, metavar="N", help="output tokens per client per UTC day")
    d.add_argument(
        "--server-history", action="store_true", help="the server keeps each conversation and decides the prompt"
    )
    d.add_argument("--system-prompt", metavar="TEXT", help="the system prompt (or @file to read it from a file)")
    d.add_argument(
        "--redis",
        metavar="URL",
        help="keep limits, histories and answers in this Redis (redis://host:port/db), shared by every worker",
    )
    d.add_argument(
        "--resume-grace",
        type=float,
        default=30.0,
        metavar="S",
        help="with --redis: seconds an answer keeps generating for a reader who lost the connection",
    )
    d.add_argument(
        "--drain",
        type=float,
        default=GRACEFUL_SHUTDOWN,
        metavar="S",
        help=f"on SIGTERM, seconds open streams may still finish (default: {GRACEFUL_SHUTDOWN:g})",
    )
    d.add_argument("--docs", action="store_true", help="serve the API's documentation at /api/docs")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve until interrupted (SIGINT or SIGTERM)."""
    cli = parser()
    args = cli.parse_args(argv)
    if not 0 <= args.port <= 65535:
        cli.error("--port must be between 0 and 65535")
    tokens = tuple(t for t in (args.token or []) if t) or tokens_from_env()
    if not tokens and not is_loopback(args.host):
        # Open on a reachable address, the app would spend the API key for anyone who finds it.
        print(
            f"error: refusing to listen on {args.host} without an access token: anyone who can reach it could "
            "spend the API key. Set --token or COURSE_APP_TOKEN, or listen on 127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    system = args.system_prompt
    if system and system.startswith("@"):
        system = Path(system[1:]).read_text().strip()
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    print(page_url(host, port), flush=True)  # first line: scripts and the lesson read the address from it
    course = setup(quiet=True)
    where = f"the course's simulator (speed {course.simulator.speed:g})" if course.simulator else "the real Claude API"
    print(f"Answers come from {where}; model {course.model}. Stop with Ctrl+C.", flush=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per upstream request is noise here
    settings = ChatSettings(
        model=course.model,
        offline=course.offline,
        tokens=tokens,
        requests_per_minute=args.requests_per_minute,
        tokens_per_day=args.tokens_per_day,
        server_history=args.server_history or args.redis is not None,
        system_prompt=system,
        redis_url=args.redis,
        resume_grace=args.resume_grace,
        docs=args.docs or not (tokens or args.redis),
    )
    log.info("%s", access_line(settings))  # the first log line: who can use this server
    app = create_app(settings)
    server = uvicorn_server(app, log_level="info", graceful=args.drain)
    server.run(sockets=[sock])  # handles SIGINT/SIGTERM itself
    return 0


def access_line(settings: ChatSettings) -> str:
    """One sentence on who may use the server and within which limits."""
    if settings.tokens:
        who = f"access: {len(settings.tokens)} token{'s' if len(settings.tokens) > 1 else ''} required"
    else:
        who = "access: OPEN, no token (loopback only: anyone on this machine can use the API key through it)"
    limits = [f"{settings.requests_per_minute} requests/min" for _ in [0] if settings.requests_per_minute] + [
        f"{settings.tokens_per_day} output tokens/day" for _ in [0] if settings.tokens_per_day
    ]
    state = "Redis" if settings.redis_url else "memory"
    history = "server-held history" if settings.server_history else "history sent by the page"
    return f"{who}; limits per client: {', '.join(limits) or 'none'}; {history}; state in {state}"


if __name__ == "__main__":
    sys.exit(main())
