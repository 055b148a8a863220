"""EN 16931 VAT category rules as they apply to one taxation item or one allowance/charge. Pure.

Per category (UNCL5305 subset) the rate a line or an allowance/charge may carry (BR-x-5 for lines,
BR-x-6/7 for document allowances and charges) and whether an exemption reason is required or refused
(BR-x-10, stated for the breakdown; applied here to each item so the breakdown inherits it):

    S  rate > 0          no reason          Z  rate = 0   no reason
    E  rate = 0          reason required    AE rate = 0   reason required
    K  rate = 0          reason required    G  rate = 0   reason required
    O  no rate at all    reason required    L  rate > 0      no reason
    M  rate >= 0         no reason

Zero-rated and exempt categories (Z, E, AE, K, G, O) carry no tax: a tax_amount sent with them must be 0.
A reason is the text or the VATEX code (at least one). An item without a category is checked by none of
these rules (the behaviour before categories existed); its breakdown group is its tax_code or name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from service.domain.errors import Violations
from service.domain.models import TaxCategory

_VATEX = re.compile(r"VATEX-[A-Z]{2}(-[A-Z0-9]+)+")
MAX_VATEX = 40


@dataclass(frozen=True, slots=True)
class CategoryRule:
    name: str
    rule: str  # the EN 16931 rule family, e.g. "BR-IC"
    rate: str  # "positive", "zero", "none" or "non_negative"
    reason_required: bool

    @property
    def untaxed(self) -> bool:
        return self.rate in ("zero", "none")


RULES = {
    TaxCategory.S: CategoryRule("standard rate", "BR-S", "positive", False),
    TaxCategory.Z: CategoryRule("zero rated", "BR-Z", "zero", False),
    TaxCategory.E: CategoryRule("exempt", "BR-E", "zero", True),
    TaxCategory.AE: CategoryRule("reverse charge", "BR-AE", "zero", True),
    TaxCategory.K: CategoryRule("intra-community supply", "BR-IC", "zero", True),
    TaxCategory.G: CategoryRule("export outside the EU", "BR-G", "zero", True),
    TaxCategory.O: CategoryRule("outside the scope of VAT", "BR-O", "none", True),
    # The CEN rules name these BR-AF (IGIC) and BR-AG (IPSI); IGIC lines need a rate above 0 (BR-AF-05).
    TaxCategory.L: CategoryRule("Canary Islands IGIC", "BR-AF", "positive", False),
    TaxCategory.M: CategoryRule("Ceuta and Melilla IPSI", "BR-AG", "non_negative", False),
}
_RATE_WANTED = {
    "positive": "a tax_rate above 0",
    "zero": "tax_rate 0",
    "none": "no tax_rate",
    "non_negative": "a tax_rate of 0 or more",
}


def _rate_ok(kind: str, rate: Decimal | None) -> bool:
    if kind == "none":
        return rate is None
    if rate is None:
        return False
    return rate > 0 if kind == "positive" else rate == 0 if kind == "zero" else rate >= 0


@dataclass(frozen=True, slots=True)
class Taxed:
    """What the rules look at: a taxation item, or an allowance/charge (which has no reason of its own)."""

    category: TaxCategory | None
    rate: Decimal | None
    tax_amount: Decimal | None = None
    reason: str = ""
    reason_code: str = ""
    has_reason_fields: bool = True  # False for an allowance/charge: the reason rules do not apply
    rate_rule_number: str = "5"  # BR-x-5 for a line; 6 (allowance) or 7 (charge) at document level


def check_exemption_code(v: Violations, path: str, code: str) -> None:
    if code and (len(code) > MAX_VATEX or not _VATEX.fullmatch(code)):
        v.add(path, f"must be a VATEX code such as VATEX-EU-AE or VATEX-EU-79-C; got {code!r}")


def check_category(v: Violations, path: str, t: Taxed) -> None:
    """The rules of `t`'s category; each violation names the field of `path` at fault and the EN rule."""
    if t.category is None:
        return
    rule = RULES[t.category]
    label = f"category {t.category.value} ({rule.name})"
    wanted = _RATE_WANTED[rule.rate]
    if not _rate_ok(rule.rate, t.rate):
        got = "none" if t.rate is None else f"{t.rate:f}"
        v.add(f"{path}.tax_rate", f"{label} needs {wanted}; got {got} (EN 16931 {rule.rule}-{t.rate_rule_number})")
    if rule.untaxed and t.tax_amount is not None and t.tax_amount != 0:
        v.add(f"{path}.tax_amount", f"{label} carries no tax: must be 0; got {t.tax_amount:f}")
    if not t.has_reason_fields:
        return
    has_reason = bool(t.reason or t.reason_code)
    if rule.reason_required and not has_reason:
        v.add(
            f"{path}.exemption_reason",
            f"{label} needs an exemption_reason or exemption_reason_code (EN 16931 {rule.rule}-10)",
        )
    elif not rule.reason_required and has_reason:
        field = "exemption_reason" if t.reason else "exemption_reason_code"
        v.add(f"{path}.{field}", f"{label} must not carry an exemption reason (EN 16931 {rule.rule}-10)")
