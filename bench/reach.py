"""Before a benchmark starts its processes: can it reach its database? One line if not."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from engine import db


def unreachable(url: str, *, server_only: bool = True, timeout: int = 5) -> str | None:
    """None when the server at ``url`` answers, else one line saying where and why not.

    ``server_only`` connects to the server's ``postgres`` database (for benchmarks that
    create their own database); the password is never printed.
    """
    parsed = make_url(db.normalise_url(url))
    if parsed.get_backend_name() != "postgresql":
        return None
    target = parsed.set(database="postgres") if server_only else parsed
    engine = create_engine(target, connect_args={"connect_timeout": timeout})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        shown = parsed.render_as_string(hide_password=True)
        return f"error: cannot reach the database at {shown}: {reason[:300]}"
    finally:
        engine.dispose()
    return None
