"""An EN 16931 document as its business terms: the syntax-neutral middle between the canonical model and
XML. `semantic.py` maps the canonical Invoice / CreditNote to and from it (the BT ↔ canonical field rules,
once); `cii.py` and `ubl.py` place it in and read it from their XML (the BT ↔ XPath tables). Each attribute
names its term. Amounts are Decimal at the document currency's minor unit; None/"" is "absent". Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Final

INVOICE: Final = "380"  # UNTDID 1001 commercial invoice
CREDIT_NOTE: Final = "381"  # UNTDID 1001 credit note


@dataclass(slots=True)
class Address:  # BG-5 / BG-8 / BG-15
    lines: list[str] = field(default_factory=list)  # BT-35, BT-36, BT-162 (up to 3)
    city: str = ""  # BT-37
    postal_code: str = ""  # BT-38
    subdivision: str = ""  # BT-39
    country: str = ""  # BT-40 (ISO 3166-1 alpha-2)


@dataclass(slots=True)
class Party:  # BG-4 seller / BG-7 buyer (buyer term numbers in brackets)
    name: str = ""  # BT-27 [BT-44]
    trading_name: str = ""  # BT-28 [BT-45]
    identifier: str = ""  # BT-29 [BT-46]
    legal_id: str = ""  # BT-30 [BT-47]
    vat_id: str = ""  # BT-31 [BT-48]
    tax_id: str = ""  # BT-32 (seller only; scheme FC)
    electronic_address: str = ""  # BT-34 [BT-49]
    electronic_scheme: str = ""  # its scheme identifier (EAS code list, EM for e-mail)
    address: Address | None = None  # BG-5 [BG-8]
    contact_name: str = ""  # BT-41 [BT-56]
    contact_phone: str = ""  # BT-42 [BT-57]
    contact_email: str = ""  # BT-43 [BT-58]


@dataclass(slots=True)
class AllowanceCharge:  # BG-20 allowance / BG-21 charge (document), BG-27 / BG-28 (line: no category, rate)
    charge: bool
    amount: Decimal  # BT-92 / BT-99 / BT-136 / BT-141
    base_amount: Decimal | None = None  # BT-93 / BT-100 / BT-137 / BT-142
    percentage: Decimal | None = None  # BT-94 / BT-101 / BT-138 / BT-143
    category: str = ""  # BT-95 / BT-102 (document level only)
    rate: Decimal | None = None  # BT-96 / BT-103 (document level only)
    reason: str = ""  # BT-97 / BT-104 / BT-139 / BT-144
    reason_code: str = ""  # BT-98 / BT-105 / BT-140 / BT-145


@dataclass(slots=True)
class VatBreakdown:  # BG-23
    taxable_amount: Decimal  # BT-116
    tax_amount: Decimal  # BT-117
    category: str  # BT-118 (UNCL5305: S, Z, E, AE, K, G, O, L, M)
    rate: Decimal | None = None  # BT-119 (absent for O)
    exemption_reason: str = ""  # BT-120
    exemption_reason_code: str = ""  # BT-121 (VATEX code list)


@dataclass(slots=True)
class Line:  # BG-25
    id: str  # BT-126
    quantity: Decimal  # BT-129
    unit_code: str  # BT-130 (UN/ECE Rec 20/21)
    net_amount: Decimal  # BT-131
    net_price: Decimal  # BT-146
    name: str  # BT-153
    category: str  # BT-151
    rate: Decimal | None = None  # BT-152 (absent for O)
    period_start: date | None = None  # BT-134
    period_end: date | None = None  # BT-135
    allowances_charges: list[AllowanceCharge] = field(default_factory=list)  # BG-27 / BG-28
    seller_item_id: str = ""  # BT-155
    price_base_quantity: Decimal | None = None  # BT-149 (net amount = quantity * net price / this; None: 1)


@dataclass(slots=True)
class Document:
    type_code: str  # BT-3: INVOICE or CREDIT_NOTE
    number: str  # BT-1
    issue_date: date  # BT-2
    currency: str  # BT-5
    seller: Party  # BG-4
    buyer: Party  # BG-7
    lines: list[Line]  # BG-25
    vat_breakdown: list[VatBreakdown]  # BG-23
    line_total: Decimal  # BT-106
    tax_exclusive_total: Decimal  # BT-109
    tax_total: Decimal  # BT-110
    grand_total: Decimal  # BT-112
    due_payable: Decimal  # BT-115
    allowance_total: Decimal | None = None  # BT-107
    charge_total: Decimal | None = None  # BT-108
    paid_amount: Decimal | None = None  # BT-113
    rounding_amount: Decimal | None = None  # BT-114
    due_date: date | None = None  # BT-9
    buyer_reference: str = ""  # BT-10
    purchase_order_reference: str = ""  # BT-13
    sales_order_reference: str = ""  # BT-14
    payment_terms: str = ""  # BT-20
    notes: list[str] = field(default_factory=list)  # BG-1 / BT-22
    preceding_invoice: str = ""  # BT-25
    preceding_invoice_date: date | None = None  # BT-26
    delivery_name: str = ""  # BT-70
    delivery_date: date | None = None  # BT-72
    delivery_address: Address | None = None  # BG-15
    period_start: date | None = None  # BT-73
    period_end: date | None = None  # BT-74
    payment_means_code: str = ""  # BT-81 (UNCL4461; "" without payment instructions)
    remittance_information: str = ""  # BT-83
    payment_account: str = ""  # BT-84
    payment_account_name: str = ""  # BT-85
    payment_service_provider: str = ""  # BT-86
    allowances_charges: list[AllowanceCharge] = field(default_factory=list)  # BG-20 / BG-21
