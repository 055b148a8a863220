"""The typed tree a filter parses to (comparisons joined by And, Or, Not), and the error for refused text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Union

from service.domain.filtering.fields import FieldSpec


class FilterError(ValueError):
    """Refused text; `position` is 1-based, `token` the offending text."""

    def __init__(self, position: int, token: str, message: str) -> None:
        self.position, self.token, self.message = position, token, message
        super().__init__(f"at position {position} ({token!r}): {message}")


@dataclass(frozen=True, slots=True)
class DayRange:
    """A calendar date compared with a timestamp: [start, end) in UTC."""

    start: datetime
    end: datetime


Value = Union[str, Decimal, datetime, DayRange, None]  # noqa: UP007 - used at runtime


@dataclass(frozen=True, slots=True)
class Comparison:
    field: FieldSpec
    op: str  # one of = != < <= > >= ~   (':' is normalised to '~' on text, '=' elsewhere)
    value: Value
    metadata_key: str = ""


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Union[Comparison, And, Or, Not]  # noqa: UP007 - used at runtime
