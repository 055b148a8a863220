"""order_by text to sort keys: `due_date desc, total_amount` or Codat's `-modifiedDate`. Pure."""

from __future__ import annotations

from service.domain.filtering.fields import FIELDS, FieldSpec, Kind
from service.domain.filtering.tree import FilterError

MAX_ORDER_KEYS = 4
DEFAULT_ORDER: tuple[tuple[FieldSpec, bool], ...] = ((FIELDS["create_time"], True),)


def parse_order_by(
    text: str, fields: dict[str, FieldSpec] = FIELDS, default: tuple[tuple[FieldSpec, bool], ...] = DEFAULT_ORDER
) -> tuple[tuple[FieldSpec, bool], ...]:
    """`due_date desc, total_amount` or Codat's `-modifiedDate`: (field, descending) pairs."""
    if not text.strip():
        return default
    keys: list[tuple[FieldSpec, bool]] = []
    offset = 0
    for part in text.split(","):
        pos = offset + len(part) - len(part.lstrip()) + 1
        offset += len(part) + 1
        words = part.split()
        if not words:
            raise FilterError(pos, part, "empty sort key")
        desc = False
        name = words[0]
        if name.startswith("-"):
            desc, name = True, name[1:]
        if len(words) == 2 and words[1].lower() in ("asc", "desc") and not desc:
            desc = words[1].lower() == "desc"
        elif len(words) != 1:
            raise FilterError(pos, part.strip(), "a sort key is `field`, `field desc`, `field asc` or `-field`")
        spec = fields.get(name)
        if spec is None or spec.kind is Kind.ID:
            raise FilterError(pos, name, "unknown or unsortable field")
        if any(s.name == spec.name for s, _ in keys):
            raise FilterError(pos, name, "the same field twice")
        keys.append((spec, desc))
    if len(keys) > MAX_ORDER_KEYS:
        raise FilterError(1, text, f"at most {MAX_ORDER_KEYS} sort keys")
    return tuple(keys)
