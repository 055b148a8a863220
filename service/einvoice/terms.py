"""The EN 16931 semantic model: every business term (BT) and group (BG), and the canonical field that carries
it, or None where the canonical model does not carry it. Pure data.

This is the one place that says which canonical field a business term is. The syntax tables (`cii.py`,
`ubl.py`) say where each term sits in their XML; `docs/en16931.md` is this table printed
(`tests/test_einvoice_terms.py` keeps the two equal). Field paths are the `invoices.v1` proto names;
`[]` is every element of a repeated field, a bracketed condition picks elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Term:
    id: str  # "BT-1", "BG-4"
    name: str  # as EN 16931-1 names it
    field: str | None  # the canonical field; None: not carried
    note: str = ""  # how the value is derived, or what a credit note uses instead


def _t(id_: str, name: str, field: str | None = None, note: str = "") -> Term:
    return Term(id_, name, field, note)


FIXED = "fixed by the format"

TERMS_LIST: Final[tuple[Term, ...]] = (
    _t("BT-1", "Invoice number", "invoice_number", "credit notes: credit_note_number"),
    _t("BT-2", "Invoice issue date", "issue_date", "credit notes: issue_time's date"),
    _t("BT-3", "Invoice type code", None, "380 for an invoice, 381 for a credit note (the document's kind)"),
    _t("BT-5", "Invoice currency code", "currency"),
    _t("BT-6", "VAT accounting currency code"),
    _t("BT-7", "Value added tax point date"),
    _t("BT-8", "Value added tax point date code"),
    _t("BT-9", "Payment due date", "due_date"),
    _t("BT-10", "Buyer reference", "buyer_reference"),
    _t("BT-11", "Project reference"),
    _t("BT-12", "Contract reference"),
    _t("BT-13", "Purchase order reference", "purchase_order_reference"),
    _t("BT-14", "Sales order reference", "sales_order_refs[0].id"),
    _t("BT-15", "Receiving advice reference"),
    _t("BT-16", "Despatch advice reference"),
    _t("BT-17", "Tender or lot reference"),
    _t("BT-18", "Invoiced object identifier"),
    _t("BT-19", "Buyer accounting reference"),
    _t("BT-20", "Payment terms", "payment_terms.text"),
    _t("BG-1", "INVOICE NOTE", "note"),
    _t("BT-21", "Invoice note subject code"),
    _t("BT-22", "Invoice note", "note", "credit notes: reason"),
    _t("BG-2", "PROCESS CONTROL", None, FIXED),
    _t("BT-23", "Business process type", None, f"{FIXED} (Peppol BIS Billing 3.0 in UBL)"),
    _t("BT-24", "Specification identifier", None, f"{FIXED}: the EN 16931 (UBL: Peppol BIS 3.0) customization id"),
    _t("BG-3", "PRECEDING INVOICE REFERENCE", None, "credit notes: the corrected invoice"),
    _t("BT-25", "Preceding Invoice reference", None, "credit notes: invoice_number"),
    _t("BT-26", "Preceding Invoice issue date", None, "credit notes: invoice_issue_date"),
    _t("BG-4", "SELLER", "seller"),
    _t("BT-27", "Seller name", "seller.name"),
    _t("BT-28", "Seller trading name", "seller.trading_name"),
    _t("BT-29", "Seller identifier"),
    _t("BT-30", "Seller legal registration identifier", "seller.legal_registration_id"),
    _t("BT-31", "Seller VAT identifier", "seller.tax_registrations[scheme=VAT].id"),
    _t("BT-32", "Seller tax registration identifier", "seller.tax_registrations[scheme!=VAT].id"),
    _t("BT-33", "Seller additional legal information"),
    _t("BT-34", "Seller electronic address", "seller.contact.email", "scheme EM (e-mail)"),
    _t("BG-5", "SELLER POSTAL ADDRESS", "seller.address"),
    _t("BT-35", "Seller address line 1", "seller.address.address_lines[0]"),
    _t("BT-36", "Seller address line 2", "seller.address.address_lines[1]"),
    _t("BT-162", "Seller address line 3", "seller.address.address_lines[2]"),
    _t("BT-37", "Seller city", "seller.address.city"),
    _t("BT-38", "Seller post code", "seller.address.postal_code"),
    _t("BT-39", "Seller country subdivision", "seller.address.country_subdivision"),
    _t("BT-40", "Seller country code", "seller.address.country_code"),
    _t("BG-6", "SELLER CONTACT", "seller.contact"),
    _t("BT-41", "Seller contact point", "seller.contact.name"),
    _t("BT-42", "Seller contact telephone number", "seller.contact.phone"),
    _t("BT-43", "Seller contact email address", "seller.contact.email"),
    _t("BG-7", "BUYER", "buyer"),
    _t("BT-44", "Buyer name", "buyer.name", "customer_ref.company_name when buyer.name is empty"),
    _t("BT-45", "Buyer trading name", "buyer.trading_name"),
    _t("BT-46", "Buyer identifier", "customer_ref.id"),
    _t("BT-47", "Buyer legal registration identifier", "buyer.legal_registration_id"),
    _t("BT-48", "Buyer VAT identifier", "buyer.tax_registrations[scheme=VAT].id"),
    _t("BT-49", "Buyer electronic address", "buyer.contact.email", "scheme EM (e-mail)"),
    _t("BG-8", "BUYER POSTAL ADDRESS", "buyer.address"),
    _t("BT-50", "Buyer address line 1", "buyer.address.address_lines[0]"),
    _t("BT-51", "Buyer address line 2", "buyer.address.address_lines[1]"),
    _t("BT-163", "Buyer address line 3", "buyer.address.address_lines[2]"),
    _t("BT-52", "Buyer city", "buyer.address.city"),
    _t("BT-53", "Buyer post code", "buyer.address.postal_code"),
    _t("BT-54", "Buyer country subdivision", "buyer.address.country_subdivision"),
    _t("BT-55", "Buyer country code", "buyer.address.country_code"),
    _t("BG-9", "BUYER CONTACT", "buyer.contact"),
    _t("BT-56", "Buyer contact point", "buyer.contact.name"),
    _t("BT-57", "Buyer contact telephone number", "buyer.contact.phone"),
    _t("BT-58", "Buyer contact email address", "buyer.contact.email"),
    _t("BG-10", "PAYEE"),
    _t("BT-59", "Payee name"),
    _t("BT-60", "Payee identifier"),
    _t("BT-61", "Payee legal registration identifier"),
    _t("BG-11", "SELLER TAX REPRESENTATIVE PARTY"),
    _t("BT-62", "Seller tax representative name"),
    _t("BT-63", "Seller tax representative VAT identifier"),
    _t("BG-12", "SELLER TAX REPRESENTATIVE POSTAL ADDRESS"),
    _t("BT-64", "Tax representative address line 1"),
    _t("BT-65", "Tax representative address line 2"),
    _t("BT-164", "Tax representative address line 3"),
    _t("BT-66", "Tax representative city"),
    _t("BT-67", "Tax representative post code"),
    _t("BT-68", "Tax representative country subdivision"),
    _t("BT-69", "Tax representative country code"),
    _t("BG-13", "DELIVERY INFORMATION", "delivery"),
    _t("BT-70", "Deliver to party name", "delivery.name"),
    _t("BT-71", "Deliver to location identifier"),
    _t("BT-72", "Actual delivery date", "delivery.delivery_date"),
    _t("BG-14", "INVOICING PERIOD", "period_start, period_end"),
    _t("BT-73", "Invoicing period start date", "period_start"),
    _t("BT-74", "Invoicing period end date", "period_end"),
    _t("BG-15", "DELIVER TO ADDRESS", "delivery.address"),
    _t("BT-75", "Deliver to address line 1", "delivery.address.address_lines[0]"),
    _t("BT-76", "Deliver to address line 2", "delivery.address.address_lines[1]"),
    _t("BT-165", "Deliver to address line 3", "delivery.address.address_lines[2]"),
    _t("BT-77", "Deliver to city", "delivery.address.city"),
    _t("BT-78", "Deliver to post code", "delivery.address.postal_code"),
    _t("BT-79", "Deliver to country subdivision", "delivery.address.country_subdivision"),
    _t("BT-80", "Deliver to country code", "delivery.address.country_code"),
    _t("BG-16", "PAYMENT INSTRUCTIONS", "payment_means"),
    _t("BT-81", "Payment means type code", None, "58 (SEPA credit transfer) with an IBAN, else 30 (credit transfer)"),
    _t("BT-82", "Payment means text"),
    _t("BT-83", "Remittance information", "payment_means.payment_reference"),
    _t("BG-17", "CREDIT TRANSFER", "payment_means"),
    _t("BT-84", "Payment account identifier", "payment_means.iban", "payment_means.account_number without an IBAN"),
    _t("BT-85", "Payment account name", "payment_means.account_name"),
    _t("BT-86", "Payment service provider identifier", "payment_means.bic"),
    _t("BG-18", "PAYMENT CARD INFORMATION"),
    _t("BT-87", "Payment card primary account number"),
    _t("BT-88", "Payment card holder name"),
    _t("BG-19", "DIRECT DEBIT"),
    _t("BT-89", "Mandate reference identifier"),
    _t("BT-90", "Bank assigned creditor identifier"),
    _t("BT-91", "Debited account identifier"),
    _t("BG-20", "DOCUMENT LEVEL ALLOWANCES", "allowance_charges[charge=false]"),
    _t("BT-92", "Document level allowance amount", "allowance_charges[charge=false].amount"),
    _t(
        "BT-93",
        "Document level allowance base amount",
        "allowance_charges[charge=false].base_amount",
        "the line sub totals with a percentage and no base",
    ),
    _t("BT-94", "Document level allowance percentage", "allowance_charges[charge=false].percentage"),
    _t("BT-95", "Document level allowance VAT category code", "allowance_charges[charge=false].tax_category"),
    _t("BT-96", "Document level allowance VAT rate", "allowance_charges[charge=false].tax_rate"),
    _t("BT-97", "Document level allowance reason", "allowance_charges[charge=false].reason"),
    _t(
        "BT-98",
        "Document level allowance reason code",
        "allowance_charges[charge=false].reason_code",
        "95 (discount) without a reason",
    ),
    _t("BG-21", "DOCUMENT LEVEL CHARGES", "allowance_charges[charge=true]"),
    _t("BT-99", "Document level charge amount", "allowance_charges[charge=true].amount"),
    _t("BT-100", "Document level charge base amount", "allowance_charges[charge=true].base_amount"),
    _t("BT-101", "Document level charge percentage", "allowance_charges[charge=true].percentage"),
    _t("BT-102", "Document level charge VAT category code", "allowance_charges[charge=true].tax_category"),
    _t("BT-103", "Document level charge VAT rate", "allowance_charges[charge=true].tax_rate"),
    _t("BT-104", "Document level charge reason", "allowance_charges[charge=true].reason"),
    _t(
        "BT-105",
        "Document level charge reason code",
        "allowance_charges[charge=true].reason_code",
        "ZZZ (mutually defined) without a reason",
    ),
    _t("BG-22", "DOCUMENT TOTALS"),
    _t("BT-106", "Sum of Invoice line net amount", None, "the sum of line_items[].sub_total"),
    _t("BT-107", "Sum of allowances on document level", "allowance_total_amount"),
    _t("BT-108", "Sum of charges on document level", "charge_total_amount"),
    _t("BT-109", "Invoice total amount without VAT", "sub_total", "lines - allowances + charges"),
    _t("BT-110", "Invoice total VAT amount", "total_tax_amount"),
    _t("BT-111", "Invoice total VAT amount in accounting currency"),
    _t("BT-112", "Invoice total amount with VAT", "total_amount"),
    _t(
        "BT-113",
        "Paid amount",
        "amount_paid",
        "plus amount_credited (credit memos settle it too); credit notes: the total once issued",
    ),
    _t("BT-114", "Rounding amount", "cash_rounding_amount"),
    _t("BT-115", "Amount due for payment", "amount_due"),
    _t("BG-23", "VAT BREAKDOWN", "tax_breakdown"),
    _t("BT-116", "VAT category taxable amount", "tax_breakdown[].taxable_amount"),
    _t("BT-117", "VAT category tax amount", "tax_breakdown[].tax_amount"),
    _t("BT-118", "VAT category code", "tax_breakdown[].tax_category"),
    _t("BT-119", "VAT category rate", "tax_breakdown[].tax_rate"),
    _t(
        "BT-120",
        "VAT exemption reason text",
        "tax_breakdown[].exemption_reason",
        "the category's standard text when an exempt category gives none",
    ),
    _t("BT-121", "VAT exemption reason code", "tax_breakdown[].exemption_reason_code"),
    _t("BG-24", "ADDITIONAL SUPPORTING DOCUMENTS"),
    _t("BT-122", "Supporting document reference"),
    _t("BT-123", "Supporting document description"),
    _t("BT-124", "External document location"),
    _t("BT-125", "Attached document"),
    _t("BG-25", "INVOICE LINE", "line_items[]"),
    _t("BT-126", "Invoice line identifier", None, "the line's position (1, 2, ...); line ids are the service's"),
    _t("BT-127", "Invoice line note"),
    _t("BT-128", "Invoice line object identifier"),
    _t("BT-129", "Invoiced quantity", "line_items[].quantity"),
    _t(
        "BT-130",
        "Invoiced quantity unit of measure code",
        "line_items[].unit_of_measure",
        "C62 (one) when empty; credit notes: C62",
    ),
    _t("BT-131", "Invoice line net amount", "line_items[].sub_total"),
    _t("BT-132", "Referenced purchase order line reference"),
    _t("BT-133", "Invoice line Buyer accounting reference"),
    _t("BG-26", "INVOICE LINE PERIOD", "line_items[].service_start_date, service_end_date"),
    _t("BT-134", "Invoice line period start date", "line_items[].service_start_date"),
    _t("BT-135", "Invoice line period end date", "line_items[].service_end_date"),
    _t("BG-27", "INVOICE LINE ALLOWANCES", "line_items[].discount_amount"),
    _t("BT-136", "Invoice line allowance amount", "line_items[].discount_amount"),
    _t("BT-137", "Invoice line allowance base amount", None, "round(quantity x unit_amount) with a percentage"),
    _t("BT-138", "Invoice line allowance percentage", "line_items[].discount_percentage"),
    _t("BT-139", "Invoice line allowance reason"),
    _t("BT-140", "Invoice line allowance reason code", None, "95 (discount)"),
    _t("BG-28", "INVOICE LINE CHARGES", "line_items[].charge_amount"),
    _t("BT-141", "Invoice line charge amount", "line_items[].charge_amount"),
    _t("BT-142", "Invoice line charge base amount", None, "round(quantity x unit_amount) with a percentage"),
    _t("BT-143", "Invoice line charge percentage", "line_items[].charge_percentage"),
    _t("BT-144", "Invoice line charge reason", "line_items[].charge_reason"),
    _t("BT-145", "Invoice line charge reason code", "line_items[].charge_reason_code", "ZZZ without a reason"),
    _t("BG-29", "PRICE DETAILS"),
    _t("BT-146", "Item net price", "line_items[].unit_amount"),
    _t("BT-147", "Item price discount"),
    _t("BT-148", "Item gross price"),
    _t("BT-149", "Item price base quantity"),
    _t("BT-150", "Item price base quantity unit of measure code"),
    _t("BG-30", "LINE VAT INFORMATION", "line_items[].taxation_items[0]"),
    _t("BT-151", "Invoiced item VAT category code", "line_items[].taxation_items[0].tax_category"),
    _t("BT-152", "Invoiced item VAT rate", "line_items[].taxation_items[0].tax_rate"),
    _t("BG-31", "ITEM INFORMATION"),
    _t("BT-153", "Item name", "line_items[].description"),
    _t("BT-154", "Item description"),
    _t("BT-155", "Item Seller's identifier", "line_items[].sku"),
    _t("BT-156", "Item Buyer's identifier"),
    _t("BT-157", "Item standard identifier"),
    _t("BT-158", "Item classification identifier"),
    _t("BT-159", "Item country of origin"),
    _t("BG-32", "ITEM ATTRIBUTES"),
    _t("BT-160", "Item attribute name"),
    _t("BT-161", "Item attribute value"),
)

TERMS: Final[dict[str, Term]] = {t.id: t for t in TERMS_LIST}
CARRIED: Final[frozenset[str]] = frozenset(t.id for t in TERMS_LIST if t.field is not None and t.id.startswith("BT-"))


def field_of(term_id: str) -> str:
    """The canonical field a finding about `term_id` points at ("" when the term is not carried)."""
    term = TERMS.get(term_id)
    return term.field or "" if term else ""


def markdown() -> str:
    """docs/en16931.md: every business term with its canonical field, or "not carried"
    (regenerate with `python -m service.einvoice.terms > docs/en16931.md`)."""
    carried = sum(1 for t in TERMS_LIST if t.id.startswith("BT-") and t.field is not None)
    terms = sum(1 for t in TERMS_LIST if t.id.startswith("BT-"))
    rows = [
        "# EN 16931 business terms and the canonical model",
        "",
        "Every business term (BT) and group (BG) of EN 16931-1, with the `invoices.v1` field that carries it",
        "(the UBL and CII exports write it from there; imports read it back there). Generated from",
        "`service/einvoice/terms.py`; `tests/test_einvoice_terms.py` keeps this file equal to it.",
        f"{carried} of the {terms} business terms are carried.",
        "",
        "| term | name | canonical field | note |",
        "|---|---|---|---|",
    ]
    for t in TERMS_LIST:
        name = f"**{t.name}**" if t.id.startswith("BG-") else t.name
        field = f"`{t.field}`" if t.field else "not carried"
        rows.append(f"| {t.id} | {name} | {field} | {t.note} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
