"""EN 16931 allowances and charges (issue 16) in a vendor's JSON. None of the three vendors defines them, so
an export writes them in fields named after the canonical ones, in the vendor's case (`allowanceCharges`,
line `chargeAmount`), and an import reads them back: every export re-imports, and a vendor that ignores
unknown fields still gets totals that include them. Pure."""

from __future__ import annotations

from collections.abc import Callable

from service.domain.models import AllowanceCharge, TaxCategory
from service.domain.money import HUNDRED
from service.domain.values import LONG_TEXT, ZERO
from service.vendors.fields import FieldMap, Kind
from service.vendors.shapes import ListMap, Shape


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def snake(name: str) -> str:
    return name


def allowance_charges(kind: Kind, case: Callable[[str], str] = camel) -> ListMap:
    """The invoice's allowance_charges, amounts of `kind` (JSON numbers or decimal strings), names in `case`."""
    shape = Shape(
        (
            FieldMap("charge", "charge", Kind.BOOL),
            FieldMap("amount", "amount", kind, minimum=ZERO),
            FieldMap(case("base_amount"), "base_amount", kind, minimum=ZERO),
            FieldMap("percentage", "percentage", kind, minimum=ZERO, maximum=HUNDRED),
            FieldMap("reason", "reason", Kind.TEXT, limit=LONG_TEXT),
            FieldMap(case("reason_code"), "reason_code", Kind.TEXT),
            FieldMap(case("tax_category"), "tax_category", Kind.ENUM, values={c.value: c for c in TaxCategory}),
            FieldMap(case("tax_rate"), "tax_rate", kind, minimum=ZERO),
            FieldMap(case("tax_amount"), "tax_amount", kind),  # computed again on import
        ),
        AllowanceCharge,
    )
    return ListMap(case("allowance_charges"), "allowance_charges", shape)


def line_charge(kind: Kind, case: Callable[[str], str] = camel) -> tuple[FieldMap, ...]:
    """A line's charge (EN 16931 BG-28); a zero charge is left out."""
    return (
        FieldMap(case("charge_amount"), "charge_amount", kind, minimum=ZERO, omit_zero=True),
        FieldMap(case("charge_percentage"), "charge_percentage", kind, minimum=ZERO, maximum=HUNDRED),
        FieldMap(case("charge_reason"), "charge_reason", Kind.TEXT, limit=LONG_TEXT),
        FieldMap(case("charge_reason_code"), "charge_reason_code", Kind.TEXT),
    )
