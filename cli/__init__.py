"""The ``rectiflow`` command line: init, demo, ticket, audit, and the commands of later issues."""

from __future__ import annotations

from cli import admin as _admin  # noqa: F401  (registers commands)
from cli import audit as _audit  # noqa: F401
from cli import backup as _backup  # noqa: F401
from cli import citizen as _citizen  # noqa: F401
from cli import extensions as _extensions  # noqa: F401
from cli import importing as _importing  # noqa: F401
from cli import report as _report  # noqa: F401
from cli import tickets as _tickets  # noqa: F401
from cli import tokens as _tokens  # noqa: F401
from cli import users as _users  # noqa: F401
from cli import worker as _worker  # noqa: F401
from cli import workflows as _workflows  # noqa: F401
from cli.main import main

__all__ = ["main"]
