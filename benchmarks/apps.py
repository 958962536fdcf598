"""`python -m benchmarks.apps --app async|blocking --upstream URL --port P`: serve a chat app for the benchmarks.

`async` is the course's app (`course_utils.chat_app.create_app`) plus the comparison relays of `proxy_hop`, under
uvicorn with the event loop, HTTP parser and worker count given; `blocking` is `blocking_app`. Both answer
upstream from `--upstream` (a simulator) with the course's default settings otherwise.
"""

from __future__ import annotations

import argparse
import os

import fastapi.routing
import uvicorn
from fastapi import FastAPI

from course_utils.chat_app import ChatSettings, create_app

from .harness import MODEL

UPSTREAM_ENV = "BENCH_UPSTREAM"


def settings(upstream: str) -> ChatSettings:
    """The app's settings for a benchmark: its defaults, with the simulator as upstream."""
    from .proxy_hop import PING_ENV

    ping = {"ping_interval": float(os.environ[PING_ENV])} if PING_ENV in os.environ else {}
    return ChatSettings(model=MODEL, base_url=upstream, api_key="offline-benchmark", **ping)


def async_app() -> FastAPI:
    """The uvicorn factory: the course's app with every relay of `proxy_hop` (an import string, for `--workers`)."""
    from .proxy_hop import PING_ENV, add_relays

    if PING_ENV in os.environ:  # the comparison relays' FastAPI SSE keep-alive, read at every request from here
        fastapi.routing._PING_INTERVAL = float(os.environ[PING_ENV])  # noqa: SLF001
    return add_relays(create_app(settings(os.environ[UPSTREAM_ENV])))


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.apps")
    parser.add_argument("--app", choices=("async", "blocking"), default="async")
    parser.add_argument("--upstream", required=True, help="the simulator's base URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.app == "blocking":
        from .blocking_app import serve

        serve(settings(args.upstream), args.host, args.port)
        return
    os.environ[UPSTREAM_ENV] = args.upstream  # the workers import the factory and read it from there
    uvicorn.run(
        "benchmarks.apps:async_app",
        factory=True,
        host=args.host,
        port=args.port,
        loop=args.loop,
        http=args.http,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        backlog=2048,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
