"""The one id syntax: a UUID in its 36-character hyphenated form, any letter case, kept lower-case."""

from __future__ import annotations

import re
import uuid

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def parse_id(raw: str) -> str | None:
    """The canonical (lower-case) id `raw` spells, or None when it is not an id (then it may be a number).

    Every lookup uses this, so single-invoice and batch RPCs, filters and push operation keys accept
    exactly the same spellings."""
    return raw.lower() if _UUID.fullmatch(raw) else None


def new_id() -> str:
    """A fresh id in the canonical form."""
    return str(uuid.uuid4())
