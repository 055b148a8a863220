"""The business-term tables (issue 17): docs/en16931.md and the README's table are printed from
service/einvoice/terms.py (and the UBL and CII tables), and name every EN 16931 term once."""

from __future__ import annotations

import re

from service.einvoice import cii, docs, ubl
from service.einvoice.terms import CARRIED, TERMS, TERMS_LIST

FIX = "regenerate: python -m service.einvoice.docs"


def test_the_document_and_the_readme_are_the_tables_printed():
    assert docs.DOC.read_text() == docs.document(), FIX
    readme = docs.README.read_text()
    assert docs.readme(readme) == readme, FIX
    assert "| BT-31 | Seller VAT identifier | `seller.tax_registrations[scheme=VAT].id` |" in readme


def test_every_term_once_and_none_missing():
    ids = [t.id for t in TERMS_LIST]
    assert len(ids) == len(set(ids)) == len(TERMS)
    numbers = {int(i[3:]) for i in ids if i.startswith("BT-")}
    # EN 16931-1 numbers its terms BT-1 to BT-165; there is no BT-4.
    assert numbers == set(range(1, 166)) - {4}
    assert {int(i[3:]) for i in ids if i.startswith("BG-")} == set(range(1, 33))
    assert all(re.fullmatch(r"B[TG]-\d+", i) for i in ids)
    assert "BT-1" in CARRIED and "BT-29" not in CARRIED


def test_every_carried_term_has_a_place_in_both_syntaxes():
    in_ubl = {term for ids, _ in ubl.xpaths() for term in ids.split("/")}
    in_cii = {term for ids in cii.paths() for term in ids.split("/")}
    assert CARRIED - in_ubl == set()
    assert CARRIED - in_cii == set()
