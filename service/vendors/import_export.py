"""Import (vendor JSON -> domain Invoice) and export (Invoice -> vendor JSON) through a vendor's Shape. Pure.

Nothing is dropped. After an import the payload is compared with the export of what was imported; what the
export does not reproduce is kept in ``inv.supplemental_data[vendor]`` and put back on export:
- vendor fields no table maps are kept verbatim, nested as in the payload (line leftovers by position);
- mapped fields the vendor wrote differently (a lower-case currency, an unqualified date, a left-out
  default) are listed under ``"$verbatim"`` with the value the export gave at import time; the vendor's own
  text comes back only while the export still gives that value, so an edited invoice never gets stale data.
"""

from __future__ import annotations

from typing import Any, Final

from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.domain.models import Invoice, Status
from service.domain.money import round_amount
from service.domain.totals import infer_modes
from service.domain.values import ZERO
from service.vendors.fields import MISSING
from service.vendors.json_payload import decode, encode, json_type, normalize, same, tagged
from service.vendors.shapes import Vendor, read_shape, write_shape

VERBATIM: Final = "$verbatim"  # key of the list of mapped fields kept in the vendor's own form


# -- what an import keeps, and putting it back ---------------------------------------------------


def _diff(orig: Any, made: Any, path: list[str | int], verbatim: list[dict[str, Any]]) -> Any:
    """What of `orig` the export `made` does not reproduce, shaped like `orig`; None when nothing."""
    if isinstance(orig, dict) and isinstance(made, dict):
        kept: dict[str, Any] = {}
        for key, value in orig.items():
            if key not in made:
                kept[key] = value
            else:
                sub = _diff(value, made[key], [*path, key], verbatim)
                if sub is not None:
                    kept[key] = sub
        for key, value in made.items():
            if key not in orig:  # the export adds what the vendor left out: dropped again on export
                verbatim.append({"path": [*path, key], "as": value})
        return kept or None
    if (
        isinstance(orig, list)
        and isinstance(made, list)
        and len(orig) == len(made)
        and all(isinstance(o, dict) and isinstance(m, dict) for o, m in zip(orig, made, strict=True))
    ):
        parts = [_diff(o, m, [*path, i], verbatim) for i, (o, m) in enumerate(zip(orig, made, strict=True))]
        return [p or {} for p in parts] if any(p is not None for p in parts) else None
    if not same(orig, made):
        verbatim.append({"path": path, "raw": orig, "as": made})
    return None


def _step(cur: Any, key: Any) -> tuple[Any, Any]:
    """The container key to use at `cur` (indexes may come back from a Struct as floats), or MISSING."""
    if isinstance(cur, dict) and isinstance(key, str):
        return (key, cur[key]) if key in cur else (MISSING, MISSING)
    whole = isinstance(key, int) or (isinstance(key, float) and key.is_integer())
    if isinstance(cur, list) and whole and not isinstance(key, bool):
        index = int(key)
        return (index, cur[index]) if 0 <= index < len(cur) else (MISSING, MISSING)
    return MISSING, MISSING


def _restore_one(doc: dict[str, Any], entry: Any) -> None:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), list) or not entry["path"] or "as" not in entry:
        return  # a hand-edited entry that is not ours
    *parents, last = entry["path"]
    cur: Any = doc
    for key in parents:
        _, cur = _step(cur, key)
    if cur is MISSING:
        return
    key, current = _step(cur, last)
    if key is MISSING or not same(current, decode(entry["as"])):
        return  # the canonical value changed since the import: the export's value stands
    if "raw" in entry:
        cur[key] = decode(entry["raw"])
    else:
        del cur[key]


def _merge(made: Any, kept: Any) -> None:
    """Adds kept vendor fields the export does not write; the export wins wherever it has a value."""
    if isinstance(made, dict) and isinstance(kept, dict) and not tagged(kept):
        for key, value in kept.items():
            if key not in made:
                made[key] = decode(value)
            else:
                _merge(made[key], value)
    elif isinstance(made, list) and isinstance(kept, list) and len(made) == len(kept):
        for m, k in zip(made, kept, strict=True):
            _merge(m, k)


# -- entry points ---------------------------------------------------------------------------------


def raise_unique(v: Violations) -> None:
    """Raises once with every distinct violation (a bad parent object is reported by each child field)."""
    unique: list[FieldViolation] = list(dict.fromkeys(v.items))
    if unique:
        raise InvalidArgument(unique)


def import_invoice(vendor: Vendor, payload: Any) -> Invoice:
    v = Violations()
    doc = normalize(v, payload)
    if not isinstance(doc, dict):
        raise InvalidArgument([FieldViolation("invoice_json", f"must be a JSON object; got {json_type(payload)}")])
    inv = read_shape(vendor.shape, doc, v, "")
    raise_unique(v)
    assert isinstance(inv, Invoice)
    inv.company_id = inv.id = ""  # a client-side invoice: the create path assigns both
    if inv.status is Status.VOID and inv.amount_due:
        # A void invoice owes nothing; what the vendor still shows as due comes back on export (kept below).
        inv.amount_due = round_amount(ZERO, inv.currency) if inv.currency else ZERO  # as the create path stores it
    infer_modes(inv)
    verbatim: list[dict[str, Any]] = []
    kept = _diff(doc, write_shape(vendor.shape, inv), [], verbatim) or {}
    if verbatim:
        kept[VERBATIM] = verbatim
    inv.supplemental_data = {vendor.name: encode(kept)} if kept else None
    return inv


def export_invoice(vendor: Vendor, inv: Invoice) -> dict[str, Any]:
    out = write_shape(vendor.shape, inv)
    kept = (inv.supplemental_data or {}).get(vendor.name)
    if isinstance(kept, dict):
        entries = kept.get(VERBATIM)
        for entry in entries if isinstance(entries, list) else []:
            _restore_one(out, entry)
        _merge(out, {k: x for k, x in kept.items() if k != VERBATIM})
    return out
