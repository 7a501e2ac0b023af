"""Workers that start late: a server that will have several workers must not let the
first one to start take every ready connection for itself.

Seen in CI: the first pair of /burn requests in test_concurrency missed its rendezvous.
The first worker, started alone, took both connections' events in one batch (as a lone
worker does) and ran the first handler, which waited for the second; the second worker
started a moment later and found nothing to do. These tests run the server in this
process so that they can start the second worker exactly when it matters.
"""
import socket
import threading
import time

from karak import Karak

HOST = "127.0.0.1"


def build_app():
    app = Karak()
    entered = threading.Event()
    meet = threading.Barrier(2, timeout=3)

    @app.get("/hold")
    def hold() -> dict:
        time.sleep(0.3)
        return {"held": True}

    @app.get("/meet")
    def meet_handler() -> dict:
        entered.set()
        try:
            meet.wait()
        except threading.BrokenBarrierError:
            return {"met": False}
        return {"met": True}

    return app, entered


def send(port: int, path: str) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    return s


def read_all(s: socket.socket) -> bytes:
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    s.close()
    return b"".join(chunks)


def test_first_worker_leaves_work_for_workers_not_yet_started():
    app, entered = build_app()
    server = app.build_server(HOST, 0, workers=2)
    port = server.port
    first = threading.Thread(target=server.serve, daemon=True)
    first.start()
    second = threading.Thread(target=server.serve, daemon=True)
    try:
        # Keep the first worker busy while two clients connect and send, so that both
        # requests are ready together when it next looks.
        holder = send(port, "/hold")
        time.sleep(0.05)
        a, b = send(port, "/meet"), send(port, "/meet")
        assert entered.wait(5), "no /meet request reached a handler"
        # One /meet is in its handler, waiting for the other. Only now does the second
        # worker start: the other /meet must still be there for it to take.
        second.start()
        replies = [read_all(a), read_all(b)]
        assert read_all(holder).startswith(b"HTTP/1.1 200")
        for r in replies:
            assert r.startswith(b"HTTP/1.1 200"), r
            assert r.endswith(b'{"met":true}'), r
    finally:
        server.stop(0.5)
        first.join(5)
        if second.is_alive():
            second.join(5)
        server.close()


def test_a_lone_worker_still_serves_every_connection():
    """With workers=1 (the default) one worker takes all ready events at once and
    answers them all."""
    app, _ = build_app()
    server = app.build_server(HOST, 0)
    worker = threading.Thread(target=server.serve, daemon=True)
    worker.start()
    try:
        holder = send(server.port, "/hold")
        time.sleep(0.05)
        socks = [send(server.port, "/hold") for _ in range(5)]
        for s in [holder, *socks]:
            assert read_all(s).endswith(b'{"held":true}')
    finally:
        server.stop(0.5)
        worker.join(5)
        server.close()


def test_a_lone_server_admits_one_serving_thread():
    """Server(workers=1) owns its connections from one thread (its epoll registrations
    are resident, not one-shot), so a second thread calling serve() is refused while
    the first serves, instead of racing it for the same connections."""
    app, _ = build_app()
    server = app.build_server(HOST, 0)
    worker = threading.Thread(target=server.serve, daemon=True)
    worker.start()
    try:
        s = send(server.port, "/hold")  # the first worker is inside serve()
        assert read_all(s).endswith(b'{"held":true}')
        refused = []

        def second():
            try:
                server.serve()  # admitted, it would serve until stop()
            except RuntimeError as e:
                refused.append(str(e))

        other = threading.Thread(target=second, daemon=True)
        other.start()
        other.join(5)
        assert refused and "workers=N" in refused[0], "a second serve() on Server(workers=1) was admitted"
        s = send(server.port, "/hold")  # and the first still serves
        assert read_all(s).endswith(b'{"held":true}')
    finally:
        server.stop(0.5)
        worker.join(5)
        server.close()
