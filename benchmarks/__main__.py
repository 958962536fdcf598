"""`./course bench` (= `python -m benchmarks`): run every benchmark, write results/benchmarks.json, .png and .md.

    python -m benchmarks            # everything, about five minutes on two cores
    python -m benchmarks --quick    # a smoke run: fewer rounds, N = 10 and 100 only

Not part of the test suite: the figures depend on the machine, and on what else it is doing (the load average is
recorded before and after, so a busy machine shows in the report).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import concurrency, harness, proxy_hop

RESULTS = Path(__file__).resolve().parent / "results"


def simulator_figures(quick: bool) -> dict[str, Any]:
    """The simulator's own benchmark (`benchmarks/simulator.py`), run as its own process: it pins itself."""
    argv = [sys.executable, str(Path(__file__).with_name("simulator.py")), *(["--quick"] if quick else [])]
    subprocess.run(argv, cwd=harness.ROOT, check=True, stdout=subprocess.DEVNULL, timeout=300)
    report = json.loads((RESULTS / "simulator.json").read_text())
    return {
        key: report[key]
        for key in (
            "latency_500_tokens",
            "throughput",
            "events_per_second_one_core",
            "events_per_server_cpu_second",
            "load_average_1min",
        )
        if key in report
    }


def tuning(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What uvloop + httptools, and a second worker, buy over asyncio + h11: CPU per event, and events/s at the top."""
    by = {(r["config"], r["n"]): r for r in runs}
    rows: dict[str, Any] = {}
    for name in concurrency.CONFIGS:
        mine = [r for r in runs if r["config"] == name.name and r["app"]]
        if not mine:
            continue
        events = sum(r["events_expected"] - r["events_lost"] for r in mine)
        cpu = sum(r["app"]["cpu_seconds"] for r in mine)
        top = max(mine, key=lambda r: r["n"])
        rows[name.name] = {
            "app_cpu_ms_per_event": harness.ms(cpu / events) if events else None,
            f"text_events_per_s_at_n{top['n']}": top["text_events_per_s"],
            f"stream_lag_p99_ms_at_n{top['n']}": top["stream_lag_ms"]["p99"],
        }
    base = by.get(("async-asyncio-h11", 1000))
    for name, row in rows.items():
        top = by.get((name, 1000))
        if base and top and base["text_events_per_s"]:
            row["events_per_s_vs_asyncio_h11_at_n1000"] = round(top["text_events_per_s"] / base["text_events_per_s"], 2)
    return rows


def shipped(report: dict[str, Any]) -> dict[str, Any]:
    """The shipped relay's figures, found here without knowing its name: the proxy hop's row for it, and the
    concurrency rows of the app as `./course app` serves it, each next to the direct path measured in the same run."""
    hop = report["proxy_hop"]
    mine, direct = hop["paths"].get(proxy_hop.SHIPPED), hop["paths"]["direct"]
    summary: dict[str, Any] = {
        "relay": proxy_hop.SHIPPED,
        "path": proxy_hop.RELAYS[proxy_hop.SHIPPED],
        "concurrency_config": concurrency.SHIPPED,
        "passed_relay_checks": mine is not None and proxy_hop.SHIPPED not in hop["problems"],
        "keepalive": (mine or {}).get("keepalive"),
        "app_cpu_ms_per_token": (mine or {}).get("app_cpu_ms_per_token"),
        "ttft_ms_p50": (mine or {}).get("ttft_ms_p50"),
        "direct_ttft_ms_p50": direct["ttft_ms_p50"],
        "ttft_added_ms": round(mine["ttft_ms_p50"] - direct["ttft_ms_p50"], 2) if mine else None,
        "concurrency": {},
    }
    runs = {(r["config"], r["n"]): r for r in report["concurrency"]["runs"]}
    for (config, n), row in sorted(runs.items(), key=lambda item: item[0][1]):
        if config != concurrency.SHIPPED:
            continue
        base, lag, gap = runs.get(("direct", n)), row["stream_lag_ms"]["p99"], row["gap_scheduled_ms"]["p50"]
        rig = (runs.get(("direct-shared-core", n)) or {}).get("stream_lag_ms", {}).get("p99")
        summary["concurrency"][str(n)] = {
            "stream_lag_ms_p99": lag,
            "pacing_gap_ms": gap,
            "lag_p99_vs_pacing_gap": round(lag / gap, 2) if lag is not None and gap else None,
            # The same load with no app, the client where it is in the app rows: the lag the rig itself adds.
            "rig_stream_lag_ms_p99": rig,
            "rig_lag_p99_vs_pacing_gap": round(rig / gap, 2) if rig and gap else None,
            "text_events_per_s": row["text_events_per_s"],
            "events_per_s_vs_direct": (
                round(row["text_events_per_s"] / base["text_events_per_s"], 2)
                if base and base["text_events_per_s"]
                else None
            ),
            "app_cpu_percent": (row["app"] or {}).get("cpu_percent"),
        }
    return summary


def plot(report: dict[str, Any], path: Path) -> None:
    """Eight panels: the proxy hop's two costs, then latency, pacing, lateness, CPU, memory and throughput vs N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    fig, axes = plt.subplots(2, 4, figsize=(22, 10))
    hop = report["proxy_hop"]["paths"]
    for ax, key, names, color, title, unit, fmt in (
        (axes[0][0], "ttft_ms_p50", list(hop), "#4C72B0", "Proxy hop: time to first token (median)", "ms", "%.1f"),
        (
            axes[0][1],
            "app_cpu_ms_per_token",
            [n for n in hop if n != "direct"],
            "#DD8452",
            "Proxy hop: app CPU per relayed token",
            "ms of CPU per text event",
            "%.3f",
        ),
    ):
        bars = ax.bar(names, [hop[n][key] for n in names], color=["#999999" if n == "direct" else color for n in names])
        ax.bar_label(bars, fmt=fmt)
        ax.set(title=title, ylabel=unit)
        ax.tick_params(axis="x", rotation=15)

    runs = report["concurrency"]["runs"]
    configs = list(report["concurrency"]["configs"])
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # ten colours, for fewer configurations
    colors = dict(zip(configs, palette, strict=False))
    sizes = sorted({r["n"] for r in runs})
    scheduled = {r["n"]: r for r in runs}  # the schedule depends on N only
    panels = [
        (
            axes[0][2],
            lambda r: r["ttft_ms"]["p99"],
            "Time to first token, p99",
            "ms",
            lambda n: scheduled[n]["ttft_scheduled_ms"]["p99"],
        ),
        (
            axes[0][3],
            lambda r: r["gap_ms"]["p99"],
            "Gap between tokens, p99",
            "ms",
            lambda n: scheduled[n]["gap_scheduled_ms"]["p99"],
        ),
        (
            axes[1][0],
            lambda r: max(r["stream_lag_ms"]["p99"] or 0.0, 1.0),
            "Stream lag p99 (how late the last token is)",
            "ms",
            None,
        ),
        (
            axes[1][1],
            lambda r: r["app"]["cpu_percent"] if r["app"] else None,
            "App CPU (100 % = one core)",
            "% of one core",
            None,
        ),
        (axes[1][2], lambda r: r["app"]["peak_rss_mib"] if r["app"] else None, "App peak memory (RSS)", "MiB", None),
        (
            axes[1][3],
            lambda r: r["text_events_per_s"],
            "Text events delivered per second",
            "events/s",
            lambda n: scheduled[n]["scheduled_text_events_per_s"],
        ),
    ]
    for ax, value, title, unit, reference in panels:
        for config in configs:
            mine = [r for r in runs if r["config"] == config and value(r) is not None]
            if mine:
                ax.plot(
                    [r["n"] for r in mine], [value(r) for r in mine], marker="o", color=colors[config], label=config
                )
                noisy = [r for r in mine if r["other_programs_cpu_percent"] > concurrency.CONTENDED]
                ax.scatter(
                    [r["n"] for r in noisy],
                    [value(r) for r in noisy],
                    s=36,
                    zorder=3,
                    facecolors="white",
                    edgecolors=colors[config],
                )
        if reference:
            ax.plot(sizes, [reference(n) for n in sizes], "k--", linewidth=1, label="scheduled by the simulator")
        ax.set(title=title, xlabel="concurrent streams (N)", ylabel=unit, xscale="log")
        if unit in ("% of one core", "MiB"):
            ax.set_ylim(bottom=0)
        else:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.grid(True, which="major", alpha=0.3)
    axes[1][1].axhline(100, color="k", linestyle=":", linewidth=1, label="one core")
    axes[0][2].legend(fontsize=8, loc="upper left")
    axes[1][1].legend(fontsize=8, loc="upper left")
    machine = report["machine"]
    fig.suptitle(
        f"Streaming with Claude: benchmarks ({report['when']}) on {machine['cores']} cores "
        f"({machine['cpu']}), {machine['memory_gib']:g} GiB, {machine['os']}, Python {machine['python']}; "
        f"load average before the run {report['load_average_before']:.2f}\nhollow markers: runs during "
        f"which other programs took more than {concurrency.CONTENDED:g} % of a core",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(report: dict[str, Any]) -> str:
    """The README's tables."""
    ship = report["shipped"]
    lines = [
        f"Shipped relay: `{ship['relay']}` at `{ship['path']}` "
        f"(concurrency rows: `{ship['concurrency_config']}`): "
        f"{ship['app_cpu_ms_per_token']} ms of app CPU per token, first token {ship['ttft_ms_p50']} ms against "
        f"{ship['direct_ttft_ms_p50']} ms direct (+{ship['ttft_added_ms']} ms).",
        "",
        "| path | TTFT p50 (ms) | vs direct | 600-token reply p50 (ms) | app CPU per token (ms) | keep-alive |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, row in report["proxy_hop"]["paths"].items():
        keepalive = {True: "yes", False: "no"}.get(row.get("keepalive"), "-")
        lines.append(
            f"| {name} | {row['ttft_ms_p50']:.1f} | {row['ttft_ratio_vs_direct']:.2f}x | "
            f"{row['long_reply_ms_p50']:.1f} | {row.get('app_cpu_ms_per_token', '-')} | {keepalive} |"
        )
    lines += [
        "",
        "| config | N | TTFT p50 / p99 (ms) | gap p50 / p99 (ms) | lag p99 (ms) | lost | garbled | "
        "app CPU % | peak RSS (MiB) | sim CPU % | client CPU % | others CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["concurrency"]["runs"]:
        app = r["app"] or {}
        contended = " †" if r["other_programs_cpu_percent"] > concurrency.CONTENDED else ""
        lines.append(
            f"| {r['config']} | {r['n']}{contended} | {r['ttft_ms']['p50']:.0f} / {r['ttft_ms']['p99']:.0f} | "
            f"{r['gap_ms']['p50']:.0f} / {r['gap_ms']['p99']:.0f} | {r['stream_lag_ms']['p99'] or 0:.0f} | "
            f"{r['events_lost']} | {r['events_garbled']} | {app.get('cpu_percent', '-')} | "
            f"{app.get('peak_rss_mib', '-')} | {r['simulator']['cpu_percent']} | {r['client']['cpu_percent']} | "
            f"{r['other_programs_cpu_percent']} |"
        )
    lines.append(f"\n† other programs took more than {concurrency.CONTENDED:g} % of a core during the run.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run, write, print."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer rounds, N = 10 and 100")
    args = parser.parse_args(argv)
    harness.raise_file_limit()
    started = time.monotonic()
    report: dict[str, Any] = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": harness.machine(),
        "load_average_before": round(os.getloadavg()[0], 2),
        "quick": args.quick,
    }
    print("simulator...", flush=True)
    report["simulator"] = simulator_figures(args.quick)
    print("proxy hop...", flush=True)
    report["proxy_hop"] = proxy_hop.run(rounds=5 if args.quick else 30)
    print("concurrency...", flush=True)
    sizes = (10, 100) if args.quick else concurrency.SIZES
    report["concurrency"] = concurrency.run(sizes=sizes)
    report["tuning"] = tuning(report["concurrency"]["runs"])
    report["shipped"] = shipped(report)
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    report["duration_s"] = round(time.monotonic() - started)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "benchmarks.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report, RESULTS / "benchmarks.png")
    (RESULTS / "benchmarks.md").write_text(markdown(report) + "\n")
    print(markdown(report))
    print(
        f"\nwritten: {RESULTS / 'benchmarks.json'} and benchmarks.png in {report['duration_s']} s "
        f"(load average {report['load_average_before']} before, {report['load_average_after']} after)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
