"""Titles in the two languages every definition carries (zh_CN first, then en).

A title in a definition file is a table ``{zh_CN = "...", en = "..."}``; both
languages must be there and non-empty. Pages pick the reader's language; the
engine itself keeps both and never chooses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LANGUAGES: tuple[str, ...] = ("zh_CN", "en")
DEFAULT_LANGUAGE = "zh_CN"


def parse_titles(value: Any) -> dict[str, str]:
    """``{zh_CN: ..., en: ...}`` checked: both present, text, not blank; no other language.

    Raises ``ValueError`` saying what is wrong; the caller names the file and item.
    """
    if not isinstance(value, Mapping):
        raise ValueError(
            f'title must give every language, e.g. {{zh_CN = "...", en = "..."}}; got {value!r}'
        )
    missing = [lang for lang in LANGUAGES if not str(value.get(lang) or "").strip()]
    if missing:
        raise ValueError(
            f"title lacks {', '.join(missing)} (every title needs {', '.join(LANGUAGES)})"
        )
    unknown = sorted(set(value) - set(LANGUAGES))
    if unknown:
        raise ValueError(
            f"title has unknown language {', '.join(unknown)}; use {', '.join(LANGUAGES)}"
        )
    return {lang: str(value[lang]).strip() for lang in LANGUAGES}


def pick(titles: Mapping[str, str] | None, locale: str, fallback: str = "") -> str:
    """The title in ``locale`` (``zh`` matches ``zh_CN``), else English, else ``fallback``."""
    if not titles:
        return fallback
    if locale in titles:
        return titles[locale]
    for lang, text in titles.items():
        if lang.split("_")[0] == locale.split("_")[0]:
            return text
    return titles.get("en") or fallback
