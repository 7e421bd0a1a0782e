"""``make bench``: run every benchmark, print the table, write the JSON.

Each figure is a ratio against a baseline measured in the same run against the same server;
the figure is the median of the per-repeat ratios and the spread is their min and max. The
client runs in this process; each server runs in a process of its own on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench import workloads as w
from tinker_rest import RestClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RUN_PATH = "/api/v1/training_runs/{}"
FAST_RUN_ID = "sess-bench:train:0"
# The facade as it is: one engine thread driving libcurl (tinker_rest/_engine.py). The worker
# pool and the event-loop prototype it was once compared with are gone; the engine candidates
# are compared raw in bench_far.
DESIGNS = ("threads",)
LABELS = {"threads": ""}


# The environment of a child process that measures start-up (import, the download, the calls in
# flight): as after `pip install`, which compiles every module, bytecode is written on the first
# import and read after, even where PYTHONDONTWRITEBYTECODE is set. Under it an editable install
# compiles the whole package again in every process: the generated models alone took a download
# of 512 MiB from 1.7 s to 2.5 s (py-spy: a third of the samples in imports).
INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of everything to run."""

    seq_calls: int = 2000
    seq_chunk: int = 100
    conc_calls: int = 5000
    in_flight: int = 64
    repeats: int = 5
    conc_repeats: int = 3
    # Design (b) is several times slower than (a): fewer repeats keep `make bench` short.
    loop_repeats: int = 2
    loop_conc_repeats: int = 1
    # The default RestClient's max_in_flight.
    default_in_flight: int = 1024
    sweep_in_flight: tuple[int, ...] = (2, 4, 8, 16, 32, 64)
    sweep_repeats: int = 1
    sweep_calls: int = 1500
    import_repeats: int = 11
    runs: int = 10_000
    checkpoints: int = 100_000
    page_size: int = 1000
    page_repeats: int = 1
    deep_repeats: int = 5
    download_bytes: int = 1 << 30
    download_repeats: int = 5
    server_calls: int = 600
    server_clients: int = 64
    server_repeats: int = 3
    far_delay: float = 0.05
    far_calls: int = 2000
    far_in_flight: int = 256
    far_repeats: int = 3
    engine_seq_calls: int = 1000
    in_flight_calls: int = 1000
    # A prune of every checkpoint against the far server, at the default RestClient's
    # max_in_flight; the raw baseline keeps as many in flight.
    prune_checkpoints: int = 5000
    prune_in_flight: int = 1024
    prune_repeats: int = 3


SMOKE = Plan(
    seq_calls=30,
    seq_chunk=10,
    conc_calls=100,
    in_flight=8,
    repeats=1,
    conc_repeats=1,
    loop_repeats=1,
    loop_conc_repeats=1,
    sweep_in_flight=(4,),
    sweep_repeats=1,
    sweep_calls=50,
    import_repeats=1,
    runs=20,
    checkpoints=300,
    page_size=50,
    page_repeats=1,
    deep_repeats=2,
    download_bytes=1 << 20,
    download_repeats=1,
    server_calls=40,
    server_clients=4,
    server_repeats=1,
    far_delay=0.01,
    far_calls=100,
    far_in_flight=16,
    far_repeats=1,
    engine_seq_calls=20,
    in_flight_calls=50,
    prune_checkpoints=1500,
    prune_in_flight=64,
    prune_repeats=1,
)


# --- servers in their own processes ---------------------------------------------------------


@contextlib.contextmanager
def child_server(args: list[str], timeout: float = 600) -> Iterator[dict[str, Any]]:
    """Start a server script; yield the JSON line it prints; close its stdin to stop it."""
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE.parent,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"server {args[0]} exited with {proc.wait()}")
        yield json.loads(line)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- figures --------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "repeats": values,
    }


def seconds(ours: list[w.Sample], baseline: list[w.Sample]) -> dict[str, Any]:
    """The wall and CPU seconds of ours and of the baseline, each summarized, for a figure."""
    return {
        "ours_s": summary([s.seconds for s in ours]),
        "baseline_s": summary([s.seconds for s in baseline]),
        "ours_cpu_s": summary([s.cpu for s in ours]),
        "baseline_cpu_s": summary([s.cpu for s in baseline]),
    }


def figure(
    key: str, name: str, ratios: list[float], op: str, target: float, **detail: Any
) -> dict[str, Any]:
    s = summary(ratios)
    met = s["median"] <= target if op == "<=" else s["median"] >= target
    return {"key": key, "figure": name, "target": f"{op} {target:g}", "met": met, **s, **detail}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_fast(plan: Plan) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Client figures against the canned fast server, for both concurrency designs."""
    figures: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    path = RUN_PATH.format(FAST_RUN_ID)
    key = "bench-key"
    with child_server(["bench/fast_server.py"]) as info:
        base = info["base_url"]
        raw_lat: list[list[float]] = []
        raw_seq: list[w.Sample] = []
        ours_lat: dict[str, list[list[float]]] = {d: [] for d in DESIGNS}
        ours_seq: dict[str, list[w.Sample]] = {d: [] for d in DESIGNS}
        for rep in range(plan.repeats):
            log(f"sequential latency, repeat {rep + 1}/{plan.repeats}")
            designs = [d for d in DESIGNS if d != "loop" or rep < plan.loop_repeats]
            with contextlib.ExitStack() as stack:
                raw_client = stack.enter_context(w.raw_client(base, key))
                calls = {"raw": w.raw_call(raw_client, path)}
                for design in designs:
                    client = stack.enter_context(
                        w.make_client(design, base, key, plan.default_in_flight)
                    )
                    calls[design] = (lambda c: lambda: c.get_training_run(FAST_RUN_ID).result())(
                        client
                    )
                samples = w.interleaved(calls, plan.seq_calls, plan.seq_chunk)
            raw_seq.append(samples["raw"])
            raw_lat.append(samples["raw"].latencies)
            for design in designs:
                ours_seq[design].append(samples[design])
                ours_lat[design].append(samples[design].latencies)

        log("where a call's CPU goes, layer by layer")
        with contextlib.ExitStack() as stack:
            layers = w.layer_calls(base, key, path, FAST_RUN_ID, stack)
            layer_samples = [
                w.interleaved(layers, plan.seq_calls, plan.seq_chunk) for _ in range(plan.repeats)
            ]
        extra["layers_cpu_us_per_call"] = {
            name: summary([s[name].cpu_per_call * 1e6 for s in layer_samples]) for name in layers
        }

        raws: dict[str, list[w.Sample]] = {"loop": [], "threads": [], "async": []}
        ours_fut: dict[str, list[w.Sample]] = {d: [] for d in DESIGNS}
        ours_aio: dict[str, list[w.Sample]] = {d: [] for d in DESIGNS}
        n, k = plan.conc_calls, plan.in_flight
        for rep in range(plan.conc_repeats):
            log(f"throughput, repeat {rep + 1}/{plan.conc_repeats}")
            raws["loop"].append(w.raw_sequential(base, key, path, n))
            raws["threads"].append(w.raw_threads(base, key, path, n, k))
            raws["async"].append(w.raw_async(base, key, path, n, k))
            for design in [d for d in DESIGNS if d != "loop" or rep < plan.loop_conc_repeats]:
                with w.make_client(design, base, key, plan.default_in_flight) as client:
                    ours_fut[design].append(w.ours_futures(client, FAST_RUN_ID, n, k))
                    ours_aio[design].append(w.ours_async(client, FAST_RUN_ID, n, k))

        # The best raw way, per repeat.
        best = [
            max((raws[way][i] for way in raws), key=lambda s: s.throughput)
            for i in range(plan.conc_repeats)
        ]
        extra["raw_throughput"] = {
            way: summary([s.throughput for s in samples]) for way, samples in raws.items()
        }
        extra["raw_cpu_us_per_call"] = {
            way: summary([s.cpu_per_call * 1e6 for s in samples]) for way, samples in raws.items()
        }
        extra["raw_seq_latency_ms"] = summary([statistics.median(x) * 1e3 for x in raw_lat])
        for design in DESIGNS:
            tag = LABELS[design]
            d = {} if design == "threads" else {"design": design}
            suffix = "" if design == "threads" else "_" + design
            lat = [
                statistics.median(o) / statistics.median(r)
                for o, r in zip(ours_lat[design], raw_lat, strict=False)
            ]
            figures.append(
                figure(
                    "sequential_latency" + suffix,
                    "sequential latency, vs raw httpx.Client" + tag,
                    lat,
                    "<=",
                    0.8,
                    ours_ms=summary([statistics.median(x) * 1e3 for x in ours_lat[design]]),
                    baseline_ms=extra["raw_seq_latency_ms"],
                    **d,
                )
            )
            fut, aio = ours_fut[design], ours_aio[design]
            figures.append(
                figure(
                    "concurrent_throughput" + suffix,
                    "concurrent throughput" + tag,
                    [o.throughput / b.throughput for o, b in zip(fut, best, strict=False)],
                    ">=",
                    0.9,
                    ours_per_s=summary([s.throughput for s in fut]),
                    baseline_per_s=summary([s.throughput for s in best]),
                    **d,
                )
            )
            if aio:
                figures.append(
                    figure(
                        "async_path" + suffix,
                        "async path" + tag,
                        [o.throughput / b.throughput for o, b in zip(aio, best, strict=False)],
                        ">=",
                        0.9,
                        ours_per_s=summary([s.throughput for s in aio]),
                        baseline_per_s=summary([s.throughput for s in best]),
                        **d,
                    )
                )
            seq = ours_seq[design]
            figures.append(
                figure(
                    "no_collapse" + suffix,
                    "no collapse under load" + tag,
                    [f.throughput / s.throughput for f, s in zip(fut, seq, strict=False)],
                    ">=",
                    1.0,
                    in_flight_64_per_s=summary([s.throughput for s in fut]),
                    in_flight_1_per_s=summary([s.throughput for s in seq]),
                    **d,
                )
            )
            figures.append(
                figure(
                    "client_cpu" + suffix,
                    "client CPU per call, sequential, vs raw httpx.Client" + tag,
                    [o.cpu_per_call / b.cpu_per_call for o, b in zip(seq, raw_seq, strict=False)],
                    "<=",
                    0.75,
                    ours_us=summary([s.cpu_per_call * 1e6 for s in seq]),
                    baseline_us=summary([s.cpu_per_call * 1e6 for s in raw_seq]),
                    # With 64 in flight, against the best raw way (threads, asyncio or a loop).
                    concurrent_ratio=summary(
                        [o.cpu_per_call / b.cpu_per_call for o, b in zip(fut, best, strict=False)]
                    ),
                    **d,
                )
            )

        log("max_in_flight sweep (64 futures submitted at a time)")
        sweep: dict[str, list[float]] = {str(m): [] for m in plan.sweep_in_flight}
        sweep_ratio: dict[str, list[float]] = {str(m): [] for m in plan.sweep_in_flight}
        for _ in range(plan.sweep_repeats):
            for m in plan.sweep_in_flight:
                # A raw loop right before each setting, so each ratio sees the same load.
                raw_s = w.raw_sequential(base, key, path, plan.sweep_calls).throughput
                with w.make_client("threads", base, key, m) as client:
                    s = w.ours_futures(client, FAST_RUN_ID, plan.sweep_calls, k)
                sweep[str(m)].append(s.throughput)
                sweep_ratio[str(m)].append(s.throughput / raw_s)
        extra["max_in_flight_sweep"] = {
            "per_s": {m: summary(v) for m, v in sweep.items()},
            "ratio_to_raw_loop": {m: summary(v) for m, v in sweep_ratio.items()},
        }
    return figures, extra


def bench_far(plan: Plan) -> tuple[dict[str, Any], dict[str, Any]]:
    """The engine candidates side by side, raw, and the far-service figure: a default
    RestClient against the best raw engine, ``far_in_flight`` calls in flight against the
    canned server answering after ``far_delay``; and client threads and peak RSS with
    ``in_flight_calls`` in flight (in a process of its own)."""
    from bench import engines

    path = RUN_PATH.format(FAST_RUN_ID)
    out: dict[str, Any] = {}
    log("engine candidates: sequential, against the canned server")
    with child_server(["bench/fast_server.py"]) as info:
        url = info["base_url"] + path
        calls = engines.sequential_calls(url)
        samples = w.interleaved(
            {k: v[0] for k, v in calls.items()}, plan.engine_seq_calls, plan.seq_chunk
        )
        for _, close in calls.values():
            close()
    out["sequential"] = {
        name: {
            "latency_us": statistics.median(s.latencies) * 1e6,
            "cpu_us": s.cpu_per_call * 1e6,
        }
        for name, s in samples.items()
    }
    n, k = plan.far_calls, plan.far_in_flight
    far: dict[str, list[float]] = {name: [] for name in engines.FAR}
    ours: list[float] = []
    ratios: list[float] = []
    with child_server(["bench/fast_server.py", "--delay", str(plan.far_delay)]) as info:
        base = info["base_url"]
        for rep in range(plan.far_repeats):
            log(f"far service ({plan.far_delay * 1e3:.0f} ms, {k} in flight), repeat {rep + 1}")
            got = {}
            for name, run in engines.FAR.items():
                if far[name] and far[name][-1] == 0.0:
                    got[name] = 0.0  # failed before: not tried again
                else:
                    try:
                        got[name] = run(base + path, n, k).throughput
                    except Exception as exc:  # a candidate that fails is recorded as such
                        log(f"{name} failed: {exc!r}")
                        got[name] = 0.0
                far[name].append(got[name])
            with RestClient(base, "bench-key", max_retries=0) as client:
                mine = w.ours_futures(client, FAST_RUN_ID, n, k).throughput
            ours.append(mine)
            ratios.append(mine / max(got.values()))
        log(f"{plan.in_flight_calls} calls in flight: threads and peak RSS")
        child = subprocess.run(
            [sys.executable, str(HERE / "inflight_child.py"), base, str(plan.in_flight_calls)],
            check=True,
            capture_output=True,
            text=True,
            env=INSTALLED,
        )
        out["in_flight"] = json.loads(child.stdout.splitlines()[-1])
        out["in_flight"]["calls"] = plan.in_flight_calls
    out["far_per_s"] = {name: summary(v) for name, v in far.items()}
    best = [max(far[name][i] for name in far) for i in range(plan.far_repeats)]
    fig = figure(
        "far_service",
        f"far service ({k} in flight)",
        ratios,
        ">=",
        0.8,
        ours_per_s=summary(ours),
        baseline_per_s=summary(best),
        delay_ms=plan.far_delay * 1e3,
    )
    return fig, out


def bench_prune(plan: Plan) -> dict[str, Any]:
    """A prune of every checkpoint, listing included: ``client.prune_checkpoints(keep_last=0)``
    through a RestClient against the canned far server holding ``prune_checkpoints`` synthetic
    checkpoints, against the same requests raw (the same pages, then a ``DELETE`` of each) through
    one thread driving a ``CurlMulti``, with ``prune_in_flight`` in flight for both."""
    from bench import engines
    from tinker_rest import _storage

    n, k = plan.prune_checkpoints, plan.prune_in_flight
    ours: list[w.Sample] = []
    raw: list[w.Sample] = []
    ours_list: list[float] = []
    raw_list: list[float] = []
    args = ["bench/fast_server.py", "--delay", str(plan.far_delay), "--checkpoints", str(n)]
    with child_server(args) as info:
        base = info["base_url"]

        def deleted() -> int:
            with httpx.Client() as plain:
                count: int = plain.get(base + "/bench/deleted").json()["deleted"]
                return count

        pool = engines.CurlMultiPool(k)
        client = RestClient(base, "bench-key", max_in_flight=k)

        def prune_ours() -> None:
            result = client.prune_checkpoints(keep_last=0)
            if not result.ok or len(result.done) != n:
                raise RuntimeError(f"the prune did {len(result.done)} of {n}: {result.failed[:1]}")

        def prune_raw() -> None:
            listing, count = engines.raw_prune(pool, base, _storage.PAGE_SIZE)
            raw_list.append(listing)
            if count != n:
                raise RuntimeError(f"the raw prune deleted {count} of {n}")

        with contextlib.closing(pool), client:
            away = f"{plan.far_delay * 1e3:.0f} ms away"
            log(f"prune: {n} checkpoints, {k} in flight, {away}: warm-up")
            prune_raw()
            prune_ours()
            raw_list.clear()
            before = deleted()
            for rep in range(plan.prune_repeats):
                log(f"prune, repeat {rep + 1}/{plan.prune_repeats}")
                # Taking turns at going first, so that neither always follows the other.
                for way in ("raw", "ours") if rep % 2 == 0 else ("ours", "raw"):
                    if way == "raw":
                        raw.append(w.timed(prune_raw, n))
                    else:
                        ours.append(w.timed(prune_ours, n))
                # The listing alone: the same prune, planned only.
                t0 = time.perf_counter()
                client.prune_checkpoints(keep_last=0, dry_run=True)
                ours_list.append(time.perf_counter() - t0)
            if deleted() - before != 2 * n * plan.prune_repeats:
                raise RuntimeError("the server did not see every checkpoint deleted")
    return figure(
        "prune",
        f"prune {n} checkpoints ({k} in flight)",
        [o.throughput / r.throughput for o, r in zip(ours, raw, strict=True)],
        ">=",
        0.8,
        ours_per_s=summary([s.throughput for s in ours]),
        baseline_per_s=summary([s.throughput for s in raw]),
        **seconds(ours, raw),
        ours_list_s=summary(ours_list),
        baseline_list_s=summary(raw_list),
        checkpoints=n,
        in_flight=k,
        delay_ms=plan.far_delay * 1e3,
    )


def engines_table(engines_result: dict[str, Any]) -> str:
    """The engine candidates, raw, as markdown."""
    lines = [
        "Engine candidates, raw, in one run: sequential against the canned server, and "
        "calls/s with the far service's calls in flight:",
        "",
        "| engine | sequential latency | client CPU per call |",
        "|---|---|---|",
    ]
    for name, row in engines_result["sequential"].items():
        lines.append(f"| {name} | {row['latency_us']:.0f} µs | {row['cpu_us']:.0f} µs |")
    lines += ["", "| engine, far service | calls/s (median) |", "|---|---|"]
    for name, s in engines_result["far_per_s"].items():
        lines.append(f"| {name} | {s['median']:.0f} |")
    if inflight := engines_result.get("in_flight"):
        lines += [
            "",
            f"A default RestClient with {inflight['calls']} calls in flight: "
            f"{inflight['threads_in_flight']} threads (from {inflight['threads_before']} "
            f"before), peak RSS {inflight['maxrss_mib']:.0f} MiB "
            f"({inflight['idle_rss_mib']:.0f} MiB after import).",
        ]
    return "\n".join(lines)


def bench_import(plan: Plan) -> dict[str, Any]:
    log("import time")

    def once(module: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True, env=INSTALLED)
        return time.perf_counter() - t

    once("httpx")
    once("tinker_rest")  # compile and cache
    ours, raw = [], []
    for _ in range(plan.import_repeats):
        raw.append(once("httpx"))
        ours.append(once("tinker_rest"))
    return figure(
        "import",
        "import",
        [o / r for o, r in zip(ours, raw, strict=True)],
        "<=",
        1.5,
        ours_ms=summary([x * 1e3 for x in ours]),
        baseline_ms=summary([x * 1e3 for x in raw]),
    )


def bench_reference(plan: Plan, workdir: Path) -> list[dict[str, Any]]:
    """Figures against the reference server with its generated data set."""
    figures: list[dict[str, Any]] = []
    log(f"building the reference data set ({plan.runs} runs, {plan.checkpoints} checkpoints)")
    args = [
        "bench/ref_server.py",
        "--dir",
        str(workdir / "server"),
        "--runs",
        str(plan.runs),
        "--checkpoints",
        str(plan.checkpoints),
        "--download-bytes",
        str(plan.download_bytes),
    ]
    with child_server(args) as info:
        base, key = info["base_url"], info["api_key"]
        log(f"reference server up (data built in {info['build_seconds']} s)")

        ours_p, raw_p = [], []
        for rep in range(plan.page_repeats):
            log(f"pagination, repeat {rep + 1}/{plan.page_repeats}")
            raw_p.append(w.raw_pages(base, key, plan.page_size))
            ours_p.append(w.ours_pages(base, key, plan.page_size))
        for s in [*ours_p, *raw_p]:
            if s.calls != plan.checkpoints:
                raise RuntimeError(f"paged {s.calls} checkpoints, not {plan.checkpoints}")
        figures.append(
            figure(
                "pagination",
                "pagination",
                [o.seconds / r.seconds for o, r in zip(ours_p, raw_p, strict=True)],
                "<=",
                1.2,
                **seconds(ours_p, raw_p),
            )
        )

        log("deep page")
        deep_offset = plan.checkpoints - plan.page_size
        deep, shallow = [], []
        for _ in range(plan.deep_repeats):
            shallow += w.page_latency(base, key, 0, plan.page_size, 1)
            deep += w.page_latency(base, key, deep_offset, plan.page_size, 1)
        figures.append(
            figure(
                "deep_page",
                "deep page",
                [statistics.median(deep) / statistics.median(shallow)],
                "<=",
                3,
                deep_ms=summary([x * 1e3 for x in deep]),
                first_ms=summary([x * 1e3 for x in shallow]),
                offset=deep_offset,
            )
        )

        log("server: get_training_run against healthz, concurrent clients")
        run_path, health = RUN_PATH.format(info["run_id"]), "/api/v1/healthz"
        ratios, runs_s, health_s = [], [], []
        for _ in range(plan.server_repeats):
            h = w.server_throughput(base, key, health, plan.server_calls, plan.server_clients)
            r = w.server_throughput(base, key, run_path, plan.server_calls, plan.server_clients)
            ratios.append(r.throughput / h.throughput)
            runs_s.append(r.throughput)
            health_s.append(h.throughput)
        figures.append(
            figure(
                "server",
                "server",
                ratios,
                ">=",
                0.5,
                ours_per_s=summary(runs_s),
                baseline_per_s=summary(health_s),
                clients=plan.server_clients,
            )
        )

        figures.append(bench_download(plan, info, workdir))
    return figures


def bench_download(plan: Plan, info: dict[str, Any], workdir: Path) -> dict[str, Any]:
    log("download: building the archive")
    target = workdir / "downloads"

    def run(mode: str) -> dict[str, Any]:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        args = [
            sys.executable,
            str(HERE / "download_child.py"),
            mode,
            info["base_url"],
            info["download_key"],
            info["download_path"],
            str(target),
        ]
        out = subprocess.run(args, check=True, capture_output=True, text=True, env=INSTALLED).stdout
        result: dict[str, Any] = json.loads(out.splitlines()[-1])
        shutil.rmtree(target, ignore_errors=True)
        if result["bytes"] < plan.download_bytes:
            raise RuntimeError(f"{mode} downloaded {result['bytes']} bytes")
        return result

    run("raw")  # builds the archive and warms the page cache
    results: dict[str, list[dict[str, Any]]] = {"raw": [], "ours": [], "ours-extract": []}
    for rep in range(plan.download_repeats):
        log(f"download, repeat {rep + 1}/{plan.download_repeats}")
        # Taking turns at going first, so that neither always follows a 1 GiB write.
        for mode in ("raw", "ours") if rep % 2 == 0 else ("ours", "raw"):
            results[mode].append(run(mode))
        if rep == 0:  # extracting is slow; once is enough
            results["ours-extract"].append(run("ours-extract"))
    size = plan.download_bytes
    thr = {m: [size / r["seconds"] / 2**20 for r in rs] for m, rs in results.items()}
    rss = {m: [r["maxrss_mib"] for r in rs] for m, rs in results.items()}
    fig = figure(
        "download",
        "download",
        [o / r for o, r in zip(thr["ours"], thr["raw"], strict=True)],
        ">=",
        0.9,
        ours_mib_s=summary(thr["ours"]),
        baseline_mib_s=summary(thr["raw"]),
        extract_mib_s=summary(thr["ours-extract"]),
        peak_rss_mib=summary(rss["ours"]),
        peak_rss_extract_mib=summary(rss["ours-extract"]),
        baseline_peak_rss_mib=summary(rss["raw"]),
        idle_rss_mib=summary([r["idle_rss_mib"] for r in results["ours"]]),
        rss_target="<= 80",
        bytes=size,
    )
    worst_rss = max(rss["ours"] + rss["ours-extract"])
    fig["rss_met"] = worst_rss <= 80
    fig["met"] = fig["met"] and fig["rss_met"]
    return fig


# --- output ---------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:.2f}"


def detail(f: dict[str, Any]) -> str:
    """A short 'ours vs baseline' in natural units."""
    k = f["key"].removesuffix("_loop")
    if k == "sequential_latency":
        return f"{f['ours_ms']['median']:.3f} ms vs {f['baseline_ms']['median']:.3f} ms"
    if k in ("concurrent_throughput", "async_path", "far_service"):
        return f"{f['ours_per_s']['median']:.0f}/s vs {f['baseline_per_s']['median']:.0f}/s"
    if k == "prune":
        return (
            f"{f['ours_s']['median']:.2f} s vs {f['baseline_s']['median']:.2f} s "
            f"({f['ours_per_s']['median']:.0f}/s vs {f['baseline_per_s']['median']:.0f}/s), "
            f"listing {f['ours_list_s']['median']:.2f} s vs {f['baseline_list_s']['median']:.2f} s"
        )
    if k == "no_collapse":
        a, b = f["in_flight_64_per_s"]["median"], f["in_flight_1_per_s"]["median"]
        return f"{a:.0f}/s vs {b:.0f}/s"
    if k == "client_cpu":
        return f"{f['ours_us']['median']:.0f} µs vs {f['baseline_us']['median']:.0f} µs"
    if k == "import":
        return f"{f['ours_ms']['median']:.0f} ms vs {f['baseline_ms']['median']:.0f} ms"
    if k == "pagination":
        return f"{f['ours_s']['median']:.1f} s vs {f['baseline_s']['median']:.1f} s"
    if k == "deep_page":
        return f"{f['deep_ms']['median']:.0f} ms vs {f['first_ms']['median']:.0f} ms"
    if k == "download":
        return (
            f"{f['ours_mib_s']['median']:.0f} vs {f['baseline_mib_s']['median']:.0f} MiB/s; "
            f"peak RSS {f['peak_rss_mib']['max']:.0f} MiB "
            f"({f['peak_rss_extract_mib']['max']:.0f} extracting)"
        )
    if k == "server":
        return f"{f['ours_per_s']['median']:.0f}/s vs {f['baseline_per_s']['median']:.0f}/s"
    return str(f.get("text", ""))


def table(figures: list[dict[str, Any]]) -> str:
    lines = [
        "| figure | ratio (median) | spread (min-max) | ours vs baseline | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        spread = f"{fmt(f['min'])}-{fmt(f['max'])} (n={len(f['repeats'])})"
        target = f["target"] + (", peak RSS <= 80 MiB" if f["key"] == "download" else "")
        met = "yes" if f["met"] else "**no**"
        row = [f["figure"], fmt(f["median"]), spread, detail(f), target, met]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def sweep_table(extra: dict[str, Any]) -> str:
    sweep = extra.get("max_in_flight_sweep")
    if not sweep:
        return ""
    lines = [
        "| max_in_flight | calls/s, 64 submitted | vs one raw httpx.Client loop just before |",
        "|---|---|---|",
    ]
    for m, s in sweep["per_s"].items():
        r = sweep["ratio_to_raw_loop"][m]
        lines.append(f"| {m} | {s['median']:.0f} | {r['median']:.2f} |")
    return "\n".join(lines)


def layers_table(extra: dict[str, Any]) -> str:
    layers = extra.get("layers_cpu_us_per_call")
    if not layers:
        return ""
    lines = ["| layer | client CPU per call (median) |", "|---|---|"]
    lines += [f"| {name} | {s['median']:.0f} µs |" for name, s in layers.items()]
    return "\n".join(lines)


def render(result: dict[str, Any]) -> str:
    """The tables of a result, as markdown."""
    machine = result["machine"]
    text = (
        f"Measured with `{result['command']}` on {result['date'][:10]}: Python "
        f"{machine['python']}, {machine['cpus']} CPUs, client and servers on one machine "
        f"({result['seconds']:.0f} s). Each figure is the median over repeats of a ratio "
        "against a baseline measured in the same run against the same server.\n\n"
    )
    text += table(result["figures"])
    if result.get("loop_design_figures"):
        text += "\n\nDesign (b), one event-loop thread driving httpx.AsyncClient:\n\n"
        text += table(result["loop_design_figures"])
    if result.get("extra", {}).get("layers_cpu_us_per_call"):
        text += "\n\nWhere a call's CPU goes: one GET of the canned run and its JSON decode, "
        text += "sequential, through each layer:\n\n"
        text += layers_table(result["extra"])
    if result.get("extra", {}).get("max_in_flight_sweep"):
        text += "\n\nmax_in_flight sweep, 64 futures submitted at a time:\n\n"
        text += sweep_table(result["extra"])
    if result.get("engines"):
        text += "\n\n" + engines_table(result["engines"])
    return text + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks of tinker-rest against raw httpx.")
    parser.add_argument("--smoke", action="store_true", help="tiny counts: checks the harness")
    parser.add_argument("--out", type=Path, help="the JSON file to write")
    parser.add_argument(
        "--only",
        choices=("fast", "far", "prune", "import", "reference"),
        action="append",
        help="run only these parts (repeatable)",
    )
    parser.add_argument("--render", type=Path, help="only print the tables of this JSON file")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text())), end="")
        return 0
    plan = SMOKE if args.smoke else Plan()
    parts = args.only or ["fast", "far", "prune", "import", "reference"]
    began = time.perf_counter()
    figures: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    engines_result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tinker-bench-") as tmp:
        if "fast" in parts:
            fast, extra = bench_fast(plan)
            figures += fast
        if "far" in parts:
            far_figure, engines_result = bench_far(plan)
            figures.append(far_figure)
        if "prune" in parts:
            figures.append(bench_prune(plan))
        if "import" in parts:
            figures.append(bench_import(plan))
        if "reference" in parts:
            figures += bench_reference(plan, Path(tmp))
            from bench import mix  # the write tail under a 70/30 read/write mix

            figures.append(mix.bench_mix(Path(tmp), seconds=3 if args.smoke else 60))
    order = [
        "sequential_latency",
        "concurrent_throughput",
        "async_path",
        "no_collapse",
        "client_cpu",
        "far_service",
        "prune",
        "import",
        "pagination",
        "deep_page",
        "download",
        "server",
        "write_tail",
    ]
    main_figures = sorted(
        (f for f in figures if "design" not in f), key=lambda f: order.index(f["key"])
    )
    loop_figures = [f for f in figures if f.get("design") == "loop"]
    elapsed = time.perf_counter() - began
    command = ".venv/bin/python scripts/bench.py" + (" --smoke" if args.smoke else "")
    command += "".join(f" --only {part}" for part in args.only or ())
    result = {
        "command": command,
        "smoke": args.smoke,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "plan": dataclasses.asdict(plan),
        "seconds": round(elapsed, 1),
        "figures": main_figures,
        "loop_design_figures": loop_figures,
        "extra": extra,
        "engines": engines_result,
    }
    out = args.out or REPO / "bench-results" / ("smoke.json" if args.smoke else "bench.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    text = render(result)
    out.with_suffix(".md").write_text(text)
    print(text)
    print(f"\n{command}: {elapsed:.0f} s; JSON in {out}, tables in {out.with_suffix('.md')}")
    return 0
