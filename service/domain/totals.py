"""Totals rules (PRODUCT section 5, issue 13): lines are priced by the service; client totals are checked
exactly. Every amount is rounded to the currency's minor unit when it is computed (service/domain/money.py):

line gross        = round(quantity x unit_amount)
line discount     = round(gross x discount_percentage / 100), or as sent
line charge       = round(gross x charge_percentage / 100), or as sent (EN 16931 BG-28)
line.sub_total    = gross - discount + charge
tax item          = LINE: round(sub_total x tax_rate / 100); DOCUMENT_PER_RATE: round(sum of the sub totals
                    per tax group x rate / 100), spread over the items by largest remainder
line.tax_amount   = sum of its taxation items, else as sent
line.total        = sub_total + tax
allowance/charge  = round(base_amount x percentage / 100), or as sent (EN 16931 BG-20 / BG-21); base_amount
                    is the sum of line sub totals when empty. Its tax: LINE: round(+-amount x rate / 100);
                    DOCUMENT_PER_RATE: what brings its tax group to round(group taxable x rate / 100)
invoice.sub_total        = sum of line sub totals - allowances + charges (the tax exclusive amount, BT-109)
invoice.total_discount   = sum of line discounts + allowances
invoice.total_tax_amount = sum of line taxes + allowance/charge taxes + additional_tax_amount
invoice.total_amount     = sub_total + total_tax_amount
cash_rounding_amount     = total rounded to cash_rounding_increment - total (0 without an increment)
amount_due               = total_amount + cash_rounding_amount - payments - credit memos

A tax group is (tax category, rate) for items with a category, (tax_code or name, rate) for items without
one (as before categories existed); the breakdown has one row per group, so in DOCUMENT_PER_RATE each row's
tax is round(taxable x rate / 100) exactly (BR-CO-17). Category rules: service/domain/tax.py.

An invoice-level discount_percentage applies to every line without a discount of its own: the discount
round(sum of their gross x percentage / 100) is spread over them by largest remainder. additional_tax_amount
defaults to round(additional_tax_percentage x sub total). Totals are sums of rounded parts. Computed amounts
must fit the input format (20 integer digits), so whatever the service returns can be sent back.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from decimal import Decimal

from service.domain.errors import Violations
from service.domain.models import AllowanceCharge, Invoice, TaxationItem, TaxBreakdown, TaxCategory, TaxRateType
from service.domain.money import Rounding, Rules, TaxMode, exponent, to_increment
from service.domain.tax import RULES, Taxed, check_category, check_exemption_code
from service.domain.values import MAX_INT_DIGITS, ZERO

LIMIT = Decimal(10) ** MAX_INT_DIGITS
ADDITIONAL = "ADDITIONAL"  # the tax breakdown category of additional_tax_amount


def rules_of(inv: Invoice) -> Rules:
    return Rules(inv.currency, inv.rounding_mode or Rounding.HALF_UP, inv.tax_mode or TaxMode.LINE)


def _fits(v: Violations, path: str, value: Decimal) -> None:
    if abs(value) >= LIMIT:
        v.add(path, f"comes to {value:f}, beyond {MAX_INT_DIGITS} integer digits")


def _check(v: Violations, path: str, sent: Decimal | None, computed: Decimal, what: str) -> None:
    if sent is not None and sent != computed:
        v.add(path, f"is {sent:f} but {what} gives {computed:f}")


def client_amount(v: Violations, path: str, value: Decimal | None, r: Rules) -> Decimal | None:
    """A client-sent amount: no more decimals than the currency allows; returned at exactly its exponent."""
    if value is None:
        return None
    if not r.fits(value):
        v.add(
            path,
            f"has more decimals than {r.currency} allows ({r.exponent} after the point); got {value:f}",
        )
        return value
    return r.round(value)


def _client_amounts(inv: Invoice, r: Rules, v: Violations, path: str) -> None:
    for name in ("sub_total", "additional_tax_amount", "total_tax_amount", "total_discount", "total_amount"):
        setattr(inv, name, client_amount(v, f"{path}.{name}", getattr(inv, name), r))
    for i, line in enumerate(inv.lines):
        lp = f"{path}.line_items[{i}]"
        for name in ("discount_amount", "charge_amount", "sub_total", "tax_amount", "total_amount"):
            setattr(line, name, client_amount(v, f"{lp}.{name}", getattr(line, name), r))
        for j, item in enumerate(line.taxation_items):
            ip = f"{lp}.taxation_items[{j}]"
            item.tax_amount = client_amount(v, f"{ip}.tax_amount", item.tax_amount, r)
            item.exempt_amount = client_amount(v, f"{ip}.exempt_amount", item.exempt_amount, r)
            if item.tax_rate_type is TaxRateType.FLAT_FEE:  # a flat fee's rate is an amount
                item.tax_rate = client_amount(v, f"{ip}.tax_rate", item.tax_rate, r)
    for i, ac in enumerate(inv.allowance_charges):
        ap = f"{path}.allowance_charges[{i}]"
        ac.amount = client_amount(v, f"{ap}.amount", ac.amount, r)
        ac.base_amount = client_amount(v, f"{ap}.base_amount", ac.base_amount, r)
    if inv.cash_rounding_increment is not None:
        inc = inv.cash_rounding_increment
        if inc <= 0 or not r.fits(inc) or exponent(inv.currency) is None:
            v.add(
                f"{path}.cash_rounding_increment",
                f"must be a positive amount with at most {r.exponent} decimals of {inv.currency}; got {inc:f}",
            )


def _discounts(inv: Invoice, gross: list[Decimal], r: Rules) -> list[Decimal | None]:
    """The discount each line's percentage gives; lines inheriting the invoice's share one spread."""
    inherit = inv.discount_percentage
    out: list[Decimal | None] = [None] * len(inv.lines)
    group: list[int] = []
    for i, line in enumerate(inv.lines):
        if inherit is not None and line.discount_amount is None and line.discount_percentage is None:
            line.discount_percentage = inherit
        if line.discount_percentage is None:
            continue
        if inherit is not None and line.discount_percentage == inherit:
            group.append(i)
        else:
            out[i] = r.percent(gross[i], line.discount_percentage)
    if group and inherit is not None:
        weights = [gross[i] for i in group]
        for i, share in zip(group, r.spread(r.percent(sum(weights, ZERO), inherit), weights), strict=True):
            out[i] = share
    return out


GroupKey = tuple[TaxCategory | None, str, Decimal | None]


def _category(item: TaxationItem) -> str:
    return item.tax_category.value if item.tax_category is not None else item.tax_code or item.name


def tax_group(item: TaxationItem) -> GroupKey:
    """The breakdown row of an item: (category, label, rate); a flat fee has no rate."""
    rate = item.tax_rate if item.tax_rate_type is TaxRateType.PERCENTAGE else None
    return (item.tax_category, _category(item), rate)


def _ac_group(ac: AllowanceCharge) -> GroupKey:
    return (ac.tax_category, ac.tax_category.value if ac.tax_category is not None else "", ac.tax_rate)


def _check_categories(inv: Invoice, v: Violations, path: str) -> None:
    """The EN 16931 category rules of every taxation item and allowance/charge (service/domain/tax.py)."""
    for i, line in enumerate(inv.lines):
        for j, item in enumerate(line.taxation_items):
            ip = f"{path}.line_items[{i}].taxation_items[{j}]"
            check_exemption_code(v, f"{ip}.exemption_reason_code", item.exemption_reason_code)
            if item.tax_category is not None and item.tax_rate_type is TaxRateType.FLAT_FEE:
                v.add(f"{ip}.tax_rate_type", "a tax_category needs a percentage rate, not a flat fee")
                continue
            taxed = Taxed(
                item.tax_category, item.tax_rate, item.tax_amount, item.exemption_reason, item.exemption_reason_code
            )
            check_category(v, ip, taxed)
    for i, ac in enumerate(inv.allowance_charges):
        taxed = Taxed(ac.tax_category, ac.tax_rate, has_reason_fields=False, rate_rule_number="7" if ac.charge else "6")
        check_category(v, f"{path}.allowance_charges[{i}]", taxed)


def _computed_taxes(inv: Invoice, nets: list[Decimal], r: Rules, v: Violations, path: str) -> None:
    """Fills tax_amount of every item sent without one, in the invoice's tax rounding mode."""
    groups: dict[GroupKey, list[tuple[int, TaxationItem]]] = {}
    for i, line in enumerate(inv.lines):
        for j, item in enumerate(line.taxation_items):
            if item.tax_amount is not None:
                continue
            if item.tax_rate is None and item.tax_category is not None and RULES[item.tax_category].untaxed:
                item.tax_amount = r.round(ZERO)  # category O has no rate: no tax
            elif item.tax_rate is None:
                v.add(f"{path}.line_items[{i}].taxation_items[{j}].tax_amount", "tax_amount or tax_rate is required")
            elif item.tax_rate_type is TaxRateType.FLAT_FEE:
                item.tax_amount = item.tax_rate
            elif r.tax_mode is TaxMode.LINE:
                item.tax_amount = r.percent(nets[i], item.tax_rate)
            else:
                groups.setdefault(tax_group(item), []).append((i, item))
    for (_, _, rate), members in groups.items():
        weights = [nets[i] for i, _ in members]
        total = r.percent(sum(weights, ZERO), rate or ZERO)
        for (_, item), share in zip(members, r.spread(total, weights), strict=True):
            item.tax_amount = share


def _from_percentage(
    v: Violations, path: str, sent: Decimal | None, computed: Decimal | None, r: Rules, what: str
) -> Decimal:
    """An amount computed from a percentage when not sent, checked against it when sent; 0 without either."""
    if computed is not None:
        if sent is None:
            return computed
        _check(v, path, sent, computed, what)
    return sent if sent is not None else r.round(ZERO)


def price_lines(inv: Invoice, r: Rules, v: Violations, path: str) -> None:
    """Computes every line's amounts in place; disagreeing client values become violations."""
    gross = [r.round(line.quantity * line.unit_amount) for line in inv.lines]
    computed = _discounts(inv, gross, r)
    nets: list[Decimal] = []
    for i, line in enumerate(inv.lines):
        lp = f"{path}.line_items[{i}]"
        line.discount_amount = _from_percentage(
            v, f"{lp}.discount_amount", line.discount_amount, computed[i], r, "discount_percentage"
        )
        charge = None if line.charge_percentage is None else r.percent(gross[i], line.charge_percentage)
        line.charge_amount = _from_percentage(
            v, f"{lp}.charge_amount", line.charge_amount, charge, r, "charge_percentage"
        )
        net = gross[i] - line.discount_amount + line.charge_amount
        what = "round(quantity x unit_amount) - discount + charge"
        _check(v, f"{lp}.sub_total", line.sub_total, net, what)
        line.sub_total = net
        nets.append(net)
    _computed_taxes(inv, nets, r, v, path)
    for i, line in enumerate(inv.lines):
        lp = f"{path}.line_items[{i}]"
        if line.taxation_items:
            tax = sum((item.tax_amount or ZERO for item in line.taxation_items), r.round(ZERO))
            _check(v, f"{lp}.tax_amount", line.tax_amount, tax, "the sum of its taxation_items")
        else:
            tax = line.tax_amount if line.tax_amount is not None else r.round(ZERO)
        total = nets[i] + tax
        _check(v, f"{lp}.total_amount", line.total_amount, total, "sub_total + tax_amount")
        _fits(v, f"{lp}.total_amount", max(abs(gross[i]), abs(total)))
        line.tax_amount, line.total_amount = tax, total


def price_invoice(inv: Invoice, v: Violations, path: str = "invoice") -> None:
    """Fills every total of `inv` and checks the ones the client sent against them, exactly."""
    inv.rounding_mode = inv.rounding_mode or Rounding.HALF_UP
    inv.tax_mode = inv.tax_mode or TaxMode.LINE
    r = rules_of(inv)
    zero = r.round(ZERO)
    _client_amounts(inv, r, v, path)
    _check_categories(inv, v, path)
    if inv.lines:
        price_lines(inv, r, v, path)
        lines_net = sum((ln.sub_total or ZERO for ln in inv.lines), zero)
        ac_tax = _price_allowance_charges(inv, lines_net, r, v, path)
        sub_total = lines_net - inv.allowance_total_amount + inv.charge_total_amount
        additional = _additional_tax(inv, sub_total, r, v, path)
        discount = sum((ln.discount_amount or ZERO for ln in inv.lines), zero) + inv.allowance_total_amount
        tax = sum((ln.tax_amount or ZERO for ln in inv.lines), zero) + ac_tax + additional
        total = sub_total + tax
        what = "the sum of line sub totals - allowances + charges"
        _check(v, f"{path}.sub_total", inv.sub_total, sub_total, what)
        _check(v, f"{path}.total_discount", inv.total_discount, discount, "line discounts + allowances")
        what = "line taxes + allowance/charge taxes + additional_tax_amount"
        _check(v, f"{path}.total_tax_amount", inv.total_tax_amount, tax, what)
        _check(v, f"{path}.total_amount", inv.total_amount, total, "sub_total + total_tax_amount")
        inv.sub_total, inv.total_discount, inv.total_tax_amount, inv.total_amount = sub_total, discount, tax, total
    else:
        # Without lines (ledger-synced invoices) the totals are the client's, but must add up exactly.
        if inv.allowance_charges:
            v.add(f"{path}.allowance_charges", "need line_items: the service computes their totals from the lines")
        if inv.total_amount is None:
            v.add(f"{path}.total_amount", "is required when the invoice has no line_items")
            return
        tax = inv.total_tax_amount if inv.total_tax_amount is not None else zero
        _additional_tax(inv, inv.sub_total if inv.sub_total is not None else inv.total_amount - tax, r, v, path)
        if inv.sub_total is None:
            inv.sub_total = inv.total_amount - tax
        else:
            _check(v, f"{path}.total_amount", inv.total_amount, inv.sub_total + tax, "sub_total + total_tax_amount")
        inv.total_tax_amount = tax
        if inv.total_discount is None:
            inv.total_discount = zero
    if inv.additional_tax_amount is None:
        inv.additional_tax_amount = zero
    if inv.total_amount is not None:
        _fits(v, f"{path}.total_amount", inv.total_amount)
        if inv.total_amount < 0:
            v.add(f"{path}.total_amount", f"must not be negative; got {inv.total_amount:f}")
        inv.cash_rounding_amount = cash_rounding(inv.total_amount, inv.cash_rounding_increment, r)


def infer_modes(inv: Invoice) -> None:
    """For an imported vendor invoice without declared modes: when its amounts add up in another rounding
    than the default (e.g. tax per rate, half even), that rounding is recorded, so it round-trips unchanged."""
    if inv.rounding_mode is not None or inv.tax_mode is not None:
        return
    trials = [(rm, tm) for rm in (Rounding.HALF_UP, Rounding.HALF_EVEN) for tm in TaxMode]
    for rounding, tax_mode in trials:
        trial = copy.deepcopy(inv)
        trial.rounding_mode, trial.tax_mode = rounding, tax_mode
        v = Violations()
        price_invoice(trial, v)
        if not v:
            if (rounding, tax_mode) != trials[0]:
                inv.rounding_mode, inv.tax_mode = rounding, tax_mode
            return


def cash_rounding(total: Decimal, increment: Decimal | None, r: Rules) -> Decimal:
    """EN 16931 BT-114: what brings the total to a multiple of the smallest coin (0 without one)."""
    if increment is None or increment <= 0 or not r.fits(increment) or r.exponent is None:
        return r.round(ZERO)
    return r.round(to_increment(total, increment, r.rounding) - total)


def _additional_tax(inv: Invoice, sub_total: Decimal, r: Rules, v: Violations, path: str) -> Decimal:
    """additional_tax_amount, from additional_tax_percentage of the sub total when not sent."""
    if inv.additional_tax_percentage is not None:
        from_rate = r.percent(sub_total, inv.additional_tax_percentage)
        if inv.additional_tax_amount is None:
            inv.additional_tax_amount = from_rate
        else:
            _check(
                v, f"{path}.additional_tax_amount", inv.additional_tax_amount, from_rate, "additional_tax_percentage"
            )
    return inv.additional_tax_amount if inv.additional_tax_amount is not None else r.round(ZERO)


def _price_allowance_charges(inv: Invoice, lines_net: Decimal, r: Rules, v: Violations, path: str) -> Decimal:
    """Fills the amount and tax of every allowance/charge; returns their tax (allowances count negative)."""
    for i, ac in enumerate(inv.allowance_charges):
        ap = f"{path}.allowance_charges[{i}]"
        computed = None
        if ac.percentage is not None:  # of the line sub totals unless a base is given (kept empty then)
            base = ac.base_amount if ac.base_amount is not None else lines_net
            computed = r.percent(base, ac.percentage)
        elif ac.amount is None:
            v.add(f"{ap}.amount", "amount or percentage is required")
        ac.amount = _from_percentage(v, f"{ap}.amount", ac.amount, computed, r, "round(base_amount x percentage / 100)")
        ac.tax_amount = r.percent(ac.signed, ac.tax_rate) if ac.tax_rate is not None else r.round(ZERO)
    if r.tax_mode is TaxMode.DOCUMENT_PER_RATE:
        _group_allowance_charge_taxes(inv, r)
    return sum((ac.tax_amount or ZERO for ac in inv.allowance_charges), r.round(ZERO))


def _group_allowance_charge_taxes(inv: Invoice, r: Rules) -> None:
    """DOCUMENT_PER_RATE: the allowances/charges of a group take what brings the group's tax to
    round(group taxable x rate / 100), spread over them by largest remainder."""
    members: dict[GroupKey, list[AllowanceCharge]] = {}
    for ac in inv.allowance_charges:
        if ac.tax_rate is not None:
            members.setdefault(_ac_group(ac), []).append(ac)
    for key, acs in members.items():
        taxable = tax = ZERO
        for line in inv.lines:
            for item in line.taxation_items:
                if tax_group(item) == key:
                    taxable += line.sub_total or ZERO
                    tax += item.tax_amount or ZERO
        weights = [ac.signed for ac in acs]
        rest = r.percent(taxable + sum(weights, ZERO), key[2] or ZERO) - tax
        for ac, share in zip(acs, r.spread(rest, weights), strict=True):
            ac.tax_amount = share


TaxEntry = tuple[GroupKey, Decimal, Decimal, str, str]  # group, taxable, tax, exemption reason, its code


def group_taxes(entries: Iterable[TaxEntry], zero: Decimal) -> list[TaxBreakdown]:
    """The breakdown (EN 16931 BG-23) of taxed amounts: per group (category, label, rate), in the order first
    seen, the taxable and tax amounts summed from `zero` (the currency's exponent); the exemption reason and
    code of a group are the first ones an entry of it carries. An invoice's and a credit note's alike."""
    sums: dict[GroupKey, list[Decimal]] = {}
    reasons: dict[GroupKey, list[str]] = {}
    for key, taxable, tax, reason, code in entries:
        entry = sums.setdefault(key, [zero, zero])
        entry[0] += taxable
        entry[1] += tax
        seen = reasons.setdefault(key, ["", ""])
        seen[0], seen[1] = seen[0] or reason, seen[1] or code
    return [
        TaxBreakdown(label, rate, taxable, tax, category, *reasons[(category, label, rate)])
        for (category, label, rate), (taxable, tax) in sums.items()
    ]


def tax_breakdown(inv: Invoice) -> list[TaxBreakdown]:
    """Tax per group (category, rate), from the stored amounts; the tax amounts add up to total_tax_amount."""
    zero = rules_of(inv).round(ZERO)
    untaxed: GroupKey = (None, "", None)
    entries: list[TaxEntry] = []
    additional = inv.additional_tax_amount or zero
    if inv.lines:
        for line in inv.lines:
            net = line.sub_total or zero
            if not line.taxation_items:
                entries.append((untaxed, net, line.tax_amount or zero, "", ""))
            entries += [
                (tax_group(item), net, item.tax_amount or zero, item.exemption_reason, item.exemption_reason_code)
                for item in line.taxation_items
            ]
        entries += [(_ac_group(ac), ac.signed, ac.tax_amount or zero, "", "") for ac in inv.allowance_charges]
    elif inv.total_tax_amount is not None:
        entries.append((untaxed, inv.sub_total or zero, inv.total_tax_amount - additional, "", ""))
    if additional or inv.additional_tax_percentage is not None:
        entries.append(((None, ADDITIONAL, inv.additional_tax_percentage), inv.sub_total or zero, additional, "", ""))
    return group_taxes(entries, zero)


_INVOICE_AMOUNTS = (
    "sub_total",
    "additional_tax_amount",
    "total_tax_amount",
    "total_discount",
    "total_amount",
    "amount_due",
    "cash_rounding_amount",
)


def amounts(inv: Invoice) -> Iterable[tuple[str, Decimal | None]]:
    """Every amount of an invoice with its path (what must sit at the currency's exponent)."""
    for name in _INVOICE_AMOUNTS:
        yield name, getattr(inv, name)
    yield "amount_paid", inv.amount_paid
    yield "amount_credited", inv.amount_credited
    for i, line in enumerate(inv.lines):
        for name in ("discount_amount", "charge_amount", "sub_total", "tax_amount", "total_amount"):
            yield f"line_items[{i}].{name}", getattr(line, name)
        for j, item in enumerate(line.taxation_items):
            yield f"line_items[{i}].taxation_items[{j}].tax_amount", item.tax_amount
    for i, ac in enumerate(inv.allowance_charges):
        for name in ("amount", "base_amount", "tax_amount"):
            yield f"allowance_charges[{i}].{name}", getattr(ac, name)
    for i, a in enumerate(inv.allocations):
        yield f"payment_allocations[{i}].applied_amount", a.applied_amount
    for i, m in enumerate(inv.credit_memos):
        yield f"credit_memos[{i}].total_amount", m.total_amount


def expected_amount_due(inv: Invoice) -> Decimal:
    assert inv.total_amount is not None
    return inv.payable_amount - inv.amount_paid - inv.amount_credited
