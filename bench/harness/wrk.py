"""Running wrk and reading its result.

wrk prints a human-readable table; we do not parse it. Every run loads a Lua script
whose `done()` hook prints one line `KARAK_BENCH_JSON {...}` (bench/wrk_report.lua),
and the POST script (bench/post_items.lua) loads the same hook.
"""

from __future__ import annotations

import json
import resource
import subprocess
from dataclasses import dataclass

from .servers import BENCH, CLIENT_CPU

MARKER = "KARAK_BENCH_JSON "
TIMEOUT_S = 5  # wrk --timeout: a slower response counts as an error (row invalid)


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: dict[str, int]   # connect, read, write, timeout (socket) and status (>= 400)
    cpu_s: float = 0.0       # CPU time wrk itself used (user + system)

    @property
    def error_total(self) -> int:
        return sum(self.errors.values())


def wrk_argv(url: str, script: str, seconds: int, connections: int, threads: int,
             pinned: bool) -> list[str]:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
            f"--timeout", f"{TIMEOUT_S}s", "--latency", "-s", str(BENCH / script), url]
    return (["taskset", "-c", CLIENT_CPU] + argv) if pinned else argv


def parse(output: str) -> WrkResult:
    """The result from wrk's stdout; ValueError when the JSON line is missing."""
    for line in output.splitlines():
        if line.startswith(MARKER):
            d = json.loads(line[len(MARKER):])
            break
    else:
        raise ValueError("wrk printed no KARAK_BENCH_JSON line:\n" + output[-800:])
    lat = d["latency_us"]
    duration = d["duration_us"] / 1e6
    return WrkResult(
        requests=d["requests"], duration_s=duration,
        rps=d["requests"] / duration if duration > 0 else 0.0,
        p50_ms=lat["p50"] / 1000, p90_ms=lat["p90"] / 1000, p99_ms=lat["p99"] / 1000,
        p999_ms=lat["p999"] / 1000, max_ms=lat["max"] / 1000,
        errors={k: int(v) for k, v in d["errors"].items()})


def run(url: str, post: bool, seconds: int, connections: int, threads: int,
        pinned: bool) -> WrkResult:
    """One wrk run, bounded: killed if it outlives its duration by 30 s."""
    script = "post_items.lua" if post else "wrk_report.lua"
    argv = wrk_argv(url, script, seconds, connections, threads, pinned)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    res = parse(r.stdout)
    res.cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res
