"""Karak: a web framework for free-threaded CPython whose request path is C.

Handlers are plain functions that run in parallel on worker threads; the
engine (sockets, HTTP/1.1, routing, parameters, JSON) is the C extension
``karak._karak``.
"""
from ._karak import Request, Response
from .app import APIRouter, Karak
from .exceptions import HTTPException
from .params import Body, Cookie, Depends, Header, Path, Query

__version__ = "0.2.0.dev0"
__all__ = ["Karak", "APIRouter", "Depends", "Query", "Header", "Cookie", "Path", "Body", "Request",
           "Response",
           "HTTPException"]
