"""A vendor object as a table (Shape: FieldMap and ListMap rows plus hooks) and the walk that reads vendor JSON
into canonical objects and writes them back. The one table drives both directions. Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.domain.errors import Violations
from service.vendors.fields import (
    MISSING,
    FieldMap,
    Kind,
    as_text,
    blank,
    read_value,
    vendor_get,
    vendor_set,
    write_value,
)
from service.vendors.json_payload import join, json_type


@dataclass(frozen=True, slots=True)
class ListMap:
    """A vendor array of objects and the canonical list it becomes, element by element."""

    vendor: str
    attr: str
    shape: Shape


ReadHook = Callable[[dict[str, Any], Any, Violations, str], None]
WriteHook = Callable[[Any, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Shape:
    """A vendor object: its table, a factory for the canonical object, and hooks run after the table."""

    fields: tuple[FieldMap | ListMap, ...]
    make: Callable[[], Any]
    read_hook: ReadHook | None = None
    write_hook: WriteHook | None = None
    hooked: tuple[FieldMap | ListMap, ...] = ()  # the hooks' own fields: not walked, listed in the model

    def every_field(self) -> tuple[FieldMap | ListMap, ...]:
        """Every vendor field the shape reads or writes, the table's and the hooks'."""
        return self.fields + self.hooked


@dataclass(frozen=True, slots=True)
class Vendor:
    name: str
    shape: Shape  # makes an Invoice
    # Domain attributes only the hooks read, and the vendor field they come from (refusals name it).
    hooked_paths: tuple[tuple[str, str], ...] = ()


# -- canonical paths ------------------------------------------------------------------------------


def _get(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else getattr(cur, part)
        if cur is None:
            return None
    return cur


def _set(obj: Any, path: str, value: Any) -> None:
    """Sets a canonical attribute; inside dicts only given values are stored, as text."""
    *parents, last = path.split(".")
    cur = obj
    for part in parents:
        if isinstance(cur, dict):
            if blank(value):
                return
            cur = cur.setdefault(part, {})
        else:
            cur = getattr(cur, part)
    if isinstance(cur, dict):
        if not blank(value):
            cur[last] = as_text(value)
    else:
        setattr(cur, last, value)


# -- shapes ---------------------------------------------------------------------------------------


def read_shape(shape: Shape, src: dict[str, Any], v: Violations, base: str) -> Any:
    obj = shape.make()
    for fm in shape.fields:
        if isinstance(fm, ListMap):
            _set(obj, fm.attr, read_list(fm, src, v, base))
            continue
        value = read_value(fm, src, v, base)
        if fm.kind is not Kind.CONSTANT and value is not None:
            _set(obj, fm.attr, value)  # left out: the factory's default stays
    if shape.read_hook is not None:
        shape.read_hook(src, obj, v, base)
    return obj


def read_list(fm: ListMap, src: dict[str, Any], v: Violations, base: str) -> list[Any]:
    path = join(base, fm.vendor)
    raw = vendor_get(src, fm.vendor, v, base)
    if raw is MISSING or raw is None:
        return []
    if not isinstance(raw, list):
        v.add(path, f"must be a JSON array; got {json_type(raw)}")
        return []
    items = []
    for i, element in enumerate(raw):
        if not isinstance(element, dict):
            v.add(f"{path}[{i}]", f"must be a JSON object; got {json_type(element)}")
            continue
        items.append(read_shape(fm.shape, element, v, f"{path}[{i}]"))
    return items


def write_shape(shape: Shape, obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fm in shape.fields:
        if isinstance(fm, ListMap):
            items = _get(obj, fm.attr) or []
            if items:
                vendor_set(out, fm.vendor, [write_shape(fm.shape, item) for item in items])
        else:
            write_value(fm, out, None if fm.kind is Kind.CONSTANT else _get(obj, fm.attr))
    if shape.write_hook is not None:
        shape.write_hook(obj, out)
    return out
