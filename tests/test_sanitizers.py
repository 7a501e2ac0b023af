"""`make test-asan` runs this suite against an extension built with ASan and UBSan. The
servers the tests start must load that build too, not the ordinary one: before this test,
the Makefile gave PYTHONPATH=build/asan (relative), each server ran in its own log
directory, and every server imported the ordinary build, so the sanitizers only ever saw
the tests that run the extension in the pytest process itself."""
import os

import pytest

import karak._karak

pytestmark = pytest.mark.skipif("libasan" not in os.environ.get("LD_PRELOAD", ""),
                                reason="only under make test-asan")


@pytest.mark.parametrize("cli", [False, True])
def test_servers_load_the_sanitized_extension(start_server, cli):
    here = os.path.realpath(karak._karak.__file__)
    assert f"{os.sep}asan{os.sep}" in here, here  # this process: the sanitized build
    srv = start_server("whoami_app:app", workers=1, cli=cli)
    served = srv.get("/extension").json()["file"]
    assert os.path.realpath(served) == here
