"""The parties of an invoice and how it is paid (EN 16931 BG-4 seller, BG-7 buyer, BG-13 delivery, BG-16
payment instructions): plain values, their validation (ISO 3166-1 countries, IBAN mod-97, BIC) and their
JSON form for storage. Pure."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from service.domain.errors import Violations
from service.domain.values import check_text, shown

# ISO 3166-1 alpha-2: the 249 officially assigned codes.
_ASSIGNED = """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY
BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK
FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR
IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES = frozenset(_ASSIGNED.split())
# VAT ids carry their country as prefix; Greece uses EL, and XI is Northern Ireland (EU VIES).
_VAT_PREFIXES = COUNTRIES | {"EL", "XI"}
MAX_ADDRESS_LINES = 3
MAX_TAX_REGISTRATIONS = 5
_IBAN = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")
_BIC = re.compile(r"^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,30}$")
_VAT_ID = re.compile(r"^[A-Z]{2}[A-Z0-9+*.]{2,13}$")


class PaymentReferenceRule(StrEnum):
    INVOICE_NUMBER = "INVOICE_NUMBER"
    CUSTOMER_ID = "CUSTOMER_ID"


@dataclass(slots=True)
class PostalAddress:
    address_lines: list[str] = field(default_factory=list)
    city: str = ""
    postal_code: str = ""
    country_subdivision: str = ""
    country_code: str = ""


@dataclass(slots=True)
class TaxRegistration:
    scheme: str = ""
    id: str = ""


@dataclass(slots=True)
class Contact:
    name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(slots=True)
class Party:
    name: str = ""
    trading_name: str = ""
    address: PostalAddress | None = None
    tax_registrations: list[TaxRegistration] = field(default_factory=list)
    legal_registration_id: str = ""
    contact: Contact | None = None


@dataclass(slots=True)
class PaymentTerms:
    net_days: int = 0
    text: str = ""


@dataclass(slots=True)
class PaymentMeans:
    iban: str = ""
    bic: str = ""
    account_number: str = ""
    routing_code: str = ""
    account_name: str = ""
    bank_name: str = ""
    payment_reference_rule: PaymentReferenceRule | None = None
    payment_reference: str = ""  # on an invoice: the rule applied to it


@dataclass(slots=True)
class Delivery:
    name: str = ""
    address: PostalAddress | None = None
    delivery_date: date | None = None


# -- validation ---------------------------------------------------------------------------------


def normalize_iban(raw: str) -> str:
    return raw.replace(" ", "").upper()


def iban_problem(iban: str) -> str:
    """Why `iban` (normalized) is no IBAN (ISO 13616), or "": country, check digits, length, mod 97 = 1."""
    if not _IBAN.fullmatch(iban):
        return "must be 2 letters, 2 check digits and 11 to 30 letters or digits"
    if iban[:2] not in COUNTRIES:
        return f"{iban[:2]!r} is not an ISO 3166-1 country code"
    moved = iban[4:] + iban[:4]
    if int("".join(str(int(ch, 36)) for ch in moved)) % 97 != 1:
        return "fails its mod-97 check digits"
    return ""


def check_country(v: Violations, path: str, raw: str, *, required: bool = False) -> str:
    if raw == "":
        if required:
            v.add(path, "is required (ISO 3166-1 alpha-2, e.g. DE)")
        return raw
    if raw not in COUNTRIES:
        v.add(path, f"must be an ISO 3166-1 alpha-2 country code in capitals such as DE; got {shown(raw)}")
    return raw


def check_email(v: Violations, path: str, raw: str) -> None:
    local, at, domain = raw.rpartition("@")
    if raw and (not at or not local or "." not in domain or any(c.isspace() or c in '<>,;"()[]\\' for c in raw)):
        v.add(path, f"is not an e-mail address: {shown(raw)}")


def check_address(v: Violations, path: str, a: PostalAddress | None) -> None:
    if a is None:
        return
    if len(a.address_lines) > MAX_ADDRESS_LINES:
        v.add(f"{path}.address_lines", f"at most {MAX_ADDRESS_LINES} lines; got {len(a.address_lines)}")
    for i, line in enumerate(a.address_lines):
        check_text(v, f"{path}.address_lines[{i}]", line)
    for name in ("city", "postal_code", "country_subdivision"):
        check_text(v, f"{path}.{name}", getattr(a, name))
    anything = a.address_lines or a.city or a.postal_code or a.country_subdivision
    check_country(v, f"{path}.country_code", a.country_code, required=bool(anything))


def check_tax_registrations(v: Violations, path: str, regs: list[TaxRegistration]) -> None:
    if len(regs) > MAX_TAX_REGISTRATIONS:
        v.add(path, f"at most {MAX_TAX_REGISTRATIONS}; got {len(regs)}")
    for i, t in enumerate(regs):
        check_text(v, f"{path}[{i}].scheme", t.scheme, limit=20, required=True)
        check_text(v, f"{path}[{i}].id", t.id, limit=50, required=True)
        if t.scheme.upper() == "VAT" and t.id and not (_VAT_ID.fullmatch(t.id) and t.id[:2] in _VAT_PREFIXES):
            v.add(
                f"{path}[{i}].id",
                f"a VAT id is its country prefix and 2-13 characters, e.g. DE123456789; got {shown(t.id)}",
            )


def check_contact(v: Violations, path: str, c: Contact | None) -> None:
    if c is None:
        return
    check_text(v, f"{path}.name", c.name)
    check_email(v, f"{path}.email", c.email)
    if c.phone and not _PHONE.fullmatch(c.phone):
        v.add(f"{path}.phone", f"must be digits with + - ( ) . or spaces; got {shown(c.phone)}")


def check_party(v: Violations, path: str, p: Party | None) -> None:
    """A party: a name once anything is set, a valid address, tax ids and contact."""
    if p is None:
        return
    check_text(v, f"{path}.name", p.name, required=True)
    check_text(v, f"{path}.trading_name", p.trading_name)
    check_text(v, f"{path}.legal_registration_id", p.legal_registration_id, limit=50)
    check_address(v, f"{path}.address", p.address)
    check_tax_registrations(v, f"{path}.tax_registrations", p.tax_registrations)
    check_contact(v, f"{path}.contact", p.contact)


def check_payment_terms(v: Violations, path: str, t: PaymentTerms | None) -> None:
    if t is None:
        return
    if not 0 <= t.net_days <= 3650:
        v.add(f"{path}.net_days", f"must be 0 to 3650 days; got {t.net_days}")
    check_text(v, f"{path}.text", t.text, limit=1000)


def check_payment_means(v: Violations, path: str, m: PaymentMeans | None) -> None:
    """An IBAN (mod-97) with an optional BIC, or an account number with its routing or sort code."""
    if m is None:
        return
    m.iban, m.bic = normalize_iban(m.iban), m.bic.replace(" ", "").upper()
    if m.iban and (problem := iban_problem(m.iban)):
        v.add(f"{path}.iban", f"{problem}; got {shown(m.iban)}")
    if m.bic and not (_BIC.fullmatch(m.bic) and m.bic[4:6] in COUNTRIES):
        v.add(f"{path}.bic", f"must be a BIC of 8 or 11 characters, e.g. DEUTDEFF; got {shown(m.bic)}")
    for name in ("account_number", "routing_code"):
        value = getattr(m, name)
        check_text(v, f"{path}.{name}", value, limit=34)
        if value and not re.fullmatch(r"[A-Za-z0-9 -]+", value):
            v.add(f"{path}.{name}", f"must be letters, digits, spaces or '-'; got {shown(value)}")
    if m.account_number and not m.routing_code:
        v.add(f"{path}.routing_code", "is required with account_number (routing number or sort code)")
    if m.iban and m.account_number:
        v.add(f"{path}.account_number", "give either iban or account_number, not both")
    for name in ("account_name", "bank_name"):
        check_text(v, f"{path}.{name}", getattr(m, name))


def check_delivery(v: Violations, path: str, d: Delivery | None) -> None:
    if d is None:
        return
    check_text(v, f"{path}.name", d.name)
    check_address(v, f"{path}.address", d.address)


def payment_reference(rule: PaymentReferenceRule | None, invoice_number: str, customer_id: str) -> str:
    return customer_id if rule is PaymentReferenceRule.CUSTOMER_ID else invoice_number


# -- JSON form (storage) --------------------------------------------------------------------------


def to_json(value: Any) -> dict[str, Any] | None:
    """A party, terms, means or delivery as a JSON object (None stays None)."""
    if value is None:
        return None
    out = asdict(value)
    if isinstance(value, Delivery):
        out["delivery_date"] = value.delivery_date.isoformat() if value.delivery_date else None
    return out


def _address(d: dict[str, Any] | None) -> PostalAddress | None:
    return None if d is None else PostalAddress(**d)


def party_from_json(d: dict[str, Any] | None) -> Party | None:
    if d is None:
        return None
    return Party(
        name=d.get("name", ""),
        trading_name=d.get("trading_name", ""),
        address=_address(d.get("address")),
        tax_registrations=[TaxRegistration(**t) for t in d.get("tax_registrations", [])],
        legal_registration_id=d.get("legal_registration_id", ""),
        contact=None if d.get("contact") is None else Contact(**d["contact"]),
    )


def terms_from_json(d: dict[str, Any] | None) -> PaymentTerms | None:
    return None if d is None else PaymentTerms(**d)


def means_from_json(d: dict[str, Any] | None) -> PaymentMeans | None:
    if d is None:
        return None
    rule = d.get("payment_reference_rule")
    return PaymentMeans(**{**d, "payment_reference_rule": PaymentReferenceRule(rule) if rule else None})


def delivery_from_json(d: dict[str, Any] | None) -> Delivery | None:
    if d is None:
        return None
    when = d.get("delivery_date")
    return Delivery(d.get("name", ""), _address(d.get("address")), date.fromisoformat(when) if when else None)
