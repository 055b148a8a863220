"""The vendor status tables in docs/ and in the README are the same tables."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _table_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_docs_and_readme_status_tables_are_identical() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Vendor status mapping") : readme.index("## Configuration")]
    docs = (ROOT / "docs" / "status-mapping.md").read_text()
    assert _table_rows(section) == _table_rows(docs)
    assert len(_table_rows(docs)) > 30
