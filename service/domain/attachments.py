"""Attachment rules: names, the extension and content-type allowlist of seed 001, and limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.domain.errors import DomainError, Violations
from service.domain.values import check_text

# Extension -> the MIME types accepted for it ("an accepted Mime Type as derived from the file extension").
ALLOWED: dict[str, tuple[str, ...]] = {
    ".7z": ("application/x-7z-compressed",),
    ".ai": ("application/postscript", "application/illustrator", "application/pdf"),
    ".bmp": ("image/bmp", "image/x-ms-bmp"),
    ".csv": ("text/csv", "application/csv"),
    ".doc": ("application/msword",),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
    ".eml": ("message/rfc822",),
    ".eps": ("application/postscript", "image/x-eps"),
    ".gif": ("image/gif",),
    ".jpeg": ("image/jpeg",),
    ".jpg": ("image/jpeg",),
    ".keynote": ("application/vnd.apple.keynote", "application/x-iwork-keynote-sffkey"),
    ".msg": ("application/vnd.ms-outlook",),
    ".numbers": ("application/vnd.apple.numbers", "application/x-iwork-numbers-sffnumbers"),
    ".odf": ("application/vnd.oasis.opendocument.formula",),
    ".ods": ("application/vnd.oasis.opendocument.spreadsheet",),
    ".odt": ("application/vnd.oasis.opendocument.text",),
    ".pages": ("application/vnd.apple.pages", "application/x-iwork-pages-sffpages"),
    ".pdf": ("application/pdf",),
    ".png": ("image/png",),
    ".ppt": ("application/vnd.ms-powerpoint",),
    ".pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation",),
    ".rar": ("application/vnd.rar", "application/x-rar-compressed"),
    ".rtf": ("application/rtf", "text/rtf"),
    ".tif": ("image/tiff",),
    ".tiff": ("image/tiff",),
    ".txt": ("text/plain",),
    ".xls": ("application/vnd.ms-excel",),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",),
    ".xml": ("application/xml", "text/xml"),
    ".zip": ("application/zip", "application/x-zip-compressed"),
}


class LimitExceeded(DomainError):
    """A configured quota (size, count) would be exceeded: RESOURCE_EXHAUSTED."""

    status_code = 413

    def __init__(self, message: str, subject: str = "") -> None:
        super().__init__(message)
        self.subject = subject


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 100 * 1024 * 1024
    max_per_invoice: int = 50
    extensions: frozenset[str] = frozenset(ALLOWED)


@dataclass(slots=True)
class Attachment:
    id: str
    invoice_id: str
    name: str
    content_type: str
    include_when_sent: bool
    file_size: int = 0
    sha256: str = ""
    date_created: datetime | None = None
    modified_date: datetime | None = None


def extension(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def check_upload(v: Violations, name: str, content_type: str, limits: Limits, path: str = "metadata") -> str:
    """Validates a file name and content type; returns the content type to store."""
    check_text(v, f"{path}.name", name, required=True)
    if name and (name != name.strip() or any(c in name for c in "/\\") or name in (".", "..")):
        v.add(f"{path}.name", "must be a plain file name, without directories or surrounding spaces")
    ext = extension(name)
    if name and ext not in limits.extensions:
        v.add(
            f"{path}.name",
            f"extension {ext or '(none)'!r} is not allowed; allowed: {' '.join(sorted(limits.extensions))}",
        )
        return content_type
    accepted = ALLOWED.get(ext, ("application/octet-stream",))
    kind = content_type.split(";")[0].strip().lower()
    if not content_type:
        return accepted[0]
    if kind not in accepted:
        v.add(f"{path}.content_type", f"{content_type!r} does not match {ext}; use {' or '.join(accepted)}")
    return kind


def check_size(size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        raise LimitExceeded(f"the file is larger than the {limits.max_bytes} bytes allowed per attachment")


def check_count(count: int, limits: Limits, invoice_id: str) -> None:
    if count > limits.max_per_invoice:
        raise LimitExceeded(
            f"invoice {invoice_id} would have more than {limits.max_per_invoice} attachments", f"invoices/{invoice_id}"
        )
