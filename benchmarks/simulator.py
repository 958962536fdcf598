"""How fast is the simulator itself? Pacing off, so that what is measured is the server, not the pacing.

    .venv/bin/python benchmarks/simulator.py [--quick]

Prints the figures and writes them to benchmarks/results/simulator.json:
- latency of a 500-token streamed reply (first body byte, whole stream; median of 20) with a raw httpx stream client
  (bytes only: no SSE parsing, no SDK), so the client adds as little as possible to what is timed;
- events per second on one core: the simulator runs in its own process pinned to core 0, the load comes from core 1
  through plain asyncio sockets (cheaper per event than any HTTP client, so the server saturates first), and the
  simulator's own CPU time is sampled, so the figure is events per CPU-second of the server, whatever the client did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.harness import Monitor, machine, ms, percentile, process_cpu, run_async, start_simulator  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "simulator.json"
# "Write 500 words" makes a long answer; max_tokens cuts it at exactly 500 tokens.
REQUEST = {
    "model": "claude-haiku-4-5",
    "max_tokens": 500,
    "stream": True,
    "messages": [{"role": "user", "content": "Write 500 words about the ocean"}],
}
HEADERS = {"x-api-key": "benchmark", "anthropic-version": "2023-06-01"}  # as the real API requires
END_OF_BODY = b"\r\n0\r\n\r\n"  # the last chunk of a chunked HTTP/1.1 body


def latency(base_url: str, runs: int) -> dict[str, Any]:
    """First body byte and whole-stream times of the 500-token reply, over one keep-alive connection."""
    first, total, body = [], [], b""
    with httpx.Client(timeout=30) as client:
        for i in range(runs + 3):  # three warm-up runs: connection, caches
            started = time.perf_counter()
            with client.stream("POST", base_url + "/v1/messages", json=REQUEST, headers=HEADERS) as response:
                chunks = response.iter_raw()
                body = next(chunks)
                first_byte = time.perf_counter() - started
                body += b"".join(chunks)
            if i >= 3:
                first.append(first_byte)
                total.append(time.perf_counter() - started)
    events = body.count(b"\n\n")
    final_usage = json.loads(body.rsplit(b"event: message_delta\ndata: ", 1)[1].split(b"\n", 1)[0])["usage"]
    assert final_usage["output_tokens"] == REQUEST["max_tokens"], final_usage
    return {
        "runs": runs,
        "output_tokens": final_usage["output_tokens"],
        "events_per_stream": events,
        "bytes_per_stream": len(body),
        "first_byte_ms": {"median": ms(statistics.median(first)), "p90": ms(percentile(first, 90))},
        "full_stream_ms": {"median": ms(statistics.median(total)), "p90": ms(percentile(total, 90))},
    }


async def _stream_forever(host: str, port: int, request: bytes, deadline: float) -> int:
    """Stream the reply again and again over one keep-alive connection until `deadline`; returns streams read."""
    reader, writer = await asyncio.open_connection(host, port)
    streams = 0
    try:
        while time.perf_counter() < deadline:
            writer.write(request)
            tail = b""
            while not tail.endswith(END_OF_BODY):
                chunk = await reader.read(1 << 16)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                tail = (tail + chunk)[-len(END_OF_BODY) :]
            streams += 1
    finally:
        writer.close()
    return streams


def throughput(base_url: str, server_pid: int, concurrency: int, seconds: float, events_per_stream: int) -> dict:
    """Events per second with `concurrency` connections streaming back to back, and the server's CPU use."""
    parts = urlsplit(base_url)
    body = json.dumps(REQUEST).encode()
    request = (
        f"POST /v1/messages HTTP/1.1\r\nhost: {parts.netloc}\r\nx-api-key: benchmark\r\n"
        f"anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body

    async def run() -> int:
        deadline = time.perf_counter() + seconds
        counts = await asyncio.gather(
            *(_stream_forever(parts.hostname, parts.port, request, deadline) for _ in range(concurrency))
        )
        return sum(counts)

    client_cpu = process_cpu()
    with Monitor(server_pid) as monitor:
        streams = run_async(run())
    client_cpu = process_cpu() - client_cpu
    usage = monitor.usage
    events = streams * events_per_stream
    return {
        "concurrency": concurrency,
        "streams": streams,
        "events": events,
        "events_per_second": round(events / usage.wall_seconds),
        "server_cpu_percent": round(usage.cpu_percent, 1),
        "events_per_server_cpu_second": round(events / usage.cpu_seconds) if usage.cpu_seconds else None,
        "client_cpu_percent": round(100 * client_cpu / usage.wall_seconds, 1),
    }


def main() -> None:
    """Measure, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs and shorter loads (a smoke test)")
    args = parser.parse_args()
    runs, seconds = (5, 1.0) if args.quick else (20, 4.0)
    two_cores = (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity")
    if two_cores:
        os.sched_setaffinity(0, {1})  # the client on core 1; the simulator alone on core 0
    with start_simulator(speed=0, cpus={0} if two_cores else None) as simulator:
        lat = latency(simulator.url, runs)
        loads = [throughput(simulator.url, simulator.pid, n, seconds, lat["events_per_stream"]) for n in (1, 4, 16, 64)]
    best = max(loads, key=lambda load: load["events_per_second"])
    report = {
        "what": "the course's simulator, pacing off (speed 0), one process pinned to one core",
        "machine": machine(),
        "pinned": two_cores,
        # Other work on the machine takes the simulator's core from it: it lowers events/s, not events/CPU-s.
        "load_average_1min": round(os.getloadavg()[0], 2),
        "latency_500_tokens": lat,
        "throughput": loads,
        "events_per_second_one_core": best["events_per_second"],
        "events_per_server_cpu_second": max(load["events_per_server_cpu_second"] or 0 for load in loads),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")

    print(f"500-token reply ({lat['events_per_stream']} events, {lat['bytes_per_stream']} bytes), median of {runs}:")
    print(f"  first byte   {lat['first_byte_ms']['median']:8.2f} ms  (p90 {lat['first_byte_ms']['p90']:.2f} ms)")
    print(f"  whole stream {lat['full_stream_ms']['median']:8.2f} ms  (p90 {lat['full_stream_ms']['p90']:.2f} ms)")
    print("events/s with the simulator on one core:")
    for load in loads:
        print(
            f"  {load['concurrency']:3d} connections: {load['events_per_second']:>8,} events/s, "
            f"server CPU {load['server_cpu_percent']:5.1f} %, client CPU {load['client_cpu_percent']:5.1f} %, "
            f"{load['events_per_server_cpu_second']:,} events per server CPU-second"
        )
    print(
        f"best: {report['events_per_second_one_core']:,} events/s "
        f"(load average {report['load_average_1min']:.1f} on {os.cpu_count()} cores); written to {RESULTS}"
    )


if __name__ == "__main__":
    main()
