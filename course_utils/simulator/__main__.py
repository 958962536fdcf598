"""`python -m course_utils.simulator --port PORT [--speed X]`: serve the simulator until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from .running import check_speed, serve_forever, speed_from_env


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve; 0 on Ctrl-C or SIGTERM, 1 if the port cannot be used, 2 on bad arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.simulator", description="An offline simulator of the Claude Messages API."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="pacing: 1 real-time, 2 twice as fast, 0 no delay (default: $COURSE_SIM_SPEED or 1)",
    )
    args = parser.parse_args(argv)
    try:
        speed = speed_from_env() if args.speed is None else check_speed(args.speed, "--speed")
    except ValueError as exc:
        parser.error(str(exc))
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    # uvicorn handles SIGTERM like Ctrl-C, then raises it again once shut down: end quietly with status 0 then.
    signal.signal(signal.SIGTERM, _interrupted)
    try:
        serve_forever(args.host, args.port, speed)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
