"""One error hierarchy for the whole engine, and the one table of what each means to a caller.

Every error says what was wrong and, where it can, what would be right. Each
class carries its ``status`` (the HTTP status every adapter answers with: the
HTML pages, the JSON API and Open311 render it in their own shape, the CLI
maps it to an exit code), so the decision is made here once. ``message_id``
and ``params``, where given, let an adapter show the refusal in the user's
language; ``message`` is the English sentence.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every refusal the engine makes on purpose."""

    code = "engine_error"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        ticket: str | None = None,
        state: str | None = None,
        details: dict[str, Any] | None = None,
        message_id: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.ticket = ticket
        self.state = state
        self.details = details or {}
        self.message_id = message_id
        self.params = params or {}

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
    status = 422

    def __init__(self, message: str, *, fields: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        if fields:
            self.details["fields"] = fields
        self.fields = fields or {}


class InvalidTransition(EngineError):
    """The trigger is not allowed from the ticket's current state."""

    code = "invalid_transition"
    status = 409


class NotPermitted(EngineError):
    """The actor's role or unit does not allow the action."""

    code = "not_permitted"
    status = 403


class Conflict(EngineError):
    """The ticket changed since the caller read it (stale version)."""

    code = "conflict"
    status = 409


class NotFound(EngineError):
    """An unknown ticket, user, campaign, unit, workflow..."""

    code = "not_found"
    status = 404


class WorkflowDefinitionError(EngineError):
    """A workflow file is malformed; the message names the file and the item."""

    code = "bad_workflow"
    status = 500


class ConfigError(EngineError):
    """A configuration file (organisation, calendar, campaign) is malformed."""

    code = "bad_config"
    status = 500


class TooManyRequests(EngineError):
    """A rate limit was reached; ``details['retry_after']`` says in how many seconds to retry."""

    code = "too_many_requests"
    status = 429


def status_for(error: BaseException) -> int:
    """The HTTP status of an engine error (500 for anything that is not one)."""
    return error.status if isinstance(error, EngineError) else 500
