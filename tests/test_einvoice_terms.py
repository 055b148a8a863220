"""The business-term table (issue 17): docs/en16931.md is service/einvoice/terms.py printed, and the table
names every EN 16931 term once."""

from __future__ import annotations

import re
from pathlib import Path

from service.einvoice.terms import CARRIED, TERMS, TERMS_LIST, markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "en16931.md"


def test_the_document_is_the_table_printed():
    assert DOC.read_text() == markdown(), "regenerate: python -m service.einvoice.terms > docs/en16931.md"


def test_every_term_once_and_none_missing():
    ids = [t.id for t in TERMS_LIST]
    assert len(ids) == len(set(ids)) == len(TERMS)
    numbers = {int(i[3:]) for i in ids if i.startswith("BT-")}
    # EN 16931-1 numbers its terms BT-1 to BT-165; BT-4 was withdrawn from the norm.
    assert numbers == set(range(1, 166)) - {4}
    assert {int(i[3:]) for i in ids if i.startswith("BG-")} == set(range(1, 33))
    assert all(re.fullmatch(r"B[TG]-\d+", i) for i in ids)
    assert "BT-1" in CARRIED and "BT-29" not in CARRIED
