"""The benchmark endpoints on the seed's pure-Python karak 0.1.0 (its API, its server).

Run: <seed313t venv>/bin/python bench/apps/seed_app.py --port 8001 --workers 4
"""

import argparse
import os
import sqlite3
import sys
from typing import Annotated

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from karak import Depends, Karak, Response  # noqa: E402  (the seed, from PyPI)

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


common.gil_report("seed")

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    app.run(host=args.host, port=args.port, workers=args.workers)
