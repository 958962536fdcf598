"""The course's benchmarks: its own code measured like production code (`./course bench`, see README.md here).

- `simulator.py`: the simulator alone, pacing off (events/s on one core, first-byte latency);
- `proxy_hop.py`: `/api/chat` against the direct SDK call, with four relay designs side by side;
- `concurrency.py`: N concurrent paced streams through one app process, async against `blocking_app.py`;
- `harness.py`: pinned server processes, CPU and memory sampling, the SSE load client; `apps.py` serves the apps.
"""
