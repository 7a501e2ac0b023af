"""Routes for tests/test_sanitizers.py: which extension module the server process loaded."""
import karak._karak

from karak import Karak

app = Karak()


@app.get("/extension")
def extension() -> dict:
    return {"file": karak._karak.__file__}
