"""UN/CEFACT Cross Industry Invoice D16B, EN 16931 profile (as Factur-X EN16931 uses it): one table of business
terms and their XPaths, which both the writer and the reader walk. Pure.

Each `Term` is a business term's place relative to its group's element; a `Group` is a BG (or a party, an
address) with its own table, repeated where `many`. The table is in the schema's sequence order: the writer
appends elements as it goes (creating the parents it needs, reusing the ones already there), so the XML
comes out in that order. Amounts and other decimals are written as plain digits (never floats), dates in
format 102 (YYYYMMDD). The reader refuses a value it cannot parse (a bad decimal, date, indicator, an unknown
VAT category or document type) with InvalidArgument naming the element's XPath.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any, Final, cast

from lxml import etree

from service.domain.errors import FieldViolation, InvalidArgument
from service.domain.models import TaxCategory
from service.domain.values import ZERO
from service.einvoice.document import (
    CREDIT_NOTE,
    INVOICE,
    Address,
    AllowanceCharge,
    Document,
    Line,
    Party,
    VatBreakdown,
)
from service.einvoice.terms import field_of

RSM: Final = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NS: Final[dict[str, str]] = {
    "rsm": RSM,
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
ROOT: Final = "/rsm:CrossIndustryInvoice"
EN16931: Final = "urn:cen.eu:en16931:2017"  # BT-24, the EN 16931 profile of CII (Factur-X EN16931)
DATE_FORMAT: Final = "102"  # UNTDID 2379: CCYYMMDD
_DECIMAL: Final = re.compile(r"^[+-]?[0-9]{1,20}(\.[0-9]{1,20})?$")
_DATE: Final = re.compile(r"^[0-9]{8}$")
_STEP: Final = re.compile(r"^([a-z]+):([A-Za-z]+)(\[.*\])?$")


class Kind(Enum):
    TEXT = "text"
    AMOUNT = "amount"  # Decimal at the currency's minor unit
    DECIMAL = "decimal"  # quantity, price, rate, percentage
    DATE = "date"  # udt/qdt:DateTimeString, format 102
    BOOL = "bool"  # udt:Indicator
    CATEGORY = "category"  # UNCL5305 VAT category
    TYPE = "type"  # UNTDID 1001 document type: 380 or 381
    CONST = "const"  # a fixed value the format wants (TypeCode VAT, the guideline id); not read
    NODE = "node"  # an element the schema requires even when empty; not read


@dataclass(frozen=True, slots=True)
class Term:
    term: str  # "BT-1" (a BG for a fixed element); "BT-92/BT-99": an allowance's and a charge's
    path: str  # relative XPath of the element, or of an attribute (".../@unitCode")
    attr: str = ""  # the attribute of the Document object ("lines[0]": an item of a list attribute)
    kind: Kind = Kind.TEXT
    value: str = ""  # CONST: the value written
    attrs: tuple[tuple[str, str], ...] = ()  # fixed XML attributes of the element
    when: Callable[[Any], bool] | None = None  # written only when true of the object (read whenever present)
    many: bool = False  # a list of texts, each in a new parent element (the path's last step but one)
    required: bool = False  # the reader refuses a document without it
    currency: bool = False  # carries currencyID = BT-5 (read: the element in BT-5)
    always: bool = False  # written even when empty: the EN rule then names what is missing, not the schema


@dataclass(frozen=True, slots=True)
class Group:
    term: str
    path: str
    attr: str
    table: tuple[Term | Group, ...]
    make: Callable[[], Any]
    many: bool = False


Table = tuple[Term | Group, ...]


def _address(ids: str) -> Table:
    post, one, two, three, city, country, sub = ids.split()
    return (
        Term(post, "ram:PostcodeCode", "postal_code"),
        Term(one, "ram:LineOne", "lines[0]"),
        Term(two, "ram:LineTwo", "lines[1]"),
        Term(three, "ram:LineThree", "lines[2]"),
        Term(city, "ram:CityName", "city"),
        Term(country, "ram:CountryID", "country", always=True),
        Term(sub, "ram:CountrySubDivisionName", "subdivision"),
    )


def _party(ids: str, address: str) -> Table:
    ident, name, legal, trading, contact, phone, email, group, uri, vat, tax = ids.split()
    return (
        Term(ident, "ram:ID", "identifier"),
        Term(name, "ram:Name", "name", always=True),
        Term(legal, "ram:SpecifiedLegalOrganization/ram:ID", "legal_id"),
        Term(trading, "ram:SpecifiedLegalOrganization/ram:TradingBusinessName", "trading_name"),
        Term(contact, "ram:DefinedTradeContact/ram:PersonName", "contact_name"),
        Term(phone, "ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/ram:CompleteNumber", "contact_phone"),
        Term(email, "ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID", "contact_email"),
        Group(group, "ram:PostalTradeAddress", "address", _address(address), Address),
        Term(uri, "ram:URIUniversalCommunication/ram:URIID", "electronic_address"),
        Term(uri, "ram:URIUniversalCommunication/ram:URIID/@schemeID", "electronic_scheme"),
        Term(
            vat,
            "ram:SpecifiedTaxRegistration[ram:ID[@schemeID='VA']]/ram:ID",
            "vat_id",
            attrs=(("schemeID", "VA"),),
        ),
        Term(
            tax,
            "ram:SpecifiedTaxRegistration[ram:ID[@schemeID='FC']]/ram:ID",
            "tax_id",
            attrs=(("schemeID", "FC"),),
        ),
    )


def _allowance_charge(ids: str, document_level: bool) -> Table:
    indicator, pct, base, amount, code, reason = ids.split()
    head: Table = (
        Term(indicator, "ram:ChargeIndicator/udt:Indicator", "charge", Kind.BOOL, required=True),
        Term(pct, "ram:CalculationPercent", "percentage", Kind.DECIMAL),
        Term(base, "ram:BasisAmount", "base_amount", Kind.AMOUNT),
        Term(amount, "ram:ActualAmount", "amount", Kind.AMOUNT, required=True),
        Term(code, "ram:ReasonCode", "reason_code"),
        Term(reason, "ram:Reason", "reason"),
    )
    if not document_level:
        return head
    return (
        *head,
        Term("BT-95/BT-102", "ram:CategoryTradeTax/ram:TypeCode", kind=Kind.CONST, value="VAT"),
        Term("BT-95/BT-102", "ram:CategoryTradeTax/ram:CategoryCode", "category", Kind.CATEGORY),
        Term("BT-96/BT-103", "ram:CategoryTradeTax/ram:RateApplicablePercent", "rate", Kind.DECIMAL),
    )


def _new_allowance_charge() -> AllowanceCharge:
    return AllowanceCharge(charge=False, amount=ZERO)


_LINE_SETTLEMENT: Final = "ram:SpecifiedLineTradeSettlement"
LINE: Final[Table] = (
    Term("BT-126", "ram:AssociatedDocumentLineDocument/ram:LineID", "id", required=True),
    Term("BT-155", "ram:SpecifiedTradeProduct/ram:SellerAssignedID", "seller_item_id"),
    Term("BT-153", "ram:SpecifiedTradeProduct/ram:Name", "name", always=True),
    Term(
        "BT-146",
        "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount",
        "net_price",
        Kind.DECIMAL,
        required=True,
    ),
    Term("BT-129", "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity", "quantity", Kind.DECIMAL, required=True),
    Term("BT-130", "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity/@unitCode", "unit_code"),
    Term("BG-30", f"{_LINE_SETTLEMENT}/ram:ApplicableTradeTax/ram:TypeCode", kind=Kind.CONST, value="VAT"),
    Term("BT-151", f"{_LINE_SETTLEMENT}/ram:ApplicableTradeTax/ram:CategoryCode", "category", Kind.CATEGORY),
    Term("BT-152", f"{_LINE_SETTLEMENT}/ram:ApplicableTradeTax/ram:RateApplicablePercent", "rate", Kind.DECIMAL),
    Term(
        "BT-134",
        f"{_LINE_SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString",
        "period_start",
        Kind.DATE,
    ),
    Term(
        "BT-135",
        f"{_LINE_SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString",
        "period_end",
        Kind.DATE,
    ),
    Group(
        "BG-27/BG-28",
        f"{_LINE_SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge",
        "allowances_charges",
        _allowance_charge("BG-27/BG-28 BT-138/BT-143 BT-137/BT-142 BT-136/BT-141 BT-140/BT-145 BT-139/BT-144", False),
        _new_allowance_charge,
        many=True,
    ),
    Term(
        "BT-131",
        f"{_LINE_SETTLEMENT}/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        "net_amount",
        Kind.AMOUNT,
        required=True,
    ),
)

BREAKDOWN: Final[Table] = (
    Term("BT-117", "ram:CalculatedAmount", "tax_amount", Kind.AMOUNT, required=True),
    Term("BG-23", "ram:TypeCode", kind=Kind.CONST, value="VAT"),
    Term("BT-120", "ram:ExemptionReason", "exemption_reason"),
    Term("BT-116", "ram:BasisAmount", "taxable_amount", Kind.AMOUNT, required=True),
    Term("BT-118", "ram:CategoryCode", "category", Kind.CATEGORY, required=True),
    Term("BT-121", "ram:ExemptionReasonCode", "exemption_reason_code"),
    Term("BT-119", "ram:RateApplicablePercent", "rate", Kind.DECIMAL),
)


def _is_sepa(doc: Document) -> bool:
    return doc.payment_means_code == "58"


_TRADE: Final = "rsm:SupplyChainTradeTransaction"
_AGREEMENT: Final = f"{_TRADE}/ram:ApplicableHeaderTradeAgreement"
_DELIVERY: Final = f"{_TRADE}/ram:ApplicableHeaderTradeDelivery"
_SETTLEMENT: Final = f"{_TRADE}/ram:ApplicableHeaderTradeSettlement"
_MEANS: Final = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans"
_TOTALS: Final = f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementHeaderMonetarySummation"

# The document: every carried business term, in the schema's order.
TABLE: Final[Table] = (
    Term(
        "BT-24",
        "rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
        kind=Kind.CONST,
        value=EN16931,
    ),
    Term("BT-1", "rsm:ExchangedDocument/ram:ID", "number", always=True),
    Term("BT-3", "rsm:ExchangedDocument/ram:TypeCode", "type_code", Kind.TYPE, required=True),
    Term("BT-2", "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", "issue_date", Kind.DATE, required=True),
    Term("BT-22", "rsm:ExchangedDocument/ram:IncludedNote/ram:Content", "notes", many=True),
    Group(
        "BG-25",
        f"{_TRADE}/ram:IncludedSupplyChainTradeLineItem",
        "lines",
        LINE,
        lambda: Line("", ZERO, "", ZERO, ZERO, "", ""),
        many=True,
    ),
    Term("BT-10", f"{_AGREEMENT}/ram:BuyerReference", "buyer_reference"),
    Group(
        "BG-4",
        f"{_AGREEMENT}/ram:SellerTradeParty",
        "seller",
        _party(
            "BT-29 BT-27 BT-30 BT-28 BT-41 BT-42 BT-43 BG-5 BT-34 BT-31 BT-32",
            "BT-38 BT-35 BT-36 BT-162 BT-37 BT-40 BT-39",
        ),
        Party,
    ),
    Group(
        "BG-7",
        f"{_AGREEMENT}/ram:BuyerTradeParty",
        "buyer",
        _party(
            "BT-46 BT-44 BT-47 BT-45 BT-56 BT-57 BT-58 BG-8 BT-49 BT-48 -",
            "BT-53 BT-50 BT-51 BT-163 BT-52 BT-55 BT-54",
        ),
        Party,
    ),
    Term("BT-14", f"{_AGREEMENT}/ram:SellerOrderReferencedDocument/ram:IssuerAssignedID", "sales_order_reference"),
    Term("BT-13", f"{_AGREEMENT}/ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID", "purchase_order_reference"),
    Term("BG-13", _DELIVERY, kind=Kind.NODE),
    Term("BT-70", f"{_DELIVERY}/ram:ShipToTradeParty/ram:Name", "delivery_name"),
    Group(
        "BG-15",
        f"{_DELIVERY}/ram:ShipToTradeParty/ram:PostalTradeAddress",
        "delivery_address",
        _address("BT-78 BT-75 BT-76 BT-165 BT-77 BT-80 BT-79"),
        Address,
    ),
    Term(
        "BT-72",
        f"{_DELIVERY}/ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString",
        "delivery_date",
        Kind.DATE,
    ),
    Term("BT-83", f"{_SETTLEMENT}/ram:PaymentReference", "remittance_information"),
    Term("BT-5", f"{_SETTLEMENT}/ram:InvoiceCurrencyCode", "currency", required=True, always=True),
    Term("BT-81", f"{_MEANS}/ram:TypeCode", "payment_means_code"),
    Term("BT-84", f"{_MEANS}/ram:PayeePartyCreditorFinancialAccount/ram:IBANID", "payment_account", when=_is_sepa),
    Term("BT-85", f"{_MEANS}/ram:PayeePartyCreditorFinancialAccount/ram:AccountName", "payment_account_name"),
    Term(
        "BT-84",
        f"{_MEANS}/ram:PayeePartyCreditorFinancialAccount/ram:ProprietaryID",
        "payment_account",
        when=lambda doc: not _is_sepa(doc),
    ),
    Term("BT-86", f"{_MEANS}/ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID", "payment_service_provider"),
    Group(
        "BG-23",
        f"{_SETTLEMENT}/ram:ApplicableTradeTax",
        "vat_breakdown",
        BREAKDOWN,
        lambda: VatBreakdown(ZERO, ZERO, ""),
        many=True,
    ),
    Term(
        "BT-73",
        f"{_SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString",
        "period_start",
        Kind.DATE,
    ),
    Term(
        "BT-74", f"{_SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString", "period_end", Kind.DATE
    ),
    Group(
        "BG-20/BG-21",
        f"{_SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge",
        "allowances_charges",
        _allowance_charge("BG-20/BG-21 BT-94/BT-101 BT-93/BT-100 BT-92/BT-99 BT-98/BT-105 BT-97/BT-104", True),
        _new_allowance_charge,
        many=True,
    ),
    Term("BT-20", f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:Description", "payment_terms"),
    Term(
        "BT-9",
        f"{_SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString",
        "due_date",
        Kind.DATE,
    ),
    Term("BT-106", f"{_TOTALS}/ram:LineTotalAmount", "line_total", Kind.AMOUNT, required=True),
    Term("BT-108", f"{_TOTALS}/ram:ChargeTotalAmount", "charge_total", Kind.AMOUNT),
    Term("BT-107", f"{_TOTALS}/ram:AllowanceTotalAmount", "allowance_total", Kind.AMOUNT),
    Term("BT-109", f"{_TOTALS}/ram:TaxBasisTotalAmount", "tax_exclusive_total", Kind.AMOUNT, required=True),
    Term("BT-110", f"{_TOTALS}/ram:TaxTotalAmount", "tax_total", Kind.AMOUNT, currency=True),
    Term("BT-114", f"{_TOTALS}/ram:RoundingAmount", "rounding_amount", Kind.AMOUNT),
    Term("BT-112", f"{_TOTALS}/ram:GrandTotalAmount", "grand_total", Kind.AMOUNT, required=True),
    Term("BT-113", f"{_TOTALS}/ram:TotalPrepaidAmount", "paid_amount", Kind.AMOUNT),
    Term("BT-115", f"{_TOTALS}/ram:DuePayableAmount", "due_payable", Kind.AMOUNT, required=True),
    Term("BT-25", f"{_SETTLEMENT}/ram:InvoiceReferencedDocument/ram:IssuerAssignedID", "preceding_invoice"),
    Term(
        "BT-26",
        f"{_SETTLEMENT}/ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/qdt:DateTimeString",
        "preceding_invoice_date",
        Kind.DATE,
    ),
)


def paths() -> dict[str, list[str]]:
    """Every business term and group the table places, with its XPath from the root (a repeated group's own
    path, then its terms' relative ones): the table as the docs print it."""
    out: dict[str, list[str]] = {}

    def walk(table: Table, prefix: str) -> None:
        for entry in table:
            for term in entry.term.split("/"):
                if term.startswith(("BT-", "BG-")):
                    out.setdefault(term, []).append(f"{prefix}/{entry.path}")
            if isinstance(entry, Group):
                walk(entry.table, f"{prefix}/{entry.path}")

    walk(TABLE, ROOT)
    return out


# -- values -------------------------------------------------------------------------------------


def _text(kind: Kind, value: Any) -> str:
    if kind in (Kind.AMOUNT, Kind.DECIMAL):
        return format(value, "f")
    if kind is Kind.DATE:
        return f"{value:%Y%m%d}"
    if kind is Kind.BOOL:
        return "true" if value else "false"
    return str(value)


def _parse(kind: Kind, raw: str) -> tuple[Any, str]:
    """(value, "") or (None, why)."""
    text = raw.strip()
    if kind in (Kind.AMOUNT, Kind.DECIMAL):
        if not _DECIMAL.fullmatch(text):
            return None, f"is not a decimal number: {text[:40]!r}"
        return Decimal(text), ""
    if kind is Kind.DATE:
        try:
            if not _DATE.fullmatch(text):
                raise ValueError
            return datetime.strptime(text, "%Y%m%d").date(), ""
        except ValueError:
            return None, f"is not a date YYYYMMDD (format 102): {text[:40]!r}"
    if kind is Kind.BOOL:
        if text not in ("true", "false"):
            return None, f"must be true or false; got {text[:40]!r}"
        return text == "true", ""
    if kind is Kind.CATEGORY:
        if text not in TaxCategory.__members__.values():
            known = ", ".join(c.value for c in TaxCategory)
            return None, f"is not an EN 16931 VAT category ({known}); got {text[:40]!r}"
        return text, ""
    if kind is Kind.TYPE:
        if text not in (INVOICE, CREDIT_NOTE):
            return None, f"must be {INVOICE} (invoice) or {CREDIT_NOTE} (credit note); got {text[:40]!r}"
        return text, ""
    return text, ""


def _get(obj: Any, attr: str) -> Any:
    name, _, index = attr.partition("[")
    value = getattr(obj, name)
    if index:
        i = int(index.rstrip("]"))
        return value[i] if i < len(value) else ""
    return value


def _set(obj: Any, attr: str, value: Any) -> None:
    name, _, index = attr.partition("[")
    if not index:
        setattr(obj, name, value)
        return
    items: list[Any] = getattr(obj, name)
    i = int(index.rstrip("]"))
    items.extend([""] * (i + 1 - len(items)))
    items[i] = value


# -- writer -------------------------------------------------------------------------------------


@cache
def _qname(step: str) -> str:
    m = _STEP.fullmatch(step)
    assert m is not None, step
    return f"{{{NS[m.group(1)]}}}{m.group(2)}"


@cache
def _compiled(path: str) -> etree.XPath:
    return etree.XPath(path, namespaces=NS)


@cache
def _clark(path: str) -> str:
    """A plain path in ElementPath's {namespace}name form."""
    return "/".join(_qname(step) for step in path.split("/"))


def _find(el: Any, path: str) -> list[Any]:
    """The nodes at `path` under `el`: plain paths by ElementPath (fast), those with a predicate or an
    attribute by XPath, compiled once (the table's paths are few, the documents many)."""
    if "[" in path or "@" in path:
        return cast(list[Any], _compiled(path)(el))
    return cast(list[Any], el.findall(_clark(path)))


def _child(el: Any, step: str, new: bool) -> Any:
    """The child `step` (with its predicate) of `el`, appended when there is none or `new`."""
    if not new:
        found = _find(el, step)
        if found:
            return found[0]
    return etree.SubElement(el, _qname(step.split("[", 1)[0]))


def _node(el: Any, path: str, new: bool = False) -> Any:
    steps = path.split("/")
    for step in steps[:-1]:
        el = _child(el, step, False)
    return _child(el, steps[-1], new)


def _write_term(el: Any, obj: Any, t: Term, doc: Document) -> None:
    if t.kind is Kind.NODE:
        _node(el, t.path)
        return
    if t.when is not None and not t.when(obj):
        return
    value = t.value if t.kind is Kind.CONST else _get(obj, t.attr)
    if value is None or value == [] or (value == "" and not t.always):
        return
    if "/@" in t.path:
        path, attribute = t.path.split("/@")
        _node(el, path).set(attribute, _text(t.kind, value))
        return
    for item in value if t.many else [value]:
        if t.many:  # the leaf's parent is the repeated element
            parent, _, leaf = t.path.rpartition("/")
            node = _child(_node(el, parent, new=True), leaf, True)
        else:
            node = _node(el, t.path, new=True)
        try:
            node.text = _text(t.kind, item)
        except ValueError as exc:  # a control character: XML 1.0 cannot carry it
            term = t.term.split("/")[0]
            raise InvalidArgument([FieldViolation(field_of(term) or term, f"cannot be written as XML: {exc}")]) from exc
        for name, fixed in t.attrs:
            node.set(name, fixed)
        if t.kind is Kind.DATE:
            node.set("format", DATE_FORMAT)
        if t.currency:
            node.set("currencyID", doc.currency)


def _write(el: Any, obj: Any, table: Table, doc: Document) -> None:
    for entry in table:
        if isinstance(entry, Term):
            _write_term(el, obj, entry, doc)
            continue
        value = getattr(obj, entry.attr)
        for item in value if entry.many else ([] if value is None else [value]):
            _write(_node(el, entry.path, new=True), item, entry.table, doc)


def document_xml(doc: Document) -> bytes:
    """The CII XML of `doc` (UTF-8, with declaration; indented, so a schema error's line points at it)."""
    root = etree.Element(f"{{{RSM}}}CrossIndustryInvoice", nsmap=NS)
    _write(root, doc, TABLE, doc)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


# -- reader -------------------------------------------------------------------------------------


def _read_term(el: Any, obj: Any, t: Term, where: str, errors: list[FieldViolation]) -> None:
    if t.kind in (Kind.CONST, Kind.NODE):
        return
    found = _find(el, t.path)
    path = f"{where}/{t.path}"
    if t.currency and len(found) > 1:
        found = [n for n in found if n.get("currencyID") == obj.currency] or found[:1]
    if not found:
        if t.required:
            errors.append(FieldViolation(path, f"is required ({t.term})"))
        return
    values = []
    for i, node in enumerate(found if t.many else found[:1]):
        raw = str(node) if isinstance(node, str) else node.text or ""
        value, why = _parse(t.kind, raw)
        if why:
            errors.append(FieldViolation(f"{path}[{i + 1}]" if t.many else path, f"{why} ({t.term})"))
            continue
        if t.kind is Kind.DATE and not isinstance(node, str) and node.get("format", DATE_FORMAT) != DATE_FORMAT:
            errors.append(FieldViolation(f"{path}/@format", f"must be {DATE_FORMAT} (YYYYMMDD) ({t.term})"))
            continue
        values.append(value)
    if t.many:
        _set(obj, t.attr, values)
    elif values:
        _set(obj, t.attr, values[0])


def _read(el: Any, obj: Any, table: Table, where: str, errors: list[FieldViolation]) -> Any:
    for entry in table:
        if isinstance(entry, Term):
            _read_term(el, obj, entry, where, errors)
            continue
        nodes = _find(el, entry.path)
        if entry.many:
            items = [
                _read(node, entry.make(), entry.table, f"{where}/{entry.path}[{i + 1}]", errors)
                for i, node in enumerate(nodes)
            ]
            setattr(obj, entry.attr, items)
        elif nodes:
            setattr(obj, entry.attr, _read(nodes[0], entry.make(), entry.table, f"{where}/{entry.path}", errors))
    return obj


def read_document(root: Any) -> Document:
    """The business terms of a CII invoice or credit note (a parsed, schema-valid root element); raises
    InvalidArgument naming the XPath of each value it cannot read."""
    if root.tag != f"{{{RSM}}}CrossIndustryInvoice":
        raise InvalidArgument([FieldViolation("/", f"is not a CII CrossIndustryInvoice: {root.tag}")])
    doc = Document("", "", date.min, "", Party(), Party(), [], [], ZERO, ZERO, ZERO, ZERO, ZERO)
    errors: list[FieldViolation] = []
    _read(root, doc, TABLE, ROOT, errors)
    if errors:
        raise InvalidArgument(errors)
    return doc
