"""The seed project's own code, verbatim: the README Quick Start (tests/apps/quickstart.py) and
examples/basic.py driven by the README's exact curl commands."""
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"

# The "Development Setup" section of the seed README, verbatim (port 8000 is replaced).
README_CURLS = [
    "curl http://localhost:8000/",
    "curl http://localhost:8000/items/1",
    """curl -X POST http://localhost:8000/items -H "Content-Type: application/json" -d '{"name":"Widget","price":9.99}'""",  # noqa: E501
]


def curl(command: str, port: int):
    """Runs one README curl command line as written, against port; returns its output parsed as JSON."""
    argv = shlex.split(command.replace("localhost:8000", f"localhost:{port}"))
    assert argv[0] == "curl"
    # curl is not built with the sanitizers `make test-asan` preloads for the server.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def quickstart(server_pool):
    return server_pool.get("quickstart:app")


def test_quickstart_index(quickstart):
    r = quickstart.get("/")
    assert r.status == 200
    assert r.json() == {"message": "Hello, World!"}


def test_quickstart_get_item(quickstart):
    r = quickstart.get("/items/1")
    assert r.status == 200
    assert r.json() == {"id": 1}


def test_quickstart_get_item_validates(quickstart):
    r = quickstart.get("/items/one")
    assert r.status == 422
    assert r.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_quickstart_create_item(quickstart):
    r = quickstart.request("POST", "/items", json={"name": "Widget", "price": 9.99})
    assert r.status == 200
    assert r.json() == {"name": "Widget", "price": 9.99}


@pytest.fixture
def basic(start_server):
    return start_server("basic:app", workers=4, extra_path=[EXAMPLES_DIR])


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_basic_with_the_readme_curl_commands(basic):
    widget = {"id": 1, "name": "Widget", "price": 9.99, "quantity": 1}
    assert curl(README_CURLS[0], basic.port) == {"message": "Welcome to Karak!"}
    assert curl(README_CURLS[1], basic.port) == {"detail": "Item not found"}  # nothing created yet
    assert curl(README_CURLS[2], basic.port) == widget
    assert curl(README_CURLS[1], basic.port) == widget
    r = basic.get("/items/1")
    assert r.status == 200
    assert r.json() == widget


def test_basic_startup_hook_ran(basic):
    assert basic.wait_for_output("Application starting up...", stream="stdout"), basic.tail()


def test_basic_other_routes(basic):
    assert basic.get("/health").json() == {"status": "healthy"}
    assert basic.get("/items").json() == []
    for name, price in (("a", 1.0), ("b", 2.5)):
        assert basic.request("POST", "/items", json={"name": name, "price": price, "quantity": 3}).status == 200
    assert basic.get("/items").json() == [
        {"id": 1, "name": "a", "price": 1.0, "quantity": 3},
        {"id": 2, "name": "b", "price": 2.5, "quantity": 3},
    ]
    r = basic.request("DELETE", "/items/1")
    assert r.status == 204
    assert r.body == b""
    r = basic.request("DELETE", "/items/1")
    assert r.status == 404
    assert r.json() == {"detail": "Item not found"}
    assert basic.get("/items/1").status == 404
    assert basic.get("/items").json() == [{"id": 2, "name": "b", "price": 2.5, "quantity": 3}]
    r = basic.request("POST", "/items", json={"name": "no price"})
    assert r.status == 422
    assert r.json()["detail"][0]["loc"] == ["body", "price"]
