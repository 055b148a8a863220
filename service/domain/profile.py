"""A company's profile (issue 16): who issues its invoices, how they are paid and numbered, its money
defaults and document locale; and the seller snapshot finalization takes from it. Pure."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from service.domain.errors import Aborted, FailedPrecondition, Violations
from service.domain.models import Invoice
from service.domain.money import MoneyDefaults, Rounding, TaxMode
from service.domain.parties import (
    Contact,
    Party,
    PaymentMeans,
    PaymentTerms,
    PostalAddress,
    TaxRegistration,
    check_address,
    check_contact,
    check_payment_means,
    check_payment_terms,
    check_tax_registrations,
    payment_reference,
)
from service.domain.values import check_text, parse_currency, shown

MAX_LOGO_BYTES = 256 * 1024
DEFAULT_CREDIT_NOTE_PREFIX = "CN-"
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


class EInvoiceFormat(StrEnum):
    """The EN 16931 e-invoice formats (issue 17): the two syntaxes and the Factur-X hybrid PDF (CII inside)."""

    UBL = "UBL"
    CII = "CII"
    FACTURX = "FACTURX"


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """How the numbers of one gapless sequence look: prefix, then the value zero-padded to width."""

    prefix: str
    width: int

    def format(self, value: int) -> str:
        return f"{self.prefix}{value:0{self.width}d}"

    def is_generated(self, number: str) -> bool:
        """Whether `number` has the sequence's form (those are the service's to give)."""
        return number.startswith(self.prefix) and number[len(self.prefix) :].isdigit()


@dataclass(slots=True)
class CompanyProfile:
    company_id: str = ""
    legal_name: str = ""
    trading_name: str = ""
    address: PostalAddress | None = None
    tax_registrations: list[TaxRegistration] = field(default_factory=list)
    legal_registration_id: str = ""
    contact: Contact | None = None
    default_currency: str = ""
    payment_terms: PaymentTerms | None = None
    payment_means: PaymentMeans | None = None
    invoice_numbering: NumberFormat | None = None
    credit_note_numbering: NumberFormat | None = None
    rounding_mode: Rounding | None = None
    tax_mode: TaxMode | None = None
    locale: str = ""
    logo: bytes = b""
    logo_content_type: str = ""
    logo_digest: str = ""  # the logo's SHA-256 (hex): what a seller snapshot records
    # Finalization and credit note issue refuse a document that is not a valid e-invoice in this format.
    required_e_invoice_format: EInvoiceFormat | None = None
    version: int = 0
    update_time: datetime | None = None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def money_defaults(self) -> MoneyDefaults:
        return MoneyDefaults(self.rounding_mode or Rounding.HALF_UP, self.tax_mode or TaxMode.LINE)

    def seller(self, fallback_name: str) -> Party:
        """The profile as the seller party; the service's SELLER_NAME names a company without a legal name."""
        return Party(
            name=self.legal_name or fallback_name,
            trading_name=self.trading_name,
            address=self.address,
            tax_registrations=list(self.tax_registrations),
            legal_registration_id=self.legal_registration_id,
            contact=self.contact,
        )

    def numbering(self, default: NumberFormat) -> tuple[NumberFormat, NumberFormat]:
        """(invoice, credit note) number formats: the profile's, else the service's settings (credit notes:
        "CN-" and the invoice width)."""
        invoice = self.invoice_numbering or default
        credit = self.credit_note_numbering or NumberFormat(DEFAULT_CREDIT_NOTE_PREFIX, invoice.width)
        return invoice, credit


# AIP-134 paths of UpdateCompanyProfile (top-level fields; `tax_rounding_mode` is the proto's name of tax_mode).
UPDATABLE = frozenset(
    {
        "legal_name",
        "trading_name",
        "address",
        "tax_registrations",
        "legal_registration_id",
        "contact",
        "default_currency",
        "payment_terms",
        "payment_means",
        "invoice_numbering",
        "credit_note_numbering",
        "rounding_mode",
        "tax_rounding_mode",
        "locale",
        "logo",
        "required_e_invoice_format",
    }
)
_ATTRS = {"tax_rounding_mode": ("tax_mode",), "logo": ("logo", "logo_content_type", "logo_digest")}


def check_etag(profile: CompanyProfile, etag: str) -> None:
    if etag and etag != profile.etag:
        raise Aborted(f"etag {shown(etag)} does not match the current {profile.etag!r}; read the profile again")


def check_numbers_ahead(form: NumberFormat, ahead: list[str]) -> None:
    """A new invoice number format must not reach numbers clients already hold (`ahead`: numbers of its prefix
    beyond the sequence): the service's finalizations would stop at them."""
    for number in ahead:
        if form.is_generated(number) and form.format(int(number[len(form.prefix) :])) == number:
            raise FailedPrecondition(
                f"invoice number {shown(number)} exists and is of the form {form.format(0)!r} beyond the "
                "sequence: its finalizations would collide; choose another prefix or width",
                subject="invoice_numbering",
                violation_type="NUMBER_FORMAT",
            )


def check_paths(paths: set[str]) -> None:
    v = Violations()
    for p in sorted(paths - UPDATABLE):
        v.add("update_mask.paths", f"{p!r} is not an updatable field of CompanyProfile")
    v.raise_if_any()


def logo_type(data: bytes) -> str:
    """The logo's MIME type from its signature: PNG or JPEG only."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return ""


def _check_numbering(v: Violations, path: str, f: NumberFormat | None) -> None:
    if f is None:
        return
    if len(f.prefix) > 20 or not _PRINTABLE.fullmatch(f.prefix):
        v.add(f"{path}.prefix", f"must be printable ASCII of at most 20 characters; got {shown(f.prefix)}")
    if not 1 <= f.width <= 20:
        v.add(f"{path}.width", f"must be 1 to 20 digits; got {f.width}")


def check_profile(p: CompanyProfile, paths: set[str], path: str = "profile") -> None:
    """Refuses the masked fields' values that are not valid, naming each field."""
    v = Violations()
    for name in ("legal_name", "trading_name"):
        if name in paths:
            check_text(v, f"{path}.{name}", getattr(p, name))
    if "legal_registration_id" in paths:
        check_text(v, f"{path}.legal_registration_id", p.legal_registration_id, limit=50)
    if "address" in paths:
        check_address(v, f"{path}.address", p.address)
    if "tax_registrations" in paths:
        check_tax_registrations(v, f"{path}.tax_registrations", p.tax_registrations)
    if "contact" in paths:
        check_contact(v, f"{path}.contact", p.contact)
    if "default_currency" in paths and p.default_currency:
        p.default_currency = parse_currency(v, f"{path}.default_currency", p.default_currency) or ""
    if "payment_terms" in paths:
        check_payment_terms(v, f"{path}.payment_terms", p.payment_terms)
    if "payment_means" in paths:
        check_payment_means(v, f"{path}.payment_means", p.payment_means)
    for name in ("invoice_numbering", "credit_note_numbering"):
        if name in paths:
            _check_numbering(v, f"{path}.{name}", getattr(p, name))
    if "locale" in paths and p.locale and not _LOCALE.fullmatch(p.locale):
        v.add(f"{path}.locale", f"must be a BCP 47 language tag such as en-GB; got {shown(p.locale)}")
    if "logo" in paths and p.logo:
        p.logo_content_type = logo_type(p.logo)
        p.logo_digest = hashlib.sha256(p.logo).hexdigest()
        if len(p.logo) > MAX_LOGO_BYTES:
            v.add(f"{path}.logo", f"must be at most {MAX_LOGO_BYTES:,} bytes; got {len(p.logo):,}")
        elif not p.logo_content_type:
            v.add(f"{path}.logo", "must be a PNG or JPEG image")
    v.raise_if_any()


# Messages whose own fields a mask may name (AIP-134 nested paths: "address.city", "payment_means.iban").
_NESTED: dict[str, type[Any]] = {
    "address": PostalAddress,
    "contact": Contact,
    "payment_terms": PaymentTerms,
    "payment_means": PaymentMeans,
}


def _nested(current: CompanyProfile, patch: CompanyProfile, paths: set[str]) -> tuple[CompanyProfile, set[str]]:
    """Nested mask paths as whole fields: the current message with the named fields taken from the patch (a
    field the patch leaves unset is cleared, as AIP-134 says), so the usual checks see the merged result."""
    v = Violations()
    wanted: dict[str, list[str]] = {}
    for p in sorted(x for x in paths if "." in x):
        head, _, tail = p.partition(".")
        kind = _NESTED.get(head)
        if kind is None or tail not in {f.name for f in fields(kind)}:
            v.add("update_mask.paths", f"{p!r} is not an updatable field of CompanyProfile")
        elif head in paths:
            v.add("update_mask.paths", f"{p!r} is inside {head!r}, which the mask names whole")
        else:
            wanted.setdefault(head, []).append(tail)
    v.raise_if_any()
    if not wanted:
        return patch, paths
    merged = replace(patch)
    for head, tails in wanted.items():
        base, given = getattr(current, head), getattr(patch, head)
        new = replace(base) if base is not None else _NESTED[head]()
        for tail in tails:
            setattr(new, tail, getattr(given if given is not None else _NESTED[head](), tail))
        setattr(merged, head, new)
    return merged, {x for x in paths if "." not in x} | set(wanted)


def apply_update(current: CompanyProfile, patch: CompanyProfile, paths: set[str], etag: str) -> CompanyProfile:
    """The profile with the masked fields of `patch`, checked (InvalidArgument names each bad field)."""
    patch, paths = _nested(current, patch, paths)
    check_paths(paths)
    check_etag(current, etag)
    check_profile(patch, paths)
    out = replace(current)
    for p in paths:
        for attr in _ATTRS.get(p, (p,)):
            setattr(out, attr, getattr(patch, attr))
    if not out.logo:
        out.logo_content_type = out.logo_digest = ""
    return out


def snapshot_seller(inv: Invoice, profile: CompanyProfile, fallback_name: str) -> None:
    """At finalization: the seller, payment terms and means as the profile says now (later edits leave them),
    and an empty due date from the terms' net days."""
    inv.seller = profile.seller(fallback_name)
    inv.seller_logo = profile.logo_digest  # "" for none: a later logo edit leaves the issued PDF as it was
    inv.payment_terms = replace(profile.payment_terms) if profile.payment_terms else None
    means = profile.payment_means
    inv.payment_means = None
    if means is not None:
        ref = payment_reference(means.payment_reference_rule, inv.invoice_number, inv.customer_id)
        inv.payment_means = replace(means, payment_reference=ref)
    terms = profile.payment_terms
    if inv.due_date is None and inv.issue_date is not None and terms is not None and terms.net_days:
        inv.due_date = inv.issue_date + timedelta(days=terms.net_days)
