"""The per-request work every benchmark app does, shared so that it is the same code.

Each app (Karak, the seed, FastAPI, bare Granian) imports this module and wraps these
functions in its own routing; nothing here knows about HTTP. The /json payload, the
/cpu loop and the /db query are the seed's own (seed benchmarks/karak_app.py).

Thread rules: the models and functions are immutable and safe to call from any
thread; `get_db` hands each thread its own SQLite connection (sqlite3 connections
must not be shared between threads without a lock).
"""

import os
import sqlite3
import threading

from pydantic import BaseModel

PLAINTEXT = "Hello, World!"

# The driver creates the database once and passes its path to every app, so all apps
# read the same rows. Run standalone, an app creates it on first use.
DB_PATH = os.environ.get("KARAK_BENCH_DB", "/tmp/karak-bench.db")


class JsonResponse(BaseModel):
    message: str
    items: list[dict[str, int]]
    nested: dict[str, dict[str, str]]


class UserResponse(BaseModel):
    id: int
    name: str
    email: str


class CpuResponse(BaseModel):
    result: int
    iterations: int


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


def make_json() -> JsonResponse:
    """The seed's /json payload, built afresh for every request as the seed does."""
    return JsonResponse(
        message="Hello, World!",
        items=[{"id": i, "value": i * 10} for i in range(20)],
        nested={
            "level1": {"level2": "deep value"},
            "another": {"key": "value"},
        },
    )


def cpu() -> CpuResponse:
    """The seed's CPU-bound loop: 100,000 iterations of pure Python arithmetic."""
    total = 0
    iterations = 100000
    for i in range(iterations):
        total += i * i
    return CpuResponse(result=total, iterations=iterations)


def init_db(path: str = DB_PATH) -> None:
    """Create (or reset) the users table with the seed's 100 rows."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS users ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " name TEXT NOT NULL,"
            " email TEXT NOT NULL)"
        )
        conn.execute("DELETE FROM users")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'users'")
        conn.executemany(
            "INSERT INTO users (name, email) VALUES (?, ?)",
            [(f"User {i}", f"user{i}@example.com") for i in range(100)],
        )
        conn.commit()
    finally:
        conn.close()


_local = threading.local()


def get_db() -> sqlite3.Connection:
    """This thread's connection to the benchmark database (one per thread, kept open)."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        if not os.path.exists(DB_PATH):
            init_db(DB_PATH)
        conn = sqlite3.connect(DB_PATH, check_same_thread=True)
        conn.row_factory = sqlite3.Row
        _local.conn = conn
    return conn


def query_users(conn: sqlite3.Connection) -> list[UserResponse]:
    """The seed's /db query: 10 rows, each turned into a pydantic model."""
    rows = conn.execute("SELECT id, name, email FROM users LIMIT 10").fetchall()
    return [UserResponse(id=row["id"], name=row["name"], email=row["email"]) for row in rows]


def gil_report(name: str) -> None:
    """Print, once at import, whether the GIL is on (the driver records it from the log)."""
    import sys

    is_enabled = getattr(sys, "_is_gil_enabled", None)
    state = "n/a" if is_enabled is None else str(is_enabled())
    print(f"bench-app {name}: python={sys.version.split()[0]} gil_enabled={state}",
          file=sys.stderr, flush=True)
