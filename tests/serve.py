"""Launcher the integration tests use to serve an app: `python tests/serve.py module:attr PORT WORKERS`.

Imports `attr` (default "app") from `module` and calls
app.run(host="127.0.0.1", port=PORT, workers=WORKERS, **module.RUN_OPTIONS), which blocks
until SIGINT/SIGTERM. RUN_OPTIONS (optional) is how an app the tests share asks for other
server options, such as max_workers=1 for the deferred-write tests' one thread.
The module is found through PYTHONPATH (the harness puts tests/apps on it).
"""
import importlib
import sys


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit("usage: serve.py module:attr PORT WORKERS")
    target, port, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attr or "app")
    app.run(host="127.0.0.1", port=port, workers=workers, **getattr(module, "RUN_OPTIONS", {}))


if __name__ == "__main__":
    main()
