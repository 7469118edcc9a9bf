"""The ``tvc`` command line: thin wrappers over the library's public functions."""

from .app import app, main

__all__ = ["app", "main"]
