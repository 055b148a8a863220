"""Party and company profile rules of service/domain/parties.py and profile.py as tables. Pure: no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.domain.errors import Aborted, InvalidArgument, Violations
from service.domain.models import Invoice
from service.domain.parties import (
    COUNTRIES,
    Contact,
    Delivery,
    Party,
    PaymentMeans,
    PaymentReferenceRule,
    PaymentTerms,
    PostalAddress,
    TaxRegistration,
    check_address,
    check_country,
    check_party,
    check_payment_means,
    delivery_from_json,
    iban_problem,
    means_from_json,
    normalize_iban,
    party_from_json,
    to_json,
)
from service.domain.profile import CompanyProfile, NumberFormat, apply_update, logo_type, snapshot_seller


def _fields(v: Violations) -> list[str]:
    return [i.field for i in v.items]


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("DE89 3704 0044 0532 0130 00", True),
        ("GB82 WEST 1234 5698 7654 32", True),
        ("gb82west12345698765432", True),  # normalized to capitals
        ("FR14 2004 1010 0505 0001 3M02 606", True),
        ("NL91ABNA0417164300", True),
        ("DE89 3704 0044 0532 0130 01", False),  # one digit off: mod 97 fails
        ("DE98 3704 0044 0532 0130 00", False),  # check digits swapped
        ("XX89370400440532013000", False),  # no such country
        ("DE8937040044", False),  # too short
        ("DE89-3704-0044-0532-0130-00", False),
        ("", False),
    ],
)
def test_iban(raw: str, valid: bool) -> None:
    assert (iban_problem(normalize_iban(raw)) == "") is valid


@pytest.mark.parametrize(
    ("raw", "required", "violation"),
    [
        ("DE", False, False),
        ("US", True, False),
        ("XI", False, True),
        ("de", False, True),
        ("DEU", False, True),
        ("UK", False, True),
        ("", False, False),
        ("", True, True),
        ("ZW", False, False),
        ("AX", False, False),
    ],
)
def test_country(raw: str, required: bool, violation: bool) -> None:
    v = Violations()
    check_country(v, "c", raw, required=required)
    assert bool(v) is violation
    assert len(COUNTRIES) == 249


@pytest.mark.parametrize(
    ("means", "fields"),
    [
        (PaymentMeans(iban="DE89370400440532013000", bic="COBADEFFXXX"), []),
        (PaymentMeans(iban="DE89370400440532013000", bic="cobadeff"), []),
        (PaymentMeans(iban="DE89370400440532013000", bic="COBA"), ["m.bic"]),
        (PaymentMeans(iban="DE89370400440532013000", bic="COBAQQFF"), ["m.bic"]),  # no country QQ
        (PaymentMeans(account_number="12345678", routing_code="40-47-84"), []),
        (PaymentMeans(account_number="12345678"), ["m.routing_code"]),
        (PaymentMeans(iban="DE89370400440532013000", account_number="1", routing_code="2"), ["m.account_number"]),
        (PaymentMeans(account_number="12;34", routing_code="1"), ["m.account_number"]),
    ],
)
def test_payment_means(means: PaymentMeans, fields: list[str]) -> None:
    v = Violations()
    check_payment_means(v, "m", means)
    assert _fields(v) == fields


@pytest.mark.parametrize(
    ("party", "fields"),
    [
        (Party(name="Globex"), []),
        (Party(trading_name="Globex"), ["p.name"]),
        (Party(name="G", address=PostalAddress(city="Berlin")), ["p.address.country_code"]),
        (
            Party(name="G", address=PostalAddress(address_lines=["a", "b", "c", "d"], country_code="DE")),
            ["p.address.address_lines"],
        ),
        (Party(name="G", tax_registrations=[TaxRegistration("VAT", "DE123456789")]), []),
        (Party(name="G", tax_registrations=[TaxRegistration("VAT", "EL123456789")]), []),
        (Party(name="G", tax_registrations=[TaxRegistration("VAT", "123456789")]), ["p.tax_registrations[0].id"]),
        (Party(name="G", tax_registrations=[TaxRegistration("GST", "123456789")]), []),
        (Party(name="G", tax_registrations=[TaxRegistration("", "1")]), ["p.tax_registrations[0].scheme"]),
        (Party(name="G", contact=Contact(email="a@b.example", phone="+1 (555) 010-0100")), []),
        (Party(name="G", contact=Contact(email="a.b.example")), ["p.contact.email"]),
        (Party(name="G", contact=Contact(phone="call me")), ["p.contact.phone"]),
    ],
)
def test_party(party: Party, fields: list[str]) -> None:
    v = Violations()
    check_party(v, "p", party)
    assert _fields(v) == fields


def test_an_empty_address_needs_no_country() -> None:
    v = Violations()
    check_address(v, "a", PostalAddress())
    assert not v


@pytest.mark.parametrize(
    "value",
    [
        Party("A", "B", PostalAddress(["l1"], "c", "p", "s", "DE"), [TaxRegistration("VAT", "DE1")], "HRB", Contact()),
        Party("A"),
    ],
)
def test_party_json_round_trip(value: Party) -> None:
    assert party_from_json(to_json(value)) == value


def test_means_and_delivery_json_round_trip() -> None:
    means = PaymentMeans(iban="X", payment_reference_rule=PaymentReferenceRule.CUSTOMER_ID, payment_reference="c")
    assert means_from_json(to_json(means)) == means
    delivery = Delivery("W", PostalAddress(city="c", country_code="US"), datetime(2030, 1, 2).date())
    assert delivery_from_json(to_json(delivery)) == delivery


def test_snapshot_takes_the_profile_and_fills_the_due_date_from_net_days() -> None:
    profile = CompanyProfile(
        legal_name="Acme",
        payment_terms=PaymentTerms(30, "Net 30"),
        payment_means=PaymentMeans(iban="DE89370400440532013000"),
    )
    inv = Invoice(invoice_number="INV-1", customer_id="c-1", issue_date=datetime(2030, 1, 31, tzinfo=UTC))
    snapshot_seller(inv, profile, "Fallback")
    assert inv.seller == Party(name="Acme") and inv.due_date == datetime(2030, 3, 2, tzinfo=UTC)
    assert inv.payment_means is not None and inv.payment_means.payment_reference == "INV-1"
    profile.legal_name = "Renamed"
    assert inv.seller.name == "Acme"  # a copy, not the profile
    kept = Invoice(issue_date=datetime(2030, 1, 1, tzinfo=UTC), due_date=datetime(2030, 1, 5, tzinfo=UTC))
    snapshot_seller(kept, CompanyProfile(payment_terms=PaymentTerms(30)), "Fallback")
    assert kept.due_date == datetime(2030, 1, 5, tzinfo=UTC) and kept.seller == Party(name="Fallback")


@pytest.mark.parametrize(
    ("patch", "paths", "etag", "error"),
    [
        (CompanyProfile(legal_name="New"), {"legal_name"}, 'W/"3"', None),
        (CompanyProfile(legal_name="New"), {"legal_name"}, "", None),
        (CompanyProfile(legal_name="New"), {"legal_name"}, 'W/"2"', Aborted),
        (CompanyProfile(), {"colour"}, "", InvalidArgument),
        (CompanyProfile(default_currency="EURO"), {"default_currency"}, "", InvalidArgument),
        (CompanyProfile(default_currency="EURO"), {"legal_name"}, "", None),  # unmasked: not read
        (CompanyProfile(invoice_numbering=NumberFormat("A\n", 3)), {"invoice_numbering"}, "", InvalidArgument),
        (CompanyProfile(logo=b"\x89PNG\r\n\x1a\n" + b"0" * 300_000), {"logo"}, "", InvalidArgument),
    ],
)
def test_apply_update(patch: CompanyProfile, paths: set[str], etag: str, error: Any) -> None:
    current = CompanyProfile(legal_name="Old", trading_name="T", version=3)
    if error is None:
        out = apply_update(current, patch, paths, etag)
        assert out.legal_name == (patch.legal_name if "legal_name" in paths else "Old")
        assert out.trading_name == "T" and current.legal_name == "Old"
    else:
        with pytest.raises(error):
            apply_update(current, patch, paths, etag)


def test_number_formats_fall_back_to_the_settings() -> None:
    default = NumberFormat("INV-", 6)
    assert CompanyProfile().numbering(default) == (default, NumberFormat("CN-", 6))
    own = CompanyProfile(invoice_numbering=NumberFormat("A-", 3), credit_note_numbering=NumberFormat("C-", 2))
    assert own.numbering(default) == (NumberFormat("A-", 3), NumberFormat("C-", 2))
    assert NumberFormat("A-", 3).format(7) == "A-007" and NumberFormat("A-", 3).is_generated("A-12")


def test_logo_type() -> None:
    assert (logo_type(b"\x89PNG\r\n\x1a\nrest"), logo_type(b"\xff\xd8\xff\xe0"), logo_type(b"GIF89a")) == (
        "image/png",
        "image/jpeg",
        "",
    )
