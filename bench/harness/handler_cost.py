"""The endpoints' own work, timed outside any server: the floor under every server.

/json, /db and /cpu spend most of their time in bench/apps/common.py (building pydantic
models, the SQLite query, the loop), which is the same code in every app. Timed alone,
in a bare interpreter pinned to the server's core, it says how many requests per second
a server on that interpreter could give at most if HTTP, routing and encoding cost
nothing: 1e6 / (microseconds per call). A target that asks for more than that ceiling
cannot be met by any server running this code on this interpreter, and the report says
so next to the target.

Each interpreter runs SNIPPET in a subprocess (its own venv: Karak's 3.13t, FastAPI's
3.11), against the run's database. This host's speed for such work flips between two
levels within seconds and can stay slow for several (docs/BENCHMARKS.md), so a best of 5
taken within one second can miss its fast level altogether: one run gave 19.3 µs for
make_json() where 10.2 is usual, and a "ceiling" below what Karak had just served. So
each endpoint is timed in ROUNDS short samples (about 0.1 s each), interleaved with the
others', which spreads them over about 10 s; the driver measures before the servers and
after them, and keeps the fastest: a ceiling is the most any server could get.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

APPS = Path(__file__).resolve().parent.parent / "apps"

# endpoint key -> the expression a handler evaluates (common.py's functions)
WORK = {
    "json": "common.make_json()",
    "db": "common.query_users(conn)",
    "cpu": "common.cpu()",
}

ROUNDS = 30

SNIPPET = r"""
import json, sys, timeit
sys.path.insert(0, sys.argv[1])
import common
conn = common.get_db()
timers = {}
for key, expr in json.loads(sys.argv[2]).items():
    t = timeit.Timer(expr, globals={"common": common, "conn": conn})
    n, _ = t.autorange()  # at least 0.2 s: each sample below is about half of that
    timers[key] = (t, max(1, n // 2))
out = {key: float("inf") for key in timers}
for _ in range(int(sys.argv[3])):
    for key, (t, n) in timers.items():
        out[key] = min(out[key], t.timeit(n) / n * 1e6)
print(json.dumps(out))
"""


def measure(python: Path, cpu: str) -> dict:
    """{endpoint key: microseconds per call} on this interpreter, pinned to cpu; or
    {"error": text}. KARAK_BENCH_DB must name the run's database."""
    try:
        out = subprocess.run(
            ["taskset", "-c", cpu, str(python), "-c", SNIPPET, str(APPS), json.dumps(WORK),
             str(ROUNDS)],
            capture_output=True, text=True, timeout=300, env=dict(os.environ))
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def fastest(*measured: dict) -> dict:
    """Per endpoint, the fastest of several measure() results (errors skipped); an
    error only when every one failed."""
    good = [m for m in measured if "error" not in m]
    if not good:
        return measured[-1] if measured else {"error": "not measured"}
    keys = dict.fromkeys(k for m in good for k in m)  # in order of first appearance
    return {k: min(m[k] for m in good if k in m) for k in keys}
