"""Factur-X (ZUGFeRD 2) hybrid invoices: the invoice PDF, a PDF/A-3b from the renderer, with its CII XML
attached as `factur-x.xml`. The `factur-x` package does the attaching (Filespec with AFRelationship, the
catalog's /AF, /EmbeddedFiles) and writes the XMP metadata: PDF/A-3 identification (part 3, conformance B)
and the Factur-X extension schema with the conformance level of the XML. The renderer's output intent (sRGB)
and embedded font subsets are kept as they are."""

from __future__ import annotations

from typing import Final

import facturx
from lxml import etree

from service.domain.errors import FieldViolation, InvalidArgument
from service.einvoice.validation import Syntax, parser, root_kind

FILE_NAME: Final = "factur-x.xml"
# The PDF and the XML show the same invoice: "Alternative" (Factur-X allows Data or Alternative for the
# EN 16931 profile; Data is for the MINIMUM and BASIC WL profiles, whose XML is not a whole invoice).
AF_RELATIONSHIP: Final = "alternative"
MAX_XML_BYTES: Final = 10 * 1024 * 1024


def conformance_level(cii_xml: bytes) -> str:
    """The Factur-X level the XML declares (BT-24, "urn:cen.eu:en16931:2017" is "en16931"), read with the safe
    parser; InvalidArgument for anything but a CII invoice of a Factur-X level."""
    if len(cii_xml) > MAX_XML_BYTES:
        raise InvalidArgument([FieldViolation("xml", f"must be at most {MAX_XML_BYTES} bytes")])
    try:
        root = etree.fromstring(cii_xml, parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidArgument([FieldViolation("xml", f"is not well-formed XML: {exc}")]) from None
    kind = root_kind(root)
    if kind is None or kind[0] is not Syntax.CII:
        raise InvalidArgument([FieldViolation("xml", "must be a UN/CEFACT CII CrossIndustryInvoice")])
    try:
        level: str = facturx.get_level(root, "factur-x")
    except Exception as exc:  # factur-x raises bare exceptions for an unknown guideline id
        raise InvalidArgument([FieldViolation("xml", f"declares no Factur-X level (BT-24): {exc}")]) from None
    return level


def facturx_pdf(
    pdf: bytes,
    cii_xml: bytes,
    *,
    title: str = "",
    author: str = "",
    subject: str = "",
    lang: str = "en",
) -> bytes:
    """`pdf` (a PDF/A-3b: `pdf.render`'s output) with `cii_xml` attached as factur-x.xml and the Factur-X
    XMP metadata. The XML is expected valid already (the export validates it: XSD then schematron); its
    level here only labels the PDF, so the XMP conformance level always matches the XML."""
    level = conformance_level(cii_xml)
    metadata = {
        "title": title,
        "author": author,
        "subject": subject or title,
        "keywords": "Factur-X, Invoice",
    }
    out: bytes = facturx.generate_from_binary(
        pdf,
        cii_xml,
        flavor="factur-x",
        level=level,
        check_xsd=False,  # validated before (validation.validate), and factur-x parses without our limits
        pdf_metadata=metadata,
        lang=lang,
        afrelationship=AF_RELATIONSHIP,
    )
    return out
