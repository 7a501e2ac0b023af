"""A client that half-closes (shutdown(SHUT_WR)) after its request and then waits before
reading its answer: the answer arrives whole, and the worker waits for the socket instead of
spinning on the half-close.

Before the fix the connection waited for "writable" with EPOLLRDHUP still asked for; the
half-close was reported again on every wait, so the worker ran at 100% of a core (2 s of
CPU in 2 s) for as long as the client did not read.
"""
import os
import socket
import time

import pytest

WAIT_SECONDS = 2.0
BODY = 16_000_000  # more than the kernel buffers both ends (tcp_wmem, tcp_rmem) hold


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("workers", [1, 2])
def test_half_closed_late_reader_gets_its_answer_without_a_spinning_worker(start_server, workers):
    srv = start_server("responses_app:app", workers=workers)
    s = socket.create_connection((srv.host, srv.port), timeout=10)
    try:
        s.sendall(f"GET /big?n={BODY} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)  # the server has filled the socket buffers and waits for them
        before = cpu_seconds(srv.process.pid)
        time.sleep(WAIT_SECONDS)
        used = cpu_seconds(srv.process.pid) - before
        got = bytearray()
        while chunk := s.recv(1 << 20):
            got += chunk
    finally:
        s.close()
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert body == b'"' + b"x" * BODY + b'"'
    # A waiting worker uses next to no CPU; a spinning one uses all of WAIT_SECONDS.
    assert used < WAIT_SECONDS / 4, f"server used {used:.2f} s of CPU while the client waited"
