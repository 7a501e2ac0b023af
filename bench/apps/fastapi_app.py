"""The benchmark endpoints on FastAPI, in its best case: `async def` everywhere.

Every handler is `async def`, so uvicorn runs it on the event loop without a hop to
the thread pool. /db uses an `async def` dependency returning the loop thread's own
sqlite3 connection: the query takes microseconds, so blocking the loop for it is
cheaper than aiosqlite's thread hop (which the seed's FastAPI app used).

Run: <fastapi311 venv>/bin/python -m uvicorn fastapi_app:app --app-dir bench/apps \
        --host 127.0.0.1 --port 8002 --http httptools --loop uvloop --no-access-log
"""

import os
import sqlite3
import sys
from typing import Annotated

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fastapi import Depends, FastAPI  # noqa: E402
from fastapi.responses import PlainTextResponse  # noqa: E402

import common  # noqa: E402
from common import CpuResponse, Item, JsonResponse, UserResponse  # noqa: E402

app = FastAPI()


async def get_db() -> sqlite3.Connection:
    return common.get_db()


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext() -> str:
    return common.PLAINTEXT


@app.get("/json")
async def json_endpoint() -> JsonResponse:
    return common.make_json()


@app.get("/items/{id}")
async def get_item(id: int, q: str, limit: int):
    return {"id": id, "q": q, "limit": limit}


@app.post("/items")
async def create_item(item: Item) -> Item:
    return item


@app.get("/db")
async def db_endpoint(db: Annotated[sqlite3.Connection, Depends(get_db)]) -> list[UserResponse]:
    return common.query_users(db)


@app.get("/cpu")
async def cpu_endpoint() -> CpuResponse:
    return common.cpu()


common.gil_report("fastapi")
