"""Company profiles (issue 16): one row per company, the profile as a JSON object beside its logo; the
rounding modes are the company's money defaults (company_money_settings)."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg

from service.domain import parties
from service.domain.models import Invoice
from service.domain.money import Rounding, TaxMode
from service.domain.profile import CompanyProfile, EInvoiceFormat, NumberFormat
from service.store.statement import Piece

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_SELECT = (
    "SELECT p.profile, p.logo, p.logo_content_type, p.version, p.update_time, m.rounding_mode, m.tax_mode "
    "FROM (SELECT $1::text AS company_id) c "
    "LEFT JOIN company_profiles p ON p.company_id = c.company_id "
    "LEFT JOIN company_money_settings m ON m.company_id = c.company_id"
)
# A company's first update locks a row too: the empty profile is inserted (rolled back with a refusal).
_LOCK = (
    "WITH ins AS (INSERT INTO company_profiles (company_id, version, update_time) VALUES ($1, 0, now()) "
    "ON CONFLICT (company_id) DO NOTHING) "
    "SELECT 1 FROM company_profiles WHERE company_id = $1 FOR UPDATE"
)
_SAVE = (
    "UPDATE company_profiles SET profile = $2, logo = $3, logo_content_type = $4, version = $5, update_time = $6 "
    "WHERE company_id = $1"
)
_SAVE_MODES = (
    "INSERT INTO company_money_settings (company_id, rounding_mode, tax_mode, update_time) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (company_id) DO UPDATE SET rounding_mode = $2, tax_mode = $3, update_time = $4"
)
_CLEAR_MODES = "DELETE FROM company_money_settings WHERE company_id = $1"
_KEEP_LOGO = (
    "INSERT INTO company_logos (company_id, digest, data, content_type) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (company_id, digest) DO NOTHING"
)
_LOGO = "SELECT data FROM company_logos WHERE company_id = $1 AND digest = $2"


async def logo(conn: Conn, company_id: str, digest: str) -> bytes:
    """A logo the company's profile held, by digest (b"" when unknown)."""
    data = await conn.fetchval(_LOGO, company_id, digest) if digest else None
    return bytes(data) if data else b""


def _format(d: dict[str, Any] | None) -> NumberFormat | None:
    return None if d is None else NumberFormat(d["prefix"], d["width"])


def _from_row(company_id: str, row: asyncpg.Record) -> CompanyProfile:
    out = from_document(company_id, row["profile"] or {})
    out.rounding_mode = Rounding(row["rounding_mode"]) if row["rounding_mode"] else None
    out.tax_mode = TaxMode(row["tax_mode"]) if row["tax_mode"] else None
    out.logo, out.logo_content_type = row["logo"] or b"", row["logo_content_type"] or ""
    out.version, out.update_time = row["version"] or 0, row["update_time"]
    return out


def from_document(company_id: str, d: dict[str, Any]) -> CompanyProfile:
    """The profile from its stored JSON alone (no logo, money defaults or version)."""
    address = d.get("address")
    return CompanyProfile(
        company_id=company_id,
        legal_name=d.get("legal_name", ""),
        trading_name=d.get("trading_name", ""),
        address=None if address is None else parties.PostalAddress(**address),
        tax_registrations=[parties.TaxRegistration(**t) for t in d.get("tax_registrations", [])],
        legal_registration_id=d.get("legal_registration_id", ""),
        contact=None if d.get("contact") is None else parties.Contact(**d["contact"]),
        default_currency=d.get("default_currency", ""),
        payment_terms=parties.terms_from_json(d.get("payment_terms")),
        payment_means=parties.means_from_json(d.get("payment_means")),
        invoice_numbering=_format(d.get("invoice_numbering")),
        credit_note_numbering=_format(d.get("credit_note_numbering")),
        locale=d.get("locale", ""),
        logo_digest=d.get("logo_digest", ""),
        required_e_invoice_format=EInvoiceFormat(d["required_e_invoice_format"])
        if d.get("required_e_invoice_format")
        else None,
    )


def _to_json(p: CompanyProfile) -> dict[str, Any]:
    fmt = {
        name: None if f is None else {"prefix": f.prefix, "width": f.width}
        for name, f in (("invoice_numbering", p.invoice_numbering), ("credit_note_numbering", p.credit_note_numbering))
    }
    return {
        "legal_name": p.legal_name,
        "trading_name": p.trading_name,
        "address": parties.to_json(p.address),
        "tax_registrations": [parties.to_json(t) for t in p.tax_registrations],
        "legal_registration_id": p.legal_registration_id,
        "contact": parties.to_json(p.contact),
        "default_currency": p.default_currency,
        "payment_terms": parties.to_json(p.payment_terms),
        "payment_means": parties.to_json(p.payment_means),
        **fmt,
        "locale": p.locale,
        "logo_digest": p.logo_digest,
        "required_e_invoice_format": p.required_e_invoice_format,
    }


async def load(conn: Conn, company_id: str, *, lock: bool = False) -> CompanyProfile:
    """The company's profile (an empty one, version 0, when it never set one); `lock` holds its row for the
    transaction."""
    if lock:
        await conn.execute(_LOCK, company_id)
    row = await conn.fetchrow(_SELECT, company_id)
    assert row is not None  # the outer side always has its one row
    return _from_row(company_id, row)


async def for_invoice(conn: Conn, inv: Invoice) -> CompanyProfile:
    """The profile an invoice's PDF is drawn with: the live one (a draft's seller, terms and means), with the
    logo the invoice was issued with when its seller snapshot names one ("" for none)."""
    out = await load(conn, inv.company_id)
    if inv.seller_logo is not None and inv.seller_logo != out.logo_digest:
        out.logo = await logo(conn, inv.company_id, inv.seller_logo)
    return out


def save_pieces(p: CompanyProfile, modes_changed: bool) -> list[Piece]:
    """The locked profile's new state (and its money defaults, when they changed) for the unit of work."""
    pieces = [Piece(_SAVE, (p.company_id, _to_json(p), p.logo or None, p.logo_content_type, p.version, p.update_time))]
    if p.logo:  # kept by digest for the invoices issued with it
        pieces.append(Piece(_KEEP_LOGO, (p.company_id, p.logo_digest, p.logo, p.logo_content_type)))
    if modes_changed and p.rounding_mode is None and p.tax_mode is None:
        pieces.append(Piece(_CLEAR_MODES, (p.company_id,)))
    elif modes_changed:
        defaults = p.money_defaults
        args = (p.company_id, defaults.rounding.value, defaults.tax_mode.value, p.update_time)
        pieces.append(Piece(_SAVE_MODES, args))
    return pieces


# Numbers of the prefix followed by digits (a btree range under the C collation) beyond the sequence's last value.
_AHEAD = (
    "SELECT i.invoice_number FROM invoices i WHERE i.company_id = $1 "
    "AND i.invoice_number >= $2 || '0' AND i.invoice_number < $2 || ':' "
    "AND CASE WHEN substr(i.invoice_number, length($2) + 1) ~ '^[0-9]{1,40}$' "
    "THEN substr(i.invoice_number, length($2) + 1)::numeric END "
    "> coalesce((SELECT s.last_value FROM invoice_number_sequences s WHERE s.company_id = $1), 0) "
    "ORDER BY i.invoice_number LIMIT 100"
)


async def numbers_ahead(conn: Conn, company_id: str, prefix: str) -> list[str]:
    """The company's invoice numbers of `prefix` and digits that its sequence has not reached yet."""
    return [r["invoice_number"] for r in await conn.fetch(_AHEAD, company_id, prefix)]


# The settings' defaults (INVOICE_NUMBER_PREFIX, INVOICE_NUMBER_WIDTH); callers pass the configured ones.
SETTINGS_NUMBERING = NumberFormat("INV-", 6)


async def number_formats(
    conn: Conn, company_id: str, default: NumberFormat = SETTINGS_NUMBERING
) -> tuple[NumberFormat, NumberFormat]:
    """(invoice, credit note) number formats of the company: its profile's, else the service's settings
    (`default`, INVOICE_NUMBER_PREFIX/WIDTH; credit notes "CN-" at the invoice width)."""
    return (await load(conn, company_id)).numbering(default)
