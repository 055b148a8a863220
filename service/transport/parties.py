"""Proto <-> domain conversion of parties, payment terms and means, and the company profile (issue 16);
convert.py calls it for the invoice's party fields. Shape checks name the proto path; rules are the
domain's (service/domain/parties.py, profile.py)."""

from __future__ import annotations

from typing import Any

from invoices.v1 import company_profile_pb2 as cpb
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import party_pb2 as ppb

from service.domain import parties as d
from service.domain.errors import Violations
from service.domain.money import Rounding, TaxMode
from service.domain.profile import CompanyProfile, EInvoiceFormat, NumberFormat
from service.domain.values import check_text, fmt_date, parse_date
from service.transport import convert as c  # convert.py calls back here for the invoice's parties

# Output-only CompanyProfile fields: ignored on input, never part of an implicit update mask.
PROFILE_OUTPUT_ONLY = frozenset({"name", "company_id", "logo_content_type", "etag", "update_time"})


# -- in -------------------------------------------------------------------------------------------


def address_in(msg: Any, field: str) -> d.PostalAddress | None:
    if not msg.HasField(field):
        return None
    a = getattr(msg, field)
    return d.PostalAddress(list(a.address_lines), a.city, a.postal_code, a.country_subdivision, a.country_code)


def _registrations_in(regs: Any) -> list[d.TaxRegistration]:
    return [d.TaxRegistration(t.scheme, t.id) for t in regs]


def _contact_in(msg: Any) -> d.Contact | None:
    return d.Contact(msg.contact.name, msg.contact.email, msg.contact.phone) if msg.HasField("contact") else None


def party_in(msg: Any, field: str) -> d.Party | None:
    if not msg.HasField(field):
        return None
    p: ppb.Party = getattr(msg, field)
    return d.Party(
        name=p.name,
        trading_name=p.trading_name,
        address=address_in(p, "address"),
        tax_registrations=_registrations_in(p.tax_registrations),
        legal_registration_id=p.legal_registration_id,
        contact=_contact_in(p),
    )


def delivery_in(v: Violations, path: str, msg: pb.Invoice) -> d.Delivery | None:
    if not msg.HasField("delivery"):
        return None
    x = msg.delivery
    when = parse_date(v, f"{path}.delivery_date", x.delivery_date)
    return d.Delivery(x.name, address_in(x, "address"), when)


def _means_in(v: Violations, path: str, msg: cpb.CompanyProfile) -> d.PaymentMeans | None:
    if not msg.HasField("payment_means"):
        return None
    m = msg.payment_means
    wrapper, rule_path = ppb.PaymentReferenceRule, f"{path}.payment_reference_rule"
    rule = c.enum_in(v, rule_path, wrapper, m.payment_reference_rule, d.PaymentReferenceRule)
    return d.PaymentMeans(m.iban, m.bic, m.account_number, m.routing_code, m.account_name, m.bank_name, rule)


def _format_in(msg: Any, field: str) -> NumberFormat | None:
    if not msg.HasField(field):
        return None
    f = getattr(msg, field)
    return NumberFormat(f.prefix, f.width)


def profile_in(msg: cpb.CompanyProfile, v: Violations, path: str = "profile") -> CompanyProfile:
    """The client's profile values; their rules are checked by the domain, for the masked fields only."""
    terms = msg.payment_terms
    return CompanyProfile(
        legal_name=msg.legal_name,
        trading_name=msg.trading_name,
        address=address_in(msg, "address"),
        tax_registrations=_registrations_in(msg.tax_registrations),
        legal_registration_id=msg.legal_registration_id,
        contact=_contact_in(msg),
        default_currency=msg.default_currency,
        payment_terms=d.PaymentTerms(terms.net_days, terms.text) if msg.HasField("payment_terms") else None,
        payment_means=_means_in(v, f"{path}.payment_means", msg),
        invoice_numbering=_format_in(msg, "invoice_numbering"),
        credit_note_numbering=_format_in(msg, "credit_note_numbering"),
        rounding_mode=c.enum_in(v, f"{path}.rounding_mode", pb.RoundingMode, msg.rounding_mode, Rounding),
        tax_mode=c.enum_in(v, f"{path}.tax_rounding_mode", pb.TaxRoundingMode, msg.tax_rounding_mode, TaxMode),
        locale=msg.locale,
        logo=msg.logo,
        required_e_invoice_format=c.enum_in(
            v, f"{path}.required_e_invoice_format", pb.EInvoiceFormat, msg.required_e_invoice_format, EInvoiceFormat
        ),
    )


def implicit_profile_paths(msg: cpb.CompanyProfile) -> set[str]:
    return {fd.name for fd, _ in msg.ListFields()} - PROFILE_OUTPUT_ONLY


def profile_paths(msg: cpb.CompanyProfile, mask: list[str]) -> set[str]:
    """AIP-134: the mask; "*" every updatable field; none: the fields set."""
    paths = set(mask) if mask else implicit_profile_paths(msg)
    if "*" in paths:  # other paths beside it stay, so an unknown one is still refused by name
        paths = (paths - {"*"}) | ({f.name for f in cpb.CompanyProfile.DESCRIPTOR.fields} - PROFILE_OUTPUT_ONLY)
    return paths


def invoice_parties_in(inv: Any, msg: pb.Invoice, v: Violations, path: str) -> None:
    """The invoice's buyer, references and delivery, checked (the seller, terms and means are output only)."""
    inv.buyer = party_in(msg, "buyer")
    inv.buyer_reference = msg.buyer_reference
    inv.purchase_order_reference = msg.purchase_order_reference
    inv.delivery = delivery_in(v, f"{path}.delivery", msg)
    d.check_party(v, f"{path}.buyer", inv.buyer)
    d.check_delivery(v, f"{path}.delivery", inv.delivery)
    for name in ("buyer_reference", "purchase_order_reference"):
        check_text(v, f"{path}.{name}", getattr(msg, name))


# -- out ------------------------------------------------------------------------------------------


def address_out(a: d.PostalAddress | None) -> ppb.PostalAddress | None:
    if a is None:
        return None
    return ppb.PostalAddress(
        address_lines=a.address_lines,
        city=a.city,
        postal_code=a.postal_code,
        country_subdivision=a.country_subdivision,
        country_code=a.country_code,
    )


def _registrations_out(regs: list[d.TaxRegistration]) -> list[ppb.TaxRegistration]:
    return [ppb.TaxRegistration(scheme=t.scheme, id=t.id) for t in regs]


def _contact_out(c: d.Contact | None) -> ppb.Contact | None:
    return None if c is None else ppb.Contact(name=c.name, email=c.email, phone=c.phone)


def party_out(p: d.Party | None) -> ppb.Party | None:
    if p is None:
        return None
    return ppb.Party(
        name=p.name,
        trading_name=p.trading_name,
        address=address_out(p.address),
        tax_registrations=_registrations_out(p.tax_registrations),
        legal_registration_id=p.legal_registration_id,
        contact=_contact_out(p.contact),
    )


def terms_out(t: d.PaymentTerms | None) -> ppb.PaymentTerms | None:
    return None if t is None else ppb.PaymentTerms(net_days=t.net_days, text=t.text)


def means_out(m: d.PaymentMeans | None) -> ppb.PaymentMeans | None:
    if m is None:
        return None
    return ppb.PaymentMeans(
        iban=m.iban,
        bic=m.bic,
        account_number=m.account_number,
        routing_code=m.routing_code,
        account_name=m.account_name,
        bank_name=m.bank_name,
        payment_reference_rule=c.enum_out(ppb.PaymentReferenceRule, m.payment_reference_rule),
        payment_reference=m.payment_reference,
    )


def delivery_out(x: d.Delivery | None) -> ppb.Delivery | None:
    if x is None:
        return None
    return ppb.Delivery(name=x.name, address=address_out(x.address), delivery_date=fmt_date(x.delivery_date))


def invoice_parties_out(inv: Any, out: pb.Invoice) -> None:
    for name, value in (
        ("seller", party_out(inv.seller)),
        ("buyer", party_out(inv.buyer)),
        ("delivery", delivery_out(inv.delivery)),
        ("payment_terms", terms_out(inv.payment_terms)),
        ("payment_means", means_out(inv.payment_means)),
    ):
        if value is not None:
            getattr(out, name).CopyFrom(value)
    out.buyer_reference = inv.buyer_reference
    out.purchase_order_reference = inv.purchase_order_reference


def _format_out(f: NumberFormat | None) -> cpb.NumberFormat | None:
    return None if f is None else cpb.NumberFormat(prefix=f.prefix, width=f.width)


def profile_out(p: CompanyProfile) -> cpb.CompanyProfile:
    out = cpb.CompanyProfile(
        name=f"companies/{p.company_id}/profile",
        company_id=p.company_id,
        legal_name=p.legal_name,
        trading_name=p.trading_name,
        address=address_out(p.address),
        tax_registrations=_registrations_out(p.tax_registrations),
        legal_registration_id=p.legal_registration_id,
        contact=_contact_out(p.contact),
        default_currency=p.default_currency,
        payment_terms=terms_out(p.payment_terms),
        payment_means=means_out(p.payment_means),
        invoice_numbering=_format_out(p.invoice_numbering),
        credit_note_numbering=_format_out(p.credit_note_numbering),
        rounding_mode=c.enum_out(pb.RoundingMode, p.rounding_mode),
        tax_rounding_mode=c.enum_out(pb.TaxRoundingMode, p.tax_mode),
        locale=p.locale,
        logo=p.logo,
        logo_content_type=p.logo_content_type,
        required_e_invoice_format=c.enum_out(pb.EInvoiceFormat, p.required_e_invoice_format),
        etag=p.etag,
    )
    c.ts_out(out, "update_time", p.update_time)
    return out
