"""Attachment rules of service/domain/attachments.py as tables: names, the extension and content-type
allowlist, size and count limits. Pure: no I/O."""

from __future__ import annotations

import pytest

from service.domain.attachments import LimitExceeded, Limits, check_count, check_size, check_upload, extension
from service.domain.errors import Violations

LIMITS = Limits(max_bytes=1000, max_per_invoice=3)


@pytest.mark.parametrize(
    ("name", "content_type", "limits", "stored", "fields"),
    [
        ("invoice.pdf", "application/pdf", LIMITS, "application/pdf", []),
        ("invoice.PDF", "", LIMITS, "application/pdf", []),
        ("scan.jpg", "IMAGE/JPEG; charset=binary", LIMITS, "image/jpeg", []),
        ("data.csv", "application/csv", LIMITS, "application/csv", []),
        ("invoice.pdf", "image/png", LIMITS, "image/png", ["metadata.content_type"]),
        ("run.exe", "application/octet-stream", LIMITS, "application/octet-stream", ["metadata.name"]),
        ("README", "text/plain", LIMITS, "text/plain", ["metadata.name"]),
        (".pdf", "application/pdf", LIMITS, "application/pdf", ["metadata.name"]),
        ("dir/invoice.pdf", "application/pdf", LIMITS, "application/pdf", ["metadata.name"]),
        ("dir\\invoice.pdf", "application/pdf", LIMITS, "application/pdf", ["metadata.name"]),
        (" invoice.pdf", "application/pdf", LIMITS, "application/pdf", ["metadata.name"]),
        ("", "", LIMITS, "application/octet-stream", ["metadata.name"]),
        ("a" * 252 + ".pdf", "application/pdf", LIMITS, "application/pdf", ["metadata.name"]),
        ("in\x00voice.pdf", "application/pdf", LIMITS, "application/pdf", ["metadata.name"]),
        ("invoice.xml", "text/xml", Limits(extensions=frozenset({".pdf"})), "text/xml", ["metadata.name"]),
    ],
    ids=["allowed", "extension_any_case_type_from_extension", "type_parameters_dropped_lower_cased",
         "second_type_of_extension", "type_must_match_extension", "extension_not_allowed", "no_extension",
         "dot_file_has_no_extension", "no_directories", "no_backslash_directories", "no_surrounding_spaces",
         "name_required", "name_at_most_255", "no_control_characters", "configured_allowlist"],
)  # fmt: skip
def test_check_upload(name: str, content_type: str, limits: Limits, stored: str, fields: list[str]) -> None:
    v = Violations()
    assert check_upload(v, name, content_type, limits) == stored
    assert [i.field for i in v.items] == fields


@pytest.mark.parametrize(
    ("name", "expect"),
    [("a.tar.gz", ".gz"), ("A.PDF", ".pdf"), (".hidden", ""), ("none", ""), ("trailing.", ".")],
    ids=["last_dot", "lower_cased", "leading_dot_only", "no_dot", "trailing_dot"],
)
def test_extension(name: str, expect: str) -> None:
    assert extension(name) == expect


@pytest.mark.parametrize(("size", "refused"), [(1000, False), (1001, True)], ids=["at_the_limit", "over"])
def test_check_size(size: int, refused: bool) -> None:
    if refused:
        with pytest.raises(LimitExceeded):
            check_size(size, LIMITS)
    else:
        check_size(size, LIMITS)


@pytest.mark.parametrize(("count", "refused"), [(3, False), (4, True)], ids=["at_the_limit", "over"])
def test_check_count(count: int, refused: bool) -> None:
    if refused:
        with pytest.raises(LimitExceeded) as info:
            check_count(count, LIMITS, "inv-1")
        assert info.value.subject == "invoices/inv-1"
    else:
        check_count(count, LIMITS, "inv-1")
