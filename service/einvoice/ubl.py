"""EN 16931 in OASIS UBL 2.1 (Peppol BIS Billing 3.0): a Document written as a UBL Invoice or CreditNote, and
read back from one.

`TABLE` is the one BT ↔ XPath table: a tree of nodes in the UBL XSD sequence order, each with its path
relative to the group above it. The writer walks it appending children (so elements come out in schema
order); the reader walks it selecting children (so every error names the XPath of the element). An
Invoice and a CreditNote differ only where a node says so (`kind`, or a path pair (Invoice, CreditNote)).

Hand-written on purpose: no maintained Python library maps EN 16931 business terms to UBL both ways.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Any, Final

from lxml import etree

from service.domain.errors import FieldViolation, InvalidArgument
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
from service.einvoice.validation import parser

CUSTOMIZATION_ID: Final = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE_ID: Final = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

NS: Final = {
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "cn": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
_ROOT_TAG: Final = {INVOICE: f"{{{NS['inv']}}}Invoice", CREDIT_NOTE: f"{{{NS['cn']}}}CreditNote"}
# UNTDID 1001 codes written as a UBL CreditNote (Peppol BIS 3.0's credit note subset); any other is an Invoice.
CREDIT_NOTE_CODES: Final = frozenset({"81", "83", "381", "396", "532"})
# Peppol BIS 3.0: an order reference carries BT-13 even when only BT-14 is known; "NA" stands for "none".
_NO_ORDER: Final = "NA"
_DECIMAL: Final = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_BOOL: Final = {"true": True, "1": True, "false": False, "0": False}


def kind_of(type_code: str) -> str:
    """INVOICE or CREDIT_NOTE: which UBL root a BT-3 code is written as."""
    return CREDIT_NOTE if type_code in CREDIT_NOTE_CODES else INVOICE


class V(Enum):
    """How a leaf's text is written and parsed."""

    TEXT = "text"
    DATE = "date"  # xs:date, YYYY-MM-DD
    AMOUNT = "amount"  # decimal with currencyID = BT-5: amounts and unit prices
    DECIMAL = "decimal"  # percentages and quantities: no currency
    BOOL = "bool"  # UBL indicator: true/false (1/0 read too)


Path = str | tuple[str, str]  # one relative path, or (Invoice path, CreditNote path)


@dataclass(frozen=True, slots=True)
class Leaf:
    """One business term: the element at `path` holds attribute `attr` of the current object."""

    bt: str
    path: Path
    attr: str
    value: V = V.TEXT
    required: bool = False  # the Document cannot be built without it
    index: int | None = None  # element `index` of a list attribute (address lines)
    many: bool = False  # the attribute is a list, one element per item (notes)
    # (XML attribute, object attribute, term): the element's schemeID or unitCode
    xml_attrs: tuple[tuple[str, str, str], ...] = ()
    placeholder: str = ""  # written when the group exists without the term; read back as ""
    kind: str = ""  # INVOICE / CREDIT_NOTE: only in that document


@dataclass(frozen=True, slots=True)
class Const:
    """A fixed element written with its group (cac:TaxScheme/cbc:ID = VAT); not read."""

    path: str
    text: str
    bt: str = ""  # the term it fixes, if any


@dataclass(frozen=True, slots=True)
class Group:
    """An element holding other nodes. With `attr` it is a sub-object (`make`, or a list of them with
    `many`); without, it only nests the current object's terms and is written when one of them has a value."""

    bt: str
    path: Path
    children: tuple[Node, ...]
    attr: str = ""
    make: type[Any] | None = None
    many: bool = False
    required: bool = False
    # which of several elements: (relative path, text, equal) the one whose child has (or lacks) that text;
    # text None: the one that has (or lacks) that child
    match: tuple[str, str | None, bool] | None = None
    kind: str = ""


Node = Leaf | Const | Group


def _tax_scheme(id_: str = "VAT") -> Const:
    return Const("cac:TaxScheme/cbc:ID", id_)


def _address(path: str, attr: str, bg: str, ids: tuple[str, str, str, str, str, str, str]) -> Group:
    """BG-5 seller / BG-8 buyer / BG-15 deliver-to address; `ids`: its street, additional street, city, post
    code, subdivision, third line and country terms."""
    street, additional, city, post, subdivision, third, country = ids
    return Group(
        bg,
        path,
        attr=attr,
        make=Address,
        children=(
            Leaf(street, "cbc:StreetName", "lines", index=0),
            Leaf(additional, "cbc:AdditionalStreetName", "lines", index=1),
            Leaf(city, "cbc:CityName", "city"),
            Leaf(post, "cbc:PostalZone", "postal_code"),
            Leaf(subdivision, "cbc:CountrySubentity", "subdivision"),
            Leaf(third, "cac:AddressLine/cbc:Line", "lines", index=2),
            Leaf(country, "cac:Country/cbc:IdentificationCode", "country", required=True),
        ),
    )


_SELLER: Final = {
    "bg": "BG-4",
    "address": "BG-5",
    "name": "BT-27",
    "trading": "BT-28",
    "id": "BT-29",
    "legal": "BT-30",
    "vat": "BT-31",
    "endpoint": "BT-34",
    "scheme": "BT-34-1",
    "contact": "BG-6",
    "cname": "BT-41",
    "phone": "BT-42",
    "email": "BT-43",
}
_BUYER: Final = {
    "bg": "BG-7",
    "address": "BG-8",
    "name": "BT-44",
    "trading": "BT-45",
    "id": "BT-46",
    "legal": "BT-47",
    "vat": "BT-48",
    "endpoint": "BT-49",
    "scheme": "BT-49-1",
    "contact": "BG-9",
    "cname": "BT-56",
    "phone": "BT-57",
    "email": "BT-58",
}


def _party(path: str, attr: str, *, seller: bool) -> Group:
    """BG-4 seller / BG-7 buyer: the same UBL Party; the buyer has no tax registration (BT-32)."""
    t = _SELLER if seller else _BUYER
    seller_address = ("BT-35", "BT-36", "BT-37", "BT-38", "BT-39", "BT-162", "BT-40")
    buyer_address = ("BT-50", "BT-51", "BT-52", "BT-53", "BT-54", "BT-163", "BT-55")
    address = _address("cac:PostalAddress", "address", t["address"], seller_address if seller else buyer_address)
    tax_registration = Group(
        "BT-32",
        "cac:PartyTaxScheme",
        match=("cac:TaxScheme/cbc:ID", "VAT", False),
        children=(Leaf("BT-32", "cbc:CompanyID", "tax_id"), _tax_scheme("FC")),
    )
    return Group(
        t["bg"],
        path,
        attr=attr,
        make=Party,
        required=True,
        children=(
            Leaf(
                t["endpoint"],
                "cbc:EndpointID",
                "electronic_address",
                xml_attrs=(("schemeID", "electronic_scheme", t["scheme"]),),
            ),
            Leaf(t["id"], "cac:PartyIdentification/cbc:ID", "identifier"),
            Leaf(t["trading"], "cac:PartyName/cbc:Name", "trading_name"),
            address,
            Group(
                t["vat"],
                "cac:PartyTaxScheme",
                match=("cac:TaxScheme/cbc:ID", "VAT", True),
                children=(Leaf(t["vat"], "cbc:CompanyID", "vat_id"), _tax_scheme()),
            ),
            *((tax_registration,) if seller else ()),
            Group(
                t["name"],
                "cac:PartyLegalEntity",
                required=True,
                children=(
                    Leaf(t["name"], "cbc:RegistrationName", "name", required=True),
                    Leaf(t["legal"], "cbc:CompanyID", "legal_id"),
                ),
            ),
            Group(
                t["contact"],
                "cac:Contact",
                children=(
                    Leaf(t["cname"], "cbc:Name", "contact_name"),
                    Leaf(t["phone"], "cbc:Telephone", "contact_phone"),
                    Leaf(t["email"], "cbc:ElectronicMail", "contact_email"),
                ),
            ),
        ),
    )


def _allowance_charge(*, document_level: bool) -> Group:
    """BG-20 allowances / BG-21 charges with their VAT category, or BG-27 / BG-28 on a line: one UBL element
    told apart by its charge indicator (term ids: allowance/charge)."""
    category: tuple[Group, ...] = ()
    if document_level:
        bg, amount, base, pct = "BG-20/BG-21", "BT-92/BT-99", "BT-93/BT-100", "BT-94/BT-101"
        cat, rate, reason, code = "BT-95/BT-102", "BT-96/BT-103", "BT-97/BT-104", "BT-98/BT-105"
        category = (
            Group(
                cat,
                "cac:TaxCategory",
                children=(Leaf(cat, "cbc:ID", "category"), Leaf(rate, "cbc:Percent", "rate", V.DECIMAL), _tax_scheme()),
            ),
        )
    else:
        bg, amount, base, pct = "BG-27/BG-28", "BT-136/BT-141", "BT-137/BT-142", "BT-138/BT-143"
        reason, code = "BT-139/BT-144", "BT-140/BT-145"
    return Group(
        bg,
        "cac:AllowanceCharge",
        attr="allowances_charges",
        make=AllowanceCharge,
        many=True,
        children=(
            Leaf(bg, "cbc:ChargeIndicator", "charge", V.BOOL, required=True),
            Leaf(code, "cbc:AllowanceChargeReasonCode", "reason_code"),
            Leaf(reason, "cbc:AllowanceChargeReason", "reason"),
            Leaf(pct, "cbc:MultiplierFactorNumeric", "percentage", V.DECIMAL),
            Leaf(amount, "cbc:Amount", "amount", V.AMOUNT, required=True),
            Leaf(base, "cbc:BaseAmount", "base_amount", V.AMOUNT),
            *category,
        ),
    )


_LINE: Final = Group(
    "BG-25",
    ("cac:InvoiceLine", "cac:CreditNoteLine"),
    attr="lines",
    make=Line,
    many=True,
    required=True,
    children=(
        Leaf("BT-126", "cbc:ID", "id", required=True),
        Leaf(
            "BT-129",
            ("cbc:InvoicedQuantity", "cbc:CreditedQuantity"),
            "quantity",
            V.DECIMAL,
            required=True,
            xml_attrs=(("unitCode", "unit_code", "BT-130"),),
        ),
        Leaf("BT-131", "cbc:LineExtensionAmount", "net_amount", V.AMOUNT, required=True),
        Group(
            "BG-26",
            "cac:InvoicePeriod",
            children=(
                Leaf("BT-134", "cbc:StartDate", "period_start", V.DATE),
                Leaf("BT-135", "cbc:EndDate", "period_end", V.DATE),
            ),
        ),
        _allowance_charge(document_level=False),
        Group(
            "BG-31",
            "cac:Item",
            required=True,
            children=(
                Leaf("BT-153", "cbc:Name", "name", required=True),
                Leaf("BT-155", "cac:SellersItemIdentification/cbc:ID", "seller_item_id"),
                Group(
                    "BG-30",
                    "cac:ClassifiedTaxCategory",
                    required=True,
                    children=(
                        Leaf("BT-151", "cbc:ID", "category", required=True),
                        Leaf("BT-152", "cbc:Percent", "rate", V.DECIMAL),
                        _tax_scheme(),
                    ),
                ),
            ),
        ),
        Group(
            "BG-29",
            "cac:Price",
            required=True,
            children=(
                Leaf("BT-146", "cbc:PriceAmount", "net_price", V.AMOUNT, required=True),
                # BT-150 is BT-130's unit (Peppol PEPPOL-EN16931-R130): written from the line, not read
                Leaf(
                    "BT-149",
                    "cbc:BaseQuantity",
                    "price_base_quantity",
                    V.DECIMAL,
                    xml_attrs=(("unitCode", "unit_code", "BT-150"),),
                ),
            ),
        ),
    ),
)

TABLE: Final = Group(
    "BG-0",
    "",
    children=(
        Const("cbc:CustomizationID", CUSTOMIZATION_ID, "BT-24"),
        Const("cbc:ProfileID", PROFILE_ID, "BT-23"),
        Leaf("BT-1", "cbc:ID", "number", required=True),
        Leaf("BT-2", "cbc:IssueDate", "issue_date", V.DATE, required=True),
        Leaf("BT-9", "cbc:DueDate", "due_date", V.DATE, kind=INVOICE),
        Leaf("BT-3", ("cbc:InvoiceTypeCode", "cbc:CreditNoteTypeCode"), "type_code", required=True),
        Leaf("BT-22", "cbc:Note", "notes", many=True),
        Leaf("BT-5", "cbc:DocumentCurrencyCode", "currency", required=True),
        Leaf("BT-10", "cbc:BuyerReference", "buyer_reference"),
        Group(
            "BG-14",
            "cac:InvoicePeriod",
            children=(
                Leaf("BT-73", "cbc:StartDate", "period_start", V.DATE),
                Leaf("BT-74", "cbc:EndDate", "period_end", V.DATE),
            ),
        ),
        Group(
            "BT-13",
            "cac:OrderReference",
            children=(
                Leaf("BT-13", "cbc:ID", "purchase_order_reference", placeholder=_NO_ORDER),
                Leaf("BT-14", "cbc:SalesOrderID", "sales_order_reference"),
            ),
        ),
        Group(
            "BG-3",
            "cac:BillingReference/cac:InvoiceDocumentReference",
            children=(
                Leaf("BT-25", "cbc:ID", "preceding_invoice"),
                Leaf("BT-26", "cbc:IssueDate", "preceding_invoice_date", V.DATE),
            ),
        ),
        _party("cac:AccountingSupplierParty/cac:Party", "seller", seller=True),
        _party("cac:AccountingCustomerParty/cac:Party", "buyer", seller=False),
        Group(
            "BG-13",
            "cac:Delivery",
            children=(
                Leaf("BT-72", "cbc:ActualDeliveryDate", "delivery_date", V.DATE),
                _address(
                    "cac:DeliveryLocation/cac:Address",
                    "delivery_address",
                    "BG-15",
                    ("BT-75", "BT-76", "BT-77", "BT-78", "BT-79", "BT-165", "BT-80"),
                ),
                Leaf("BT-70", "cac:DeliveryParty/cac:PartyName/cbc:Name", "delivery_name"),
            ),
        ),
        Group(
            "BG-16",
            "cac:PaymentMeans",
            children=(
                Leaf("BT-81", "cbc:PaymentMeansCode", "payment_means_code"),
                Leaf("BT-9", "cbc:PaymentDueDate", "due_date", V.DATE, kind=CREDIT_NOTE),
                Leaf("BT-83", "cbc:PaymentID", "remittance_information"),
                Group(
                    "BG-17",
                    "cac:PayeeFinancialAccount",
                    children=(
                        Leaf("BT-84", "cbc:ID", "payment_account"),
                        Leaf("BT-85", "cbc:Name", "payment_account_name"),
                        Leaf("BT-86", "cac:FinancialInstitutionBranch/cbc:ID", "payment_service_provider"),
                    ),
                ),
            ),
        ),
        Leaf("BT-20", "cac:PaymentTerms/cbc:Note", "payment_terms"),
        _allowance_charge(document_level=True),
        Group(
            "BT-110",
            "cac:TaxTotal",
            required=True,
            match=("cac:TaxSubtotal", None, True),  # not the one in the VAT accounting currency (BT-111)
            children=(
                Leaf("BT-110", "cbc:TaxAmount", "tax_total", V.AMOUNT, required=True),
                Group(
                    "BG-23",
                    "cac:TaxSubtotal",
                    attr="vat_breakdown",
                    make=VatBreakdown,
                    many=True,
                    children=(
                        Leaf("BT-116", "cbc:TaxableAmount", "taxable_amount", V.AMOUNT, required=True),
                        Leaf("BT-117", "cbc:TaxAmount", "tax_amount", V.AMOUNT, required=True),
                        Group(
                            "BT-118",
                            "cac:TaxCategory",
                            children=(
                                Leaf("BT-118", "cbc:ID", "category", required=True),
                                Leaf("BT-119", "cbc:Percent", "rate", V.DECIMAL),
                                Leaf("BT-121", "cbc:TaxExemptionReasonCode", "exemption_reason_code"),
                                Leaf("BT-120", "cbc:TaxExemptionReason", "exemption_reason"),
                                _tax_scheme(),
                            ),
                        ),
                    ),
                ),
            ),
        ),
        Group(
            "BG-22",
            "cac:LegalMonetaryTotal",
            required=True,
            children=(
                Leaf("BT-106", "cbc:LineExtensionAmount", "line_total", V.AMOUNT, required=True),
                Leaf("BT-109", "cbc:TaxExclusiveAmount", "tax_exclusive_total", V.AMOUNT, required=True),
                Leaf("BT-112", "cbc:TaxInclusiveAmount", "grand_total", V.AMOUNT, required=True),
                Leaf("BT-107", "cbc:AllowanceTotalAmount", "allowance_total", V.AMOUNT),
                Leaf("BT-108", "cbc:ChargeTotalAmount", "charge_total", V.AMOUNT),
                Leaf("BT-113", "cbc:PrepaidAmount", "paid_amount", V.AMOUNT),
                Leaf("BT-114", "cbc:PayableRoundingAmount", "rounding_amount", V.AMOUNT),
                Leaf("BT-115", "cbc:PayableAmount", "due_payable", V.AMOUNT, required=True),
            ),
        ),
        _LINE,
    ),
)


def _path_for(path: Path, kind: str) -> str:
    if isinstance(path, tuple):
        return path[0] if kind == INVOICE else path[1]
    return path


def _qname(step: str) -> str:
    prefix, _, local = step.partition(":")
    return f"{{{NS[prefix]}}}{local}"


def _steps(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def _predicate(match: tuple[str, str | None, bool] | None) -> str:
    if match is None:
        return ""
    path, text, equal = match
    test = path if text is None else f"{path}='{text}'"
    return f"[{test}]" if equal else f"[not({test})]"


def xpaths(kind: str = INVOICE) -> list[tuple[str, str]]:
    """(business term, absolute XPath) for every term the table places, in document order: the table
    printed (for docs/ and tests)."""
    root = "/Invoice" if kind == INVOICE else "/CreditNote"
    rows: list[tuple[str, str]] = []

    def walk(nodes: tuple[Node, ...], where: str) -> None:
        for node in nodes:
            if isinstance(node, Const):
                if node.bt:
                    rows.append((node.bt, f"{where}/{node.path}"))
                continue
            if node.kind and node.kind != kind:
                continue
            path = f"{where}/{_path_for(node.path, kind)}"
            if isinstance(node, Leaf):
                rows.append((node.bt, path))
                rows.extend((bt, f"{path}/@{xml_attr}") for xml_attr, _, bt in node.xml_attrs)
            else:
                if node.attr:
                    rows.append((node.bt, path + _predicate(node.match)))
                walk(node.children, path + _predicate(node.match))

    walk(TABLE.children, root)
    return rows


# -- writing ---------------------------------------------------------------------------------------------


def _text(value: Any, how: V) -> str:
    if how is V.BOOL:
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never an exponent; the document's own scale
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _leaf_values(leaf: Leaf, obj: Any) -> list[Any]:
    value = getattr(obj, leaf.attr)
    if leaf.many:
        return [v for v in value if _present(v)]
    if leaf.index is not None:
        value = value[leaf.index] if leaf.index < len(value) else ""
    if leaf.value is V.BOOL:
        return [value]
    return [value] if _present(value) else []


class _Writer:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.kind = kind_of(doc.type_code)

    def applies(self, node: Leaf | Group) -> bool:
        return not node.kind or node.kind == self.kind

    def has_content(self, node: Node, obj: Any) -> bool:
        """Whether writing the node under `obj` writes a business term."""
        if isinstance(node, Const):
            return False
        if not self.applies(node):
            return False
        if isinstance(node, Leaf):
            return bool(_leaf_values(node, obj)) and node.value is not V.BOOL
        if node.attr:
            return _present(getattr(obj, node.attr))
        return any(self.has_content(c, obj) for c in node.children)

    def make(self, parent: Any, path: str) -> Any:
        el = parent
        for step in _steps(path):
            el = etree.SubElement(el, _qname(step))
        return el

    def write(self, parent: Any, nodes: tuple[Node, ...], obj: Any) -> None:
        for node in nodes:
            if isinstance(node, Const):
                self.make(parent, node.path).text = node.text
            elif isinstance(node, Leaf):
                if self.applies(node):
                    self.leaf(parent, node, obj)
            elif self.applies(node):
                self.group(parent, node, obj)

    def leaf(self, parent: Any, leaf: Leaf, obj: Any) -> None:
        values = _leaf_values(leaf, obj)
        if not values and leaf.placeholder:
            values = [leaf.placeholder]
        for value in values:
            el = self.make(parent, _path_for(leaf.path, self.kind))
            el.text = _text(value, leaf.value)
            if leaf.value is V.AMOUNT:
                el.set("currencyID", self.doc.currency)
            for xml_attr, attr, _ in leaf.xml_attrs:
                if getattr(obj, attr):
                    el.set(xml_attr, getattr(obj, attr))

    def group(self, parent: Any, group: Group, obj: Any) -> None:
        path = _path_for(group.path, self.kind)
        if not group.attr:
            if self.has_content(group, obj):
                self.write(self.make(parent, path), group.children, obj)
            return
        value = getattr(obj, group.attr)
        for item in value if group.many else [value] if value is not None else []:
            self.write(self.make(parent, path), group.children, item)


def document_xml(doc: Document) -> bytes:
    """The Document as a UBL 2.1 Invoice (or CreditNote for a credit note type code), UTF-8."""
    writer = _Writer(doc)
    nsmap: dict[Any, str] = {None: NS["inv" if writer.kind == INVOICE else "cn"], "cac": NS["cac"], "cbc": NS["cbc"]}
    root = etree.Element(_ROOT_TAG[writer.kind], nsmap=nsmap)
    writer.write(root, TABLE.children, doc)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# -- reading ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Reader:
    kind: str
    currency: str = ""
    violations: list[FieldViolation] = field(default_factory=list)

    def bad(self, path: str, why: str) -> None:
        self.violations.append(FieldViolation(path, why))

    def select(self, el: Any, path: str) -> Iterator[Any]:
        """Elements at a relative path: every element of the last step, the first of each earlier one."""
        steps = _steps(path)
        for step in steps[:-1]:
            el = el.find(_qname(step))
            if el is None:
                return iter(())
        return iter(el.findall(_qname(steps[-1])))

    def parse(self, el: Any, leaf: Leaf, where: str) -> Any:
        text = (el.text or "").strip()
        if leaf.value is V.TEXT:
            return text
        if leaf.value is V.DATE:
            if _DATE.fullmatch(text):
                try:
                    return date.fromisoformat(text)
                except ValueError:
                    pass
            self.bad(where, f"not a date (YYYY-MM-DD): {text!r}")
            return None
        if leaf.value is V.BOOL:
            if text not in _BOOL:
                self.bad(where, f"not true or false: {text!r}")
            return _BOOL.get(text, False)
        if not _DECIMAL.fullmatch(text):
            self.bad(where, f"not a decimal number: {text!r}")
            return None
        if leaf.value is V.AMOUNT:
            currency = el.get("currencyID")
            if currency is None:
                self.bad(f"{where}/@currencyID", "missing: every amount names its currency")
            elif self.currency and currency != self.currency:
                self.bad(f"{where}/@currencyID", f"{currency!r} is not the document currency {self.currency!r}")
        return Decimal(text)

    def read(self, el: Any, nodes: tuple[Node, ...], where: str, values: dict[str, Any]) -> None:
        for node in nodes:
            if isinstance(node, Const) or (node.kind and node.kind != self.kind):
                continue
            if isinstance(node, Leaf):
                self.leaf(el, node, where, values)
            else:
                self.group(el, node, where, values)

    def leaf(self, el: Any, leaf: Leaf, where: str, values: dict[str, Any]) -> None:
        path = _path_for(leaf.path, self.kind)
        found = list(self.select(el, path))
        if not found:
            if leaf.required:
                self.bad(f"{where}/{path}", "missing")
            return
        for i, child in enumerate(found if leaf.many else found[:1]):
            at = f"{where}/{path}" + (f"[{i + 1}]" if leaf.many else "")
            value = self.parse(child, leaf, at)
            if leaf.required and leaf.value is V.TEXT and not value.strip():
                self.bad(at, "empty")
            if leaf.placeholder and value == leaf.placeholder:
                value = ""
            if leaf.many:
                values.setdefault(leaf.attr, []).append(value)
            elif leaf.index is not None:
                lines = values.setdefault(leaf.attr, ["", "", ""])
                lines[leaf.index] = value
            else:
                values[leaf.attr] = value
            for xml_attr, attr, _ in leaf.xml_attrs:
                if attr not in values:  # the first element naming it is the term (BT-130 before BT-150)
                    values[attr] = child.get(xml_attr, "")
                if leaf.required and not child.get(xml_attr):
                    self.bad(f"{at}/@{xml_attr}", "missing")

    def matches(self, el: Any, match: tuple[str, str | None, bool] | None) -> bool:
        if match is None:
            return True
        path, text, equal = match
        found = [(e.text or "").strip().upper() for e in self.select(el, path)]
        return (bool(found) if text is None else text in found) == equal

    def group(self, el: Any, group: Group, where: str, values: dict[str, Any]) -> None:
        path = _path_for(group.path, self.kind)
        found = [e for e in self.select(el, path) if self.matches(e, group.match)]
        if not found:
            if group.required:
                self.bad(f"{where}/{path}", "missing")
            if group.many:
                values[group.attr] = []
            return
        if not group.attr:
            self.read(found[0], group.children, f"{where}/{path}", values)
            return
        items = []
        for i, child in enumerate(found if group.many else found[:1]):
            at = f"{where}/{path}" + (f"[{i + 1}]" if group.many else "")
            sub: dict[str, Any] = {}
            self.read(child, group.children, at, sub)
            if group.make is Address and "lines" in sub:  # BT-35/36/162 by position: no trailing empty line
                while sub["lines"] and not sub["lines"][-1]:
                    sub["lines"].pop()
            items.append(sub)
        if self.violations:
            return  # a required term is missing somewhere: nothing to build
        assert group.make is not None
        built = [group.make(**sub) for sub in items]
        values[group.attr] = built if group.many else built[0]


def read_document(root: Any) -> Document:
    """The Document a parsed UBL Invoice or CreditNote carries. InvalidArgument names the XPath of every
    missing mandatory or unparseable element."""
    kinds = {tag: kind for kind, tag in _ROOT_TAG.items()}
    kind = kinds.get(root.tag) if isinstance(root.tag, str) else None
    if kind is None:
        raise InvalidArgument([FieldViolation("/", f"not a UBL Invoice or CreditNote: {root.tag}")])
    where = "/" + etree.QName(root).localname
    reader = _Reader(kind)
    currency = root.find(_qname("cbc:DocumentCurrencyCode"))
    reader.currency = (currency.text or "").strip() if currency is not None else ""
    values: dict[str, Any] = {}
    reader.read(root, TABLE.children, where, values)
    if reader.violations:
        raise InvalidArgument(reader.violations)
    return Document(**values)


def read_xml(xml: bytes) -> Document:
    """read_document of bytes from outside, parsed by the one safe parser (no entities, no network, bounded
    depth); XML that does not parse is InvalidArgument at "/"."""
    try:
        root = etree.fromstring(xml, parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidArgument([FieldViolation("/", f"not well-formed XML: {exc}")]) from None
    return read_document(root)
