"""Exceptions a handler may raise to choose its response."""
from http import HTTPStatus
from typing import Any, Mapping, Optional


class HTTPException(Exception):
    """Ends the request with ``status_code`` and the body ``{"detail": detail}``.

    ``detail`` may be any JSON value; it defaults to the status's reason phrase.
    ``headers`` are sent with the response.
    """

    def __init__(
        self,
        status_code: int,
        detail: Any = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:
                detail = ""
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None
        super().__init__(status_code, detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"
