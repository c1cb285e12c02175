"""One error hierarchy for the whole engine.

Every error says what was wrong and, where it can, what would be right. The
web layer maps the class to an HTTP status in one place.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every refusal the engine makes on purpose."""

    code = "engine_error"

    def __init__(
        self,
        message: str,
        *,
        ticket: str | None = None,
        state: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.ticket = ticket
        self.state = state
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        details = dict(self.details)
        if self.ticket is not None:
            details.setdefault("ticket", self.ticket)
        if self.state is not None:
            details.setdefault("state", self.state)
        return {"code": self.code, "message": self.message, "details": details}


class ValidationError(EngineError):
    """Data is missing or malformed; ``details['fields']`` names each field."""

    code = "invalid_data"

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        if fields:
            self.details["fields"] = fields
        self.fields = fields or {}


class InvalidTransition(EngineError):
    """The trigger is not allowed from the ticket's current state."""

    code = "invalid_transition"


class NotPermitted(EngineError):
    """The actor's role or unit does not allow the action."""

    code = "not_permitted"


class Conflict(EngineError):
    """The ticket changed since the caller read it (stale version)."""

    code = "conflict"


class NotFound(EngineError):
    """An unknown ticket, user, campaign, unit, workflow..."""

    code = "not_found"


class WorkflowDefinitionError(EngineError):
    """A workflow file is malformed; the message names the file and the item."""

    code = "bad_workflow"


class ConfigError(EngineError):
    """A configuration file (organisation, calendar, campaign) is malformed."""

    code = "bad_config"
