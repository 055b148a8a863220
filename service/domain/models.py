"""The invoice aggregate as plain data. Amounts are Decimal; None means "not given"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from service.domain.money import Rounding, TaxMode, round_amount
from service.domain.parties import Delivery, Party, PaymentMeans, PaymentTerms
from service.domain.values import ZERO


class Status(StrEnum):
    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    PARTIALLY_PAID = "PARTIALLY_PAID"
    PAID = "PAID"
    VOID = "VOID"


class VoidReason(StrEnum):
    VOIDED = "VOIDED"
    CANCELED = "CANCELED"
    REVERSED = "REVERSED"
    WRITTEN_OFF = "WRITTEN_OFF"


class PaymentStatus(StrEnum):
    INITIATED = "INITIATED"
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    OVERPAID = "OVERPAID"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"


class InvoiceType(StrEnum):
    SUBSCRIPTION = "SUBSCRIPTION"
    ONE_OFF = "ONE_OFF"
    CREDIT = "CREDIT"


class BillingReason(StrEnum):
    SUBSCRIPTION_CREATE = "SUBSCRIPTION_CREATE"
    SUBSCRIPTION_CYCLE = "SUBSCRIPTION_CYCLE"
    SUBSCRIPTION_UPDATE = "SUBSCRIPTION_UPDATE"
    PRORATION = "PRORATION"
    MANUAL = "MANUAL"


class TaxRateType(StrEnum):
    PERCENTAGE = "PERCENTAGE"
    FLAT_FEE = "FLAT_FEE"


class TaxCategory(StrEnum):
    """EN 16931 VAT category codes (UNCL5305 subset); the rules of each are in domain/tax.py."""

    S = "S"  # standard rate
    Z = "Z"  # zero rated
    E = "E"  # exempt
    AE = "AE"  # reverse charge
    K = "K"  # intra-community supply
    G = "G"  # export outside the EU
    O = "O"  # noqa: E741 - the code's name; outside the scope of VAT
    L = "L"  # Canary Islands IGIC
    M = "M"  # Ceuta and Melilla IPSI


class CreditMemoReason(StrEnum):
    REVERSAL = "REVERSAL"
    WRITE_OFF = "WRITE_OFF"
    IMPORTED = "IMPORTED"  # a vendor's credit memo ImportInvoice took in (Zuora Posted, partly credited)
    CREDIT_NOTE = "CREDIT_NOTE"


class AllocationSource(StrEnum):
    PAYMENT = "PAYMENT"
    CREDIT_BALANCE = "CREDIT_BALANCE"
    IMPORTED = "IMPORTED"  # paid history ImportInvoice took in as a vendor's total, not a payment made here


FINALIZED = frozenset({Status.SUBMITTED, Status.PARTIALLY_PAID, Status.PAID})


@dataclass(slots=True)
class TaxationItem:
    id: str = ""
    line_item_id: str = ""
    name: str = ""
    tax_rate: Decimal | None = None
    tax_amount: Decimal | None = None
    tax_rate_type: TaxRateType = TaxRateType.PERCENTAGE
    exempt_amount: Decimal | None = None
    tax_code: str = ""
    tax_code_description: str = ""
    tax_rate_description: str = ""
    jurisdiction: str = ""
    location_code: str = ""
    tax_date: date | None = None
    create_time: datetime | None = None
    tax_category: TaxCategory | None = None
    exemption_reason: str = ""
    exemption_reason_code: str = ""


@dataclass(slots=True)
class LineItem:
    quantity: Decimal
    unit_amount: Decimal
    id: str = ""
    description: str = ""
    discount_amount: Decimal | None = None
    discount_percentage: Decimal | None = None
    sub_total: Decimal | None = None
    tax_amount: Decimal | None = None
    total_amount: Decimal | None = None
    service_start_date: date | None = None
    service_end_date: date | None = None
    sku: str = ""
    unit_of_measure: str = ""
    price_id: str = ""
    is_direct_income: bool = False
    # Codat references the rules never look at (itemRef, accountRef, taxRateRef, tracking...).
    refs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    charge_amount: Decimal | None = None  # EN 16931 BG-28, added to sub_total
    charge_percentage: Decimal | None = None
    charge_reason: str = ""
    charge_reason_code: str = ""
    taxation_items: list[TaxationItem] = field(default_factory=list)


@dataclass(slots=True)
class AllowanceCharge:
    """An invoice-level allowance (charge False) or charge (EN 16931 BG-20 / BG-21)."""

    charge: bool = False
    amount: Decimal | None = None  # never negative; the sign comes from `charge`
    base_amount: Decimal | None = None
    percentage: Decimal | None = None
    reason: str = ""
    reason_code: str = ""
    tax_category: TaxCategory | None = None
    tax_rate: Decimal | None = None
    tax_amount: Decimal | None = None  # computed: negative for an allowance

    @property
    def signed(self) -> Decimal:
        """What it adds to the tax exclusive amount."""
        amount = self.amount or ZERO
        return amount if self.charge else -amount


@dataclass(slots=True)
class PaymentAllocation:
    amount: Decimal  # allocation.total_amount, in `currency`
    currency: str
    applied_amount: Decimal = ZERO  # in the invoice's currency
    id: str = ""
    currency_rate: Decimal | None = None
    allocated_on_date: datetime | None = None
    payment: dict[str, Any] = field(default_factory=dict)  # Codat payment details, kept as sent
    source: AllocationSource = AllocationSource.PAYMENT
    create_time: datetime | None = None
    refunded_amount: Decimal = ZERO  # refunds of this payment (RecordRefund), at most applied_amount


@dataclass(slots=True)
class CreditMemo:
    reason: CreditMemoReason
    total_amount: Decimal
    currency: str
    id: str = ""
    invoice_id: str = ""
    comment: str = ""
    reason_code: str = ""
    create_time: datetime | None = None
    credit_note_id: str = ""  # the credit note that issued it
    credit_note_number: str = ""


@dataclass(frozen=True, slots=True)
class TaxBreakdown:
    """One (category, rate) of an invoice's tax (EN 16931 BG-23): what is taxed and the tax on it."""

    category: str  # the category code, else the tax items' tax_code, else their name; "" without items
    rate: Decimal | None  # the percentage; None for flat fees and amounts sent without a rate
    taxable_amount: Decimal
    tax_amount: Decimal
    tax_category: TaxCategory | None = None
    exemption_reason: str = ""
    exemption_reason_code: str = ""


@dataclass(slots=True)
class Invoice:
    company_id: str = ""
    id: str = ""
    invoice_number: str = ""
    customer_id: str = ""
    customer_name: str = ""
    issue_date: datetime | None = None
    due_date: datetime | None = None
    paid_on_date: datetime | None = None
    source_modified_date: datetime | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    currency: str = ""
    currency_rate: Decimal | None = None
    sub_total: Decimal | None = None
    additional_tax_amount: Decimal | None = None
    additional_tax_percentage: Decimal | None = None
    total_tax_amount: Decimal | None = None
    discount_percentage: Decimal | None = None
    total_discount: Decimal | None = None
    total_amount: Decimal | None = None
    amount_due: Decimal | None = None
    # Money rules (issue 13): None until priced, when the company's defaults fill what was not sent.
    rounding_mode: Rounding | None = None
    tax_mode: TaxMode | None = None
    cash_rounding_increment: Decimal | None = None  # EN 16931 BT-114, e.g. 0.05 CHF
    cash_rounding_amount: Decimal = ZERO  # added to total_amount to make the payable amount
    amount_refunded: Decimal = ZERO  # refunds of payments; they never reopen amount_due
    status: Status = Status.DRAFT
    void_reason: VoidReason | None = None
    payment_status: PaymentStatus | None = None
    vendor_status: str = ""
    note: str = ""
    invoice_type: InvoiceType | None = None
    billing_reason: BillingReason | None = None
    subscription_id: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    supplemental_data: dict[str, Any] | None = None
    withholding_tax: list[dict[str, Any]] = field(default_factory=list)
    sales_order_refs: list[dict[str, Any]] = field(default_factory=list)
    lines: list[LineItem] = field(default_factory=list)
    allowance_charges: list[AllowanceCharge] = field(default_factory=list)
    allocations: list[PaymentAllocation] = field(default_factory=list)
    credit_memos: list[CreditMemo] = field(default_factory=list)
    version: int = 0
    create_time: datetime | None = None
    modified_date: datetime | None = None
    finalize_time: datetime | None = None
    void_time: datetime | None = None
    sent_time: datetime | None = None
    # Parties (issue 16): the seller, terms and means are snapshots taken at finalization (None on drafts).
    seller: Party | None = None
    buyer: Party | None = None
    buyer_reference: str = ""
    purchase_order_reference: str = ""
    delivery: Delivery | None = None
    payment_terms: PaymentTerms | None = None
    payment_means: PaymentMeans | None = None
    # The digest of the logo the seller snapshot was taken with ("" none; None: drafts, and invoices issued
    # before logos were snapshotted, whose PDFs draw the live logo). Not on the wire: the PDF reads it.
    seller_logo: str | None = None

    @property
    def amount_paid(self) -> Decimal:
        return sum((a.applied_amount for a in self.allocations), round_amount(ZERO, self.currency))

    @property
    def amount_credited(self) -> Decimal:
        return sum((m.total_amount for m in self.credit_memos), round_amount(ZERO, self.currency))

    @property
    def allowance_total_amount(self) -> Decimal:
        zero = round_amount(ZERO, self.currency)
        return sum((a.amount or ZERO for a in self.allowance_charges if not a.charge), zero)

    @property
    def charge_total_amount(self) -> Decimal:
        zero = round_amount(ZERO, self.currency)
        return sum((a.amount or ZERO for a in self.allowance_charges if a.charge), zero)

    @property
    def payable_amount(self) -> Decimal:
        """total_amount + cash_rounding_amount (EN 16931 BT-115 before payments)."""
        return (self.total_amount or ZERO) + self.cash_rounding_amount

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    @property
    def is_finalized(self) -> bool:
        return self.status in FINALIZED
