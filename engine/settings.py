"""Settings in layers: config/default.toml → RECTIFLOW_* environment variables → a mapping.

Paths in the settings are relative to the project root unless absolute.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILE = PROJECT_ROOT / "config" / "default.toml"
PREFIX = "RECTIFLOW_"


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The merged settings; nested sections are dicts (``settings['worker']['sweep_seconds']``)."""
    with DEFAULT_FILE.open("rb") as handle:
        settings: dict[str, Any] = tomllib.load(handle)
    env = os.environ if environ is None else environ
    for key, value in list(settings.items()):
        if isinstance(value, dict):
            for sub, subvalue in value.items():
                name = f"{PREFIX}{key.upper()}_{sub.upper()}"
                if name in env:
                    value[sub] = _coerce(env[name], subvalue, name)
        else:
            name = f"{PREFIX}{key.upper()}"
            if name in env:
                settings[key] = _coerce(env[name], value, name)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(settings.get(key), dict):
            settings[key].update(value)
        else:
            settings[key] = value
    return settings


def _coerce(raw: str, like: Any, name: str) -> Any:
    if isinstance(like, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{name}={raw!r}: expected true or false")
    if isinstance(like, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    return raw


def project_path(value: str | Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_ROOT / path


def audit_key(settings: Mapping[str, Any]) -> bytes | None:
    key = settings.get("audit_key") or ""
    return key.encode("utf-8") if key else None


def require_audit_key(settings: Mapping[str, Any]) -> str | None:
    """A warning to show when no audit key is set; ``ConfigError`` when ``production`` is on.

    Without a key the log's hashes are plain SHA-256: anyone who can write the
    database can recompute a consistent chain.
    """
    if audit_key(settings):
        return None
    message = (
        "NO AUDIT KEY IS SET: the transition log is hashed without a key, so anyone who can "
        "write the database can forge a consistent log. Set audit_key (RECTIFLOW_AUDIT_KEY) "
        "to a long random value kept off the database host."
    )
    if settings.get("production"):
        raise ConfigError(f"refusing to start with production = true: {message}")
    return message


def database_url(settings: Mapping[str, Any]) -> str:
    """The database URL; a relative SQLite path is taken from the project root."""
    url = str(settings["database_url"])
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(PROJECT_ROOT / url[len(prefix) :])
    return url
