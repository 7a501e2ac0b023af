"""The endpoints' own work, timed outside any server: the floor under every server.

/json, /db and /cpu spend most of their time in bench/apps/common.py (building pydantic
models, the SQLite query, the loop), which is the same code in every app. Timed alone,
in a bare interpreter pinned to the server's core, it says how many requests per second
a server on that interpreter could give at most if HTTP, routing and encoding cost
nothing: 1e6 / (microseconds per call). A target that asks for more than that ceiling
cannot be met by any server running this code on this interpreter, and the report says
so next to the target.

Each interpreter runs SNIPPET in a subprocess (its own venv: Karak's 3.13t, FastAPI's
3.11), against the run's database. Best of 5 repeats of timeit's autorange, as
`python -m timeit` does.
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

SNIPPET = r"""
import json, sys, timeit
sys.path.insert(0, sys.argv[1])
import common
conn = common.get_db()
out = {}
for key, expr in json.loads(sys.argv[2]).items():
    t = timeit.Timer(expr, globals={"common": common, "conn": conn})
    n, _ = t.autorange()
    out[key] = min(t.repeat(5, n)) / n * 1e6
print(json.dumps(out))
"""


def measure(python: Path, cpu: str) -> dict:
    """{endpoint key: microseconds per call} on this interpreter, pinned to cpu; or
    {"error": text}. KARAK_BENCH_DB must name the run's database."""
    try:
        out = subprocess.run(
            ["taskset", "-c", cpu, str(python), "-c", SNIPPET, str(APPS), json.dumps(WORK)],
            capture_output=True, text=True, timeout=300, env=dict(os.environ))
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": str(e)}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])
