"""The benchmark endpoints, written once against the API Karak and the seed share.

Karak serves this module directly; bench/apps/seed_app.py imports it under the
seed's karak 0.1.0 (its own venv) and runs the seed's server. Karak, from the
repository root:
    .venv/bin/python -m karak bench.apps.karak_app:app --host 127.0.0.1 --port 8000 --workers 1
"""

import os
import sqlite3
import sys
from typing import Annotated

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import karak  # noqa: E402
from karak import Depends, Karak, Response  # noqa: E402

import common  # noqa: E402
from common import CpuResponse, Item, JsonResponse, UserResponse  # noqa: E402

app = Karak()


@app.get("/plaintext")
def plaintext() -> Response:
    return Response.text(common.PLAINTEXT)


@app.get("/json")
def json_endpoint() -> JsonResponse:
    return common.make_json()


@app.get("/items/{id}")
def get_item(id: int, q: str, limit: int) -> dict:
    return {"id": id, "q": q, "limit": limit}


@app.post("/items")
def create_item(item: Item) -> Item:
    return item


@app.get("/db")
def db_endpoint(db: Annotated[sqlite3.Connection, Depends(common.get_db)]) -> list[UserResponse]:
    return common.query_users(db)


@app.get("/cpu")
def cpu_endpoint() -> CpuResponse:
    return common.cpu()


common.gil_report(f"karak {karak.__version__}")

if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    app.run(host=args.host, port=args.port, workers=args.workers)
