#!/usr/bin/env python3
"""Karak's benchmark suite: every peer, every endpoint, one machine, one run.

    bench/setup.sh                                   # the peers' venvs (idempotent)
    ~/.cache/karak/bench/driver311/bin/python bench/run.py [--quick]

What it does, in order (docs/BENCHMARKS.md explains why):
1. records the machine, every interpreter and every peer's version;
2. for each section (single-core: servers pinned to CPU 0 and wrk to CPU 1; unpinned)
   starts every server configuration, each in its own session, and checks every
   endpoint's answer against the expected one; then endpoint by endpoint, on each
   server in turn, runs wrk once to warm up and once to measure (64 connections,
   keep-alive, no pipelining), reading the server tree's peak RSS around the
   measured run;
3. evaluates issue 4's targets, prints the tables and writes bench/results/latest.json,
   latest.md, rps.png and scaling.png.

A row is invalid when the server's answer differed from the expected one, or when wrk
saw any socket error, timeout or status >= 400. Invalid rows never count for a target.
Servers are always killed at the end, on error and on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import env, handler_cost, report, wrk  # noqa: E402
from harness.endpoints import BY_KEY, ENDPOINTS, EXPECTED_JSON, check, check_invalid_item  # noqa: E402
from harness.report import SINGLE, UNPINNED  # noqa: E402
from harness.servers import (BENCH, VENVS, Server, ServerConfig, all_configs,  # noqa: E402
                             available, machine_busy_seconds)

CONNECTIONS = 64
WRK_THREADS = 1
# (warm-up s before a row's first round, measured s per round); wrk takes whole seconds.
MODES = {"full": (3, 4), "quick": (1, 1)}
NEXT_WARMUP_S = 1  # warm-up before each later round (connections again; the server is warm)
# Measured seconds per round for endpoints whose requests take long: GET /cpu's 64
# requests in flight are half a second of work, which a 4 s window of ~500 answers
# would over- or under-count by up to an eighth.
LONG_ROWS = {"full": {"cpu": 10}, "quick": {}}

DISTURBED_CORES = 0.2  # rows where other processes used more CPU than this are noted

QUIET_SAMPLE_S = 0.25
SLOW_CPU = 0.75  # rows whose CPU probe is under this fraction of the run's best are noted
CLIENT_BOUND_CORES = 0.9  # wrk (one thread) near a full core: the row is client-bound
IDLE_CORES = 0.1  # a server using less CPU than this (over 100 ms) is idle
QUIET = {"full": (300.0, 30.0), "quick": (20.0, 3.0)}  # (total budget s, per row s)

# How many workers a server says it started: Karak's "with N workers", the seed's "(N threads)".
WORKERS_RE = re.compile(r"with (\d+) workers?\b|\((\d+) threads\)")

# Every row is measured in rounds: every server of the section once per round, in turn,
# and each server's median-req/s round is its row. The host's speed for Python work
# flips within seconds (the shared handler's own cost moved between 10 and 18 µs from
# one second to the next, docs/BENCHMARKS.md), so one window per server lets a slow
# spell decide a ratio; rounds spread every server over several spells.
ROUNDS_DEFAULT = {"full": 3, "quick": 1}
# More rounds where a target compares two rows of the same peer (the scaling target).
ROUNDS = {"full": {(UNPINNED, "cpu"): 5}, "quick": {}}

ALL = None  # every endpoint the configuration serves
# (section, server pinned?, [(config key, endpoints)])
PLAN = [
    (SINGLE, True, [
        ("karak-w1", ALL), ("karak-default", ALL), ("seed-4", ALL), ("seed-16", ALL),
        ("fastapi-1", ALL), ("granian-1", ALL), ("nginx-1", ALL)]),
    (UNPINNED, False, [
        ("karak-w1", ["cpu"]), ("karak-w2", ["cpu"]), ("karak-default", ALL),
        ("seed-4", ["cpu"]), ("seed-16", ALL),
        ("fastapi-1", ["cpu"]), ("fastapi-2", ALL),
        ("granian-1", ["cpu"]), ("granian-2", ALL),
        ("nginx-2", ALL)]),
]


def init_db(path: Path) -> None:
    """The seed's 100 users (the same rows bench/apps/common.py would create)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                     " name TEXT NOT NULL, email TEXT NOT NULL)")
        conn.executemany("INSERT INTO users (name, email) VALUES (?, ?)",
                         [(f"User {i}", f"user{i}@example.com") for i in range(100)])
        conn.commit()
    finally:
        conn.close()


def planned_runs(plan, configs, only, sections=None
                 ) -> list[tuple[str, bool, ServerConfig, list[str]]]:
    out = []
    for section, pinned, entries in plan:
        if sections and section not in sections:
            continue
        for key, eps in entries:
            cfg = configs[key]
            if only and cfg.peer not in only and cfg.key not in only:
                continue
            keys = [e.key for e in ENDPOINTS if cfg.serves(e.key) and (eps is None or e.key in eps)]
            out.append((section, pinned, cfg, keys))
    return out


def invalid_reason(res: wrk.WrkResult, mismatch: str | None) -> str:
    reasons = []
    if mismatch:
        reasons.append(f"response differs: {mismatch}")
    sock = {k: v for k, v in res.errors.items() if k != "status" and v}
    if sock:
        reasons.append("socket errors " + ", ".join(f"{k}={v}" for k, v in sock.items()))
    if res.errors.get("status"):
        reasons.append(f"{res.errors['status']} responses with status >= 400")
    if res.requests == 0:
        reasons.append("no requests completed")
    return "; ".join(reasons)


class Quiet:
    """Waits, within a budget, for other users of a shared machine to go quiet.

    Before each row the server is idle and wrk is not running, so the machine's busy
    time over a short sample is other people's. Rows still run when the budget is
    spent; each records how long it waited and the `other cores` it then measured.
    """

    def __init__(self, budget_s: float, per_row_s: float):
        self.left = budget_s
        self.per_row = per_row_s

    def wait(self, server: Server) -> tuple[float, float]:
        """(seconds waited, other cores in the last sample). The idle server's own CPU
        use (timers, polling) is not counted as other people's."""
        waited = 0.0
        while True:
            b0, s0, t0 = machine_busy_seconds(), server.cpu_seconds(), time.monotonic()
            time.sleep(QUIET_SAMPLE_S)
            dt = time.monotonic() - t0
            other = (machine_busy_seconds() - b0 - (server.cpu_seconds() - s0)) / dt
            waited += dt
            if other <= DISTURBED_CORES or self.left <= 0 or waited >= self.per_row:
                return waited, other
            time.sleep(0.5)
            waited += 0.5
            self.left -= dt + 0.5


_PROBE_BUF = bytes(65536)


def cpu_probe(seconds: float = 0.05) -> list[float]:
    """SHA-256 throughput (MB/s) on each core in turn: a yardstick for the host.

    On a virtual machine a core can get slower with no trace inside it (the host is
    busy, or throttles the VM). Probing before and after each row shows it: a row whose
    probe is well below the run's best was measured on a slower machine.
    """
    old = os.sched_getaffinity(0)
    out = []
    try:
        for cpu in sorted(old):
            os.sched_setaffinity(0, {cpu})
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                hashlib.sha256(_PROBE_BUF).digest()
                n += 1
            out.append(n * len(_PROBE_BUF) / (time.perf_counter() - t0) / 1e6)
    finally:
        os.sched_setaffinity(0, old)
    return out


def drain(server: Server, limit_s: float = 15.0) -> float:
    """Wait until the server is idle; return how long that took.

    When wrk stops, up to 64 requests are still queued in the server, which goes on
    serving them (it cannot know the client left until it writes). For GET /cpu that is
    a quarter of a second of work, which would otherwise be billed to the next run.
    """
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        c0, t0 = server.cpu_seconds(), time.monotonic()
        time.sleep(0.1)
        if (server.cpu_seconds() - c0) / (time.monotonic() - t0) < IDLE_CORES:
            break
    return time.monotonic() - start


class RowPlan:
    """How each row is measured in a mode: its rounds, warm-ups and window."""

    def __init__(self, mode: str, warmup: int | None = None, seconds: int | None = None):
        first, per_round = MODES[mode]
        self.mode = mode
        self.warmup = first if warmup is None else warmup
        self.seconds = per_round if seconds is None else seconds
        # An explicit --duration is every row's window; else long rows keep theirs.
        self.long = {} if seconds is not None else LONG_ROWS[mode]

    def rounds(self, section: str, ep_key: str) -> int:
        return ROUNDS[self.mode].get((section, ep_key), ROUNDS_DEFAULT[self.mode])

    def window(self, ep_key: str) -> int:
        return self.long.get(ep_key, self.seconds)

    def warmup_for(self, n: int) -> int:
        return self.warmup if n == 0 else min(self.warmup, NEXT_WARMUP_S)

    def estimate_s(self, runs) -> float:
        total = 0.0
        for sec, _p, _c, keys in runs:
            for key in keys:
                n = self.rounds(sec, key)
                total += (self.warmup + (n - 1) * self.warmup_for(1)
                          + n * (self.window(key) + 1.3))
        return total + len(runs) * 2.5


def measure(server: Server, section: str, ep_key: str, mismatch: str | None,
            warmup: int, seconds: int, quiet: Quiet) -> dict:
    cfg, ep = server.config, BY_KEY[ep_key]
    row = {"section": section, "server": cfg.key, "label": cfg.label, "peer": cfg.peer,
           "workers": cfg.workers, "endpoint": ep.key, "endpoint_label": ep.label,
           "pinned": server.pinned, "check": mismatch}
    url = f"http://127.0.0.1:{server.port}{ep.path}"
    post = ep.method == "POST"
    try:
        rss_reset = server.reset_peak_rss()
        wrk.run(url, post, warmup, CONNECTIONS, WRK_THREADS, server.pinned)
        row["drain_s"] = drain(server)
        row["quiet_wait_s"], row["other_cores_before"] = quiet.wait(server)
        probe_before = cpu_probe()
        busy0, srv0 = machine_busy_seconds(), server.cpu_seconds()
        self0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        res = wrk.run(url, post, seconds, CONNECTIONS, WRK_THREADS, server.pinned)
        elapsed = time.monotonic() - t0
        busy, srv = machine_busy_seconds() - busy0, server.cpu_seconds() - srv0
        self1 = resource.getrusage(resource.RUSAGE_SELF)
        mine = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
        # CPU use in cores during the measured run: the server's, wrk's, and everything
        # else on the machine (other users of a shared machine show up here).
        row["server_cores"] = srv / elapsed
        row["wrk_cores"] = res.cpu_s / elapsed
        row["other_cores"] = max(0.0, busy - srv - res.cpu_s - mine) / elapsed
        row["peak_rss_mib"] = server.peak_rss_kb() / 1024
        drain(server)  # the queued requests would compete with the probe
        row["cpu_probe_mbs"] = [min(a, b) for a, b in zip(probe_before, cpu_probe())]
        row["peak_rss_scope"] = "this row" if rss_reset else "since server start"
        row["threads"] = server.thread_count()
        if not server.alive():
            raise RuntimeError("server exited during the run:\n" + server.log_tail())
    except Exception as e:  # noqa: BLE001 - a failed row is recorded, the suite goes on
        row.update(rps=None, valid=False, error=str(e), invalid_reason=f"failed: {e}")
        return row
    row.update(rps=res.rps, requests=res.requests, duration_s=res.duration_s,
               p50_ms=res.p50_ms, p90_ms=res.p90_ms, p99_ms=res.p99_ms,
               p999_ms=res.p999_ms, max_ms=res.max_ms, errors=res.errors,
               error_total=res.error_total)
    # Robust to a shared machine: what the server did per core-second it actually got.
    cores = row["server_cores"]
    row["rps_per_server_core"] = res.rps / cores if cores > 0.05 else None
    reason = invalid_reason(res, mismatch)
    row["valid"] = not reason
    row["invalid_reason"] = reason
    return row


def start_checked(section, pinned, cfg, ep_keys, logdir, result, stack):
    """Starts cfg's server (stopped when stack closes), checks every endpoint's answer,
    and returns (server, mismatches); None when it did not start (its rows are then
    recorded as failed)."""
    tag = f"[{section}] {cfg.label}"
    server = stack.enter_context(Server(cfg, pinned, logdir))
    try:
        server.wait_ready()
    except RuntimeError as e:
        print(f"{tag}: FAILED to start: {e}", flush=True)
        for k in ep_keys:
            result["rows"].append({
                "section": section, "server": cfg.key, "label": cfg.label,
                "peer": cfg.peer, "workers": cfg.workers, "endpoint": k,
                "endpoint_label": BY_KEY[k].label, "pinned": pinned, "rps": None,
                "valid": False, "error": str(e), "invalid_reason": "server did not start"})
        return None
    m = WORKERS_RE.search(server.log_tail(50))
    if m:
        result["workers_reported"][cfg.key] = int(m.group(1) or m.group(2))
    mismatches = {}
    for e in ENDPOINTS:
        if cfg.serves(e.key):
            mismatches[e.key] = check(server.port, e)
            result["checks"].append({"section": section, "server": cfg.key,
                                     "endpoint": e.key, "ok": mismatches[e.key] is None,
                                     "detail": mismatches[e.key]})
    if cfg.serves("items-get"):
        result["invalid_item_status"][cfg.key] = check_invalid_item(server.port)
    bad = [f"{k}: {v}" for k, v in mismatches.items() if v]
    print(f"{tag}: port {server.port}, checks "
          f"{'ok' if not bad else 'MISMATCH ' + '; '.join(bad)}", flush=True)
    return server, mismatches


def print_row(cfg, row) -> None:
    if row.get("rps") is None:
        print(f"  {cfg.label:32} FAILED: {row['error'][:300]}", flush=True)
        return
    print(f"  {cfg.label:32} {row['rps']:>10,.0f} req/s  p50 {row['p50_ms']:7.2f} ms"
          f"  p99 {row['p99_ms']:8.2f} ms  err {row['error_total']:>5}"
          f"  rss {row['peak_rss_mib']:6.1f} MiB  cpu {row['server_cores']:.2f}+"
          f"{row['wrk_cores']:.2f}+{row['other_cores']:.2f}"
          f"{'' if row['valid'] else '  INVALID: ' + row['invalid_reason'][:120]}",
          flush=True)


def median_round(rows: list[dict]) -> dict:
    """One server's row from its rounds (RowPlan): the round with the median req/s, with
    every round's req/s kept in `rounds_rps`. Any invalid or failed round makes the
    row invalid (the first such round is returned): a bad round is never voted away."""
    if len(rows) == 1:
        return rows[0]
    bad = [r for r in rows if r.get("rps") is None or not r["valid"]]
    row = bad[0] if bad else sorted(rows, key=lambda r: r["rps"])[len(rows) // 2]
    return {**row, "rounds_rps": [r.get("rps") for r in rows],
            "rounds_server_cores": [r.get("server_cores") for r in rows]}


def run_section(section, pinned, entries, logdir, plan: RowPlan, quiet, result) -> None:
    """Starts every server of a section, then measures endpoint by endpoint: each
    endpoint on every server back to back, before the next endpoint. On a shared host
    whose speed drifts over minutes, a slow spell then falls on every server's row for
    an endpoint alike (the rows a ratio compares are a minute or two apart), not on
    all the rows of whichever server ran during it. Idle servers wait on their
    sockets and use no CPU meanwhile. Every server is stopped at the end, always."""
    with contextlib.ExitStack() as stack:
        up = []
        for cfg, keys in entries:
            started = start_checked(section, pinned, cfg, keys, logdir, result, stack)
            if started:
                up.append((cfg, keys, *started))
        for e in ENDPOINTS:
            todo = [(cfg, server, mismatches) for cfg, keys, server, mismatches in up
                    if e.key in keys]
            rounds = plan.rounds(section, e.key)
            measured = {cfg.key: [] for cfg, _s, _m in todo}
            for n in range(rounds):
                if todo:
                    print(f"[{section}] {e.label}"
                          f"{f' (round {n + 1} of {rounds})' if rounds > 1 else ''}", flush=True)
                for cfg, server, mismatches in todo:
                    row = measure(server, section, e.key, mismatches.get(e.key),
                                  plan.warmup_for(n), plan.window(e.key), quiet)
                    measured[cfg.key].append(row)
                    print_row(cfg, row)
            for cfg, _s, _m in todo:
                result["rows"].append(median_round(measured[cfg.key]))
        for cfg, _keys, server, _m in up:
            gil = [ln for ln in server.log_tail(200).splitlines() if ln.startswith("bench-app")]
            if gil:
                result["server_notes"][cfg.key] = gil[0]


def _rounds_words(s: dict) -> str:
    """The settings' row plan in words, for latest.md."""
    n = s.get("rounds", 1)
    words = (f"{s['warmup_s']} s warm-up then {s['duration_s']} s measured"
             if n == 1 else
             f"{n} rounds: every server of a section once per round, in turn, and each "
             f"server's row is its median-req/s round (every round's req/s is in the "
             f"last table); {s['warmup_s']} s warm-up before a row's first round and "
             f"{s['next_warmup_s']} s before each later one, {s['duration_s']} s measured "
             f"per round")
    long = s.get("long_rows_s") or {}
    if long:
        words += "; " + ", ".join(f"{BY_KEY[k].label} {v} s per round" for k, v in long.items())
    more = s.get("rounds_by_row") or {}
    if more:
        words += "; " + ", ".join(
            f"{BY_KEY[k.split('/')[1]].label} ({k.split('/')[0]}) {v} rounds"
            for k, v in more.items())
    return words


def write_outputs(result: dict, outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    servers = result["servers"]
    rows = result["rows"]
    targets = result["targets"]
    (outdir / "latest.json").write_text(json.dumps(result, indent=1) + "\n")
    result["charts"] = report.charts(result, outdir)

    m, s = result["machine"], result["settings"]
    md = [f"# Karak benchmark results ({result['mode']} run)\n",
          f"- Date: {result['date_utc']} (UTC), {result['elapsed_s'] / 60:.1f} min",
          f"- Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
          f"kernel {m['kernel']}, {m['os']}",
          f"- Load average (1/5/15 min): {', '.join(f'{x:.2f}' for x in m['loadavg_start'])} "
          f"at start, {', '.join(f'{x:.2f}' for x in m['loadavg_end'])} at the end "
          "(the machine is shared: the `other cores` column is the CPU used by everything "
          "but the server and wrk during each measured run)",
          f"- Karak commit: {result['repo']['commit']}"
          f"{' (with uncommitted changes)' if result['repo']['dirty'] else ''}",
          f"- Load: {s['wrk']}, {s['connections']} connections, {s['wrk_threads']} wrk thread, "
          f"keep-alive, no pipelining; wrk --timeout {s['timeout_s']} s",
          f"- Rows: {_rounds_words(s)}",
          "- Reproduce: `make bench` (full), or `bench/setup.sh && "
          "~/.cache/karak/bench/driver311/bin/python bench/run.py --quick`",
          "", "## Single core: requests/s (server pinned to CPU 0, wrk to CPU 1)\n",
          report.markdown_table(report.pivot(rows, SINGLE, "rps", servers)),
          "## Single core: p99 latency in ms at 64 connections\n",
          report.markdown_table(report.pivot(rows, SINGLE, "p99", servers)),
          "## Unpinned: requests/s (server and wrk share both cores)\n",
          report.markdown_table(report.pivot(rows, UNPINNED, "rps", servers)),
          "## Thread scaling: GET /cpu, unpinned\n",
          report.markdown_table(report.scaling_table(rows, servers, result["workers_reported"])),
          "## Targets (issue 4)\n",
          report.markdown_table(report.targets_table(targets)),
          "## The endpoints' own work, outside any server\n",
          "The code every app runs for these endpoints (bench/apps/common.py), timed alone "
          "in each interpreter pinned to CPU 0 (the fastest of 30 short samples per endpoint, "
          "interleaved, before the servers and again after them), and nginx's server CPU per "
          "/json answer on one core in its cheapest round: the cheapest HTTP exchange here. "
          "A server as cheap as nginx running that work on Karak's interpreter would give "
          "at most 1e6 / (work + nginx) req/s on one core (bench/harness/handler_cost.py, "
          "report.ceilings).\n",
          report.markdown_table(report.handler_cost_table(result)),
          "## Every row\n",
          report.markdown_table(report.detail_table(rows)),
          "## Configurations\n"]
    md += [f"- **{c['label']}**: {c['describe']}" for c in servers
           if any(r["server"] == c["key"] for r in rows)]
    md += ["", "## Versions\n"]
    for name, v in result["versions"].items():
        if "error" in v:
            md.append(f"- {name}: unavailable ({v['error']})")
            continue
        pk = ", ".join(f"{k} {ver}" for k, ver in v.get("packages", {}).items())
        md.append(f"- {name}: Python {v['python']}"
                  f"{' free-threaded' if v.get('free_threaded_build') else ''}"
                  f" ({v.get('base_executable', v.get('executable', '?'))}); {pk}")
    md += [f"- {k}: {v}" for k, v in result["tools"].items()]
    notes = [f"- {r['label']} {r['endpoint_label']} ({r['section']}): {r['invalid_reason']}"
             for r in rows if not r["valid"]]
    busy = [f"- {r['label']} {r['endpoint_label']} ({r['section']}): other processes used "
            f"{r['other_cores']:.2f} cores during the run" for r in rows
            if r.get("other_cores", 0) > DISTURBED_CORES]
    probes = [min(r["cpu_probe_mbs"]) for r in rows if r.get("cpu_probe_mbs")]
    best = max(probes, default=0)
    slow = [r for r in rows if r.get("cpu_probe_mbs") and min(r["cpu_probe_mbs"]) < SLOW_CPU * best]
    if slow:
        busy.append("- The CPU probe (SHA-256 on each core, before and after the row) was under "
                    "{:.0%} of the run's best ({:.0f} MB/s) in these rows, so the host was "
                    "slower then (contention or throttling outside this machine): {}".format(
                        SLOW_CPU, best, "; ".join(
                            f"{r['label']} {r['endpoint_label']} ({r['section']}, "
                            f"{min(r['cpu_probe_mbs']) / best:.0%})" for r in slow)))
    bound = [r for r in rows if r.get("wrk_cores", 0) >= CLIENT_BOUND_CORES]
    if bound:
        busy.append("- wrk used at least {:.0%} of a core in these rows, so they measure the "
                    "client's limit as much as the server's: {}".format(
                        CLIENT_BOUND_CORES, "; ".join(
                            f"{r['label']} {r['endpoint_label']} ({r['section']}, "
                            f"{r['wrk_cores']:.2f})" for r in bound)))
    md += ["", "## Notes\n"]
    md += notes or ["- Every row is valid."]
    md += busy
    md += [f"- Skipped {k}: {why}" for k, why in result["skipped"].items()]
    md += [f"- GET /items/abc (not an integer) answers: "
           + ", ".join(f"{k} {v}" for k, v in result["invalid_item_status"].items())]
    md += [f"- {v}" for v in sorted(set(result["server_notes"].values()))]
    if result["charts"]:
        md += ["", "## Charts\n"] + [f"![{c}]({c})" for c in result["charts"]]
    (outdir / "latest.md").write_text("\n".join(md) + "\n")
    # Again, now that the chart names are known.
    (outdir / "latest.json").write_text(json.dumps(result, indent=1) + "\n")


def reexec_in_driver_venv() -> None:
    """Charts need matplotlib, which lives in bench/setup.sh's driver venv, never in the
    project's. Started by another interpreter without it, hand over to that venv."""
    try:
        import matplotlib  # noqa: F401
        return
    except ImportError:
        pass
    driver = VENVS / "driver311"
    if (driver / "bin" / "python").exists() and Path(sys.prefix) != driver:
        os.execv(driver / "bin" / "python",
                 [str(driver / "bin" / "python"), str(Path(__file__).resolve()), *sys.argv[1:]])
    print("matplotlib not found (run bench/setup.sh): no charts", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short rows, same shape (< 4 min)")
    ap.add_argument("--only", default="", help="comma-separated peers or config keys "
                    "(karak, seed, fastapi, granian, nginx, karak-w1, ...)")
    ap.add_argument("--section", choices=[SINGLE, UNPINNED], action="append",
                    help="only this section (repeatable)")
    ap.add_argument("--warmup", type=int, help="warm-up seconds per row (whole seconds)")
    ap.add_argument("--duration", type=int, help="measured seconds per row (whole seconds)")
    ap.add_argument("--out", type=Path, default=BENCH / "results")
    ap.add_argument("--dry-run", action="store_true", help="print the plan and its length")
    args = ap.parse_args(argv)
    if argv is None:
        reexec_in_driver_venv()

    mode = "quick" if args.quick else "full"
    plan = RowPlan(mode, args.warmup, args.duration)
    only = {x.strip() for x in args.only.split(",") if x.strip()}

    configs = all_configs(json.dumps(EXPECTED_JSON, separators=(",", ":")))
    runs = planned_runs(PLAN, configs, only, args.section)
    n_rows = sum(len(k) for *_x, k in runs)
    n_measured = sum(plan.rounds(sec, key) for sec, _p, _c, keys in runs for key in keys)
    estimate = plan.estimate_s(runs)
    print(f"Karak benchmark, {mode}: {len(runs)} server starts, {n_rows} rows "
          f"({n_measured} measured runs), ~{estimate / 60:.1f} min", flush=True)
    if args.dry_run:
        for section, pinned, cfg, keys in runs:
            print(f"  [{section}] {cfg.key:14} {', '.join(keys)}")
        return 0

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    # Also SIGINT: a shell that starts the driver in the background ignores it by default.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_term)

    t0 = time.monotonic()
    result = {
        "schema": 1, "mode": mode,
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": env.machine(), "tools": env.tools(), "repo": env.repo(),
        "settings": {"wrk": env.tools()["wrk"].split(" [")[0], "connections": CONNECTIONS,
                     "wrk_threads": WRK_THREADS, "warmup_s": plan.warmup,
                     "next_warmup_s": plan.warmup_for(1), "duration_s": plan.seconds,
                     "long_rows_s": plan.long, "rounds": ROUNDS_DEFAULT[mode],
                     "rounds_by_row": {f"{sec}/{key}": n for (sec, key), n in ROUNDS[mode].items()},
                     "timeout_s": wrk.TIMEOUT_S, "server_cpu": "0", "client_cpu": "1"},
        "servers": [], "versions": {}, "skipped": {}, "checks": [], "rows": [],
        "invalid_item_status": {}, "server_notes": {}, "workers_reported": {},
        "targets": [], "handler_cost": {},
    }
    usable = {}
    for cfg in {c.key: c for *_x, c, _k in runs}.values():
        why = available(cfg)
        if why:
            result["skipped"][cfg.key] = why
            print(f"skipping {cfg.label}: {why}", flush=True)
            continue
        usable[cfg.key] = cfg
        if cfg.python is not None and cfg.peer not in result["versions"]:
            result["versions"][cfg.peer] = env.interpreter(cfg.python)
    result["servers"] = [
        {"key": c.key, "peer": c.peer, "label": c.label, "workers": c.workers,
         "worker_kind": c.worker_kind, "describe": c.describe}
        for c in configs.values() if c.key in usable]

    with tempfile.TemporaryDirectory(prefix="karak-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        init_db(db)
        os.environ["KARAK_BENCH_DB"] = str(db)
        quiet = Quiet(*QUIET[mode])
        cost_peers = [(peer, cfg) for peer in ("karak", "fastapi")
                      for cfg in [next((c for c in usable.values() if c.peer == peer), None)]
                      if cfg is not None]
        first_cost = {}
        try:
            # The shared handler work alone, on Karak's and FastAPI's interpreters, on the
            # servers' core (harness/handler_cost.py): the ceiling under every server.
            # Timed before the servers and after them; the fastest counts.
            for peer, cfg in cost_peers:
                print(f"timing the endpoints' own work on {peer}'s interpreter", flush=True)
                first_cost[peer] = handler_cost.measure(cfg.python, "0")
            for section, pinned in dict.fromkeys((sec, pin) for sec, pin, _c, _k in runs):
                entries = [(cfg, keys) for sec, _p, cfg, keys in runs
                           if sec == section and cfg.key in usable]
                run_section(section, pinned, entries, Path(tmp), plan, quiet, result)
            for peer, cfg in cost_peers:
                print(f"timing the endpoints' own work on {peer}'s interpreter again", flush=True)
                result["handler_cost"][peer] = handler_cost.fastest(
                    first_cost[peer], handler_cost.measure(cfg.python, "0"))
        except KeyboardInterrupt:
            print("interrupted: servers stopped, writing what was measured", flush=True)
            result["interrupted"] = True

    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["elapsed_s"] = time.monotonic() - t0
    result["targets"] = report.evaluate(result["rows"], result["handler_cost"].get("karak"))
    write_outputs(result, args.out)

    print()
    for title, table in (
            ("Single core, req/s", report.pivot(result["rows"], SINGLE, "rps", result["servers"])),
            ("Single core, p99 ms at 64 connections",
             report.pivot(result["rows"], SINGLE, "p99", result["servers"])),
            ("Unpinned, req/s", report.pivot(result["rows"], UNPINNED, "rps", result["servers"])),
            ("Thread scaling, GET /cpu, unpinned",
             report.scaling_table(result["rows"], result["servers"],
                                  result["workers_reported"])),
            ("Targets", report.targets_table(result["targets"]))):
        print(f"== {title}\n{report.text_table(table)}")
    print(f"{mode} run took {result['elapsed_s'] / 60:.1f} min; wrote {args.out}/latest.json, "
          f"latest.md{''.join(', ' + c for c in result['charts'])}")
    return 130 if result.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
