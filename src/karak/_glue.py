"""Wires the C engine to the Python surface, once, at import.

What the engine calls back per request lives here only for the error path
(logging a handler's exception); everything else is pydantic-core's own C/Rust.
"""
import logging

from typing import Any

import pydantic_core
from pydantic import TypeAdapter

from . import _karak
from .exceptions import HTTPException

logger = logging.getLogger("karak")


def log_exception(exc: BaseException, request: str = "") -> None:
    """Logs an exception raised by a handler or dependency, with its traceback.

    ``request`` is the request line's method and target, e.g. ``"GET /items/1"``.
    """
    logger.error("Exception in handler for %s", request or "a request",
                 exc_info=(type(exc), exc, exc.__traceback__))


def log_warning(message: str) -> None:
    """Logs a warning of the engine's own (an exhausted resource, say), at most
    as often as the engine decides (it rate-limits its own calls)."""
    logger.warning("%s", message)


_karak._configure(
    HTTPException,
    pydantic_core.ValidationError,
    pydantic_core.to_json,
    pydantic_core.from_json,
    log_exception,
    TypeAdapter(Any).validator,
    log_warning,
)
