"""The invoice and credit note PDFs as documents a business sends, and the Factur-X hybrid made from them.
Real parts only: the renderer (Typst with the shipped fonts), PDFium drawing the pages and extracting their
text, pypdf reading the PDF structure, factur-x's own reader, and the EN 16931 validators for the CII."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import facturx
import pypdfium2 as pdfium
import pytest
from lxml import etree
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from service.domain.credit_notes import CreditNote, CreditNoteLine, CreditNoteStatus
from service.domain.errors import InvalidArgument
from service.domain.models import Invoice, TaxationItem, TaxCategory
from service.domain.parties import Party, PaymentMeans, PaymentTerms, PostalAddress, TaxRegistration
from service.domain.profile import CompanyProfile
from service.einvoice.validation import Syntax, fatal, validate
from service.outbound import credit_note_pdf, pdf
from service.outbound.facturx import FILE_NAME, conformance_level, facturx_pdf
from tests.domain.builders import line, submitted

D = Decimal
JAPANESE = "ヤマダ電機株式会社"
CHINESE = "深圳市华为技术有限公司"  # simplified: 华 and 为 are in no Japanese font
KOREAN = "삼성전자 주식회사"
ARABIC = "مؤسسة النجمة"  # no lam-alef: extractors give that ligature's letters in drawing order
GERMAN = "Müller Präzisionsteile GmbH"
GREEK, CYRILLIC, HEBREW = "Ελληνική Εταιρεία", "ООО Ромашка", "חברת אור"  # noqa: RUF001 (Cyrillic letters like Latin ones)
NAMES = [JAPANESE, ARABIC, GERMAN, GREEK, CYRILLIC, HEBREW, CHINESE, KOREAN]
SELLER = Party(
    name="Acme Widgets GmbH",
    address=PostalAddress(address_lines=["Hauptstr. 1"], city="Berlin", postal_code="10115", country_code="DE"),
    tax_registrations=[TaxRegistration(scheme="VAT", id="DE123456789")],
)
TERMS = PaymentTerms(net_days=14, text="Net 14 days")
MEANS = PaymentMeans(iban="DE89370400440532013000", bic="COBADEFFXXX", account_name="Acme Widgets GmbH")


def long_invoice() -> Invoice:
    """200 lines named in eight scripts, priced and taxed by the domain rules (19% VAT)."""
    lines = [
        line(
            "2.5",
            "12.345",
            id=f"l{i}",
            description=f"{NAMES[i % len(NAMES)]} {i}",
            taxation_items=[TaxationItem(name="VAT", tax_rate=D("19"))],
        )
        for i in range(200)
    ]
    buyer = Party(name=JAPANESE, address=PostalAddress(address_lines=[ARABIC], city="München", country_code="DE"))
    return submitted(
        currency="EUR",
        lines=lines,
        buyer=buyer,
        seller=SELLER,  # the issued snapshot: what the PDF shows (terms and bank details too)
        payment_terms=TERMS,
        payment_means=MEANS,
        customer_name=JAPANESE,
    )


@pytest.fixture(scope="module")
def invoice() -> Invoice:
    return long_invoice()


@pytest.fixture(scope="module")
def rendered(invoice: Invoice) -> bytes:
    return pdf.render(invoice, "Acme Widgets GmbH", CompanyProfile(locale="en-US"))


def page_texts(data: bytes) -> list[str]:
    doc = pdfium.PdfDocument(data)
    try:
        return [page.get_textpage().get_text_range() for page in doc]
    finally:
        doc.close()


def rtl_line_has(text: str, words: str) -> bool:
    """An RTL phrase on a line: extractors give an RTL line's words in drawing order (right to left), each word
    in reading order, so the words are looked for, in either order, on one line."""
    return any(all(w in row for w in words.split()) for row in text.splitlines())


def test_a_long_invoice_in_eight_scripts_reads_back_with_its_names_totals_and_page_numbers(
    invoice: Invoice, rendered: bytes, tmp_path: Path
) -> None:
    texts = page_texts(rendered)
    pages = len(texts)
    assert pages > 1
    everything = "\n".join(texts)
    for name in (JAPANESE, GERMAN, GREEK, CYRILLIC, CHINESE, KOREAN):
        assert name in everything, name
    assert pdf.REPLACEMENT not in everything
    assert rtl_line_has(everything, ARABIC) and rtl_line_has(everything, HEBREW)
    latin_or_cjk = (JAPANESE, GERMAN, CHINESE, KOREAN)
    assert all(f"{name} {i}" in everything for i, name in enumerate(NAMES * 2) if name in latin_or_cjk)
    # Exact totals: 200 x 2.5 x 12.345 = 6,172.50 net; the domain rounds each line (30.86) before summing.
    assert invoice.total_amount is not None and invoice.total_tax_amount is not None
    for label, amount in (
        ("Subtotal", invoice.sub_total),
        ("Tax", invoice.total_tax_amount),
        ("Total", invoice.total_amount),
        ("Amount due", invoice.amount_due),
    ):
        assert f"{label} {amount:,.2f} EUR" in everything, (label, amount)
    assert f"{invoice.total_amount:,.2f}" == "7,344.00"  # the numbers above are the real ones
    assert f"Page 1 of {pages}" in texts[0] and f"Page {pages} of {pages}" in texts[-1]
    header = "Description Qty Unit price Discount Tax rate Tax Amount (EUR)"
    assert all(header in text for text in texts[:-1]), "the table header repeats on every page of lines"
    for expected in ("Acme Widgets GmbH", "VAT DE123456789", "Net 14 days", "IBAN DE89370400440532013000"):
        assert expected in everything, expected
    assert "Tax breakdown" in everything and "VAT 19% 6,172.00 EUR 1,172.00 EUR" in everything
    # Drawn by PDFium, as a reader's viewer would: pages of ink, not empty boxes.
    doc = pdfium.PdfDocument(rendered)
    try:
        image = doc[0].render(scale=2).to_pil().convert("L")
    finally:
        doc.close()
    image.save(tmp_path / "page-1.png")
    assert image.size == (1191, 1684)  # A4 at 144 dpi
    dark = sum(image.histogram()[:128])  # pixels darker than mid-grey
    assert dark > 20_000, dark


def fonts_of(reader: PdfReader) -> Iterator[Any]:
    """Every font dictionary the pages use, in their resources and their form XObjects' resources."""
    seen: set[int] = set()

    def walk(resources: Any) -> Iterator[Any]:
        resources = resources.get_object() if resources is not None else None
        if not isinstance(resources, DictionaryObject) or id(resources) in seen:
            return
        seen.add(id(resources))
        fonts: Any = (resources.get("/Font") or DictionaryObject()).get_object()
        xobjects: Any = (resources.get("/XObject") or DictionaryObject()).get_object()
        for font in fonts.values():
            yield font.get_object()
        for xobject in xobjects.values():
            yield from walk(xobject.get_object().get("/Resources"))

    for page in reader.pages:
        yield from walk(page.get("/Resources"))


def assert_fonts_embedded(data: bytes) -> set[str]:
    """Every font has its glyph program in the file (FontFile, FontFile2 or FontFile3); returns their names."""
    names = set()
    for font in fonts_of(PdfReader(io.BytesIO(data))):
        assert font["/Subtype"] != "/Type3", font
        descendants = font.get("/DescendantFonts")
        target = descendants.get_object()[0].get_object() if descendants is not None else font
        descriptor = target["/FontDescriptor"].get_object()
        assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), font["/BaseFont"]
        names.add(str(font["/BaseFont"]).split("+")[-1])
    return names


def test_every_font_is_embedded_and_comes_from_the_shipped_files(rendered: bytes) -> None:
    names = assert_fonts_embedded(rendered)
    assert {"NotoSans-Regular", "NotoSans-Bold", "NotoSansArabic-Regular", "NotoSansHebrew-Regular"} <= names
    for face in ("jp", "sc", "kr"):
        assert any(n.startswith(f"NotoSansCJK{face}") for n in names), names


@pytest.mark.parametrize(
    ("name", "locale", "face"),
    [
        ("東京都千代田区丸の内", "en-US", "jp"),  # kana: Japanese whatever the locale
        ("삼성전자", "ja-JP", "kr"),
        ("骨直角", "en-US", "sc"),  # Han alone: simplified Chinese forms unless the locale says otherwise
        ("骨直角", "ja-JP", "jp"),
        ("骨直角", "zh-TW", "tc"),
        ("骨直角", "zh-Hant", "tc"),
        ("骨直角", "zh-SG", "sc"),
        ("骨直角", "de-DE/JP", "jp"),  # else the buyer's country
        ("骨直角", "de-DE/HK", "tc"),
        ("骨直角", "ko-KR/CN", "kr"),  # the locale first
    ],
)
def test_han_characters_take_the_forms_of_the_texts_language(name: str, locale: str, face: str) -> None:
    """Japanese, Chinese and Korean draw some Han characters differently (骨, 直): the text's language picks the
    font, so the forms are the ones its readers write."""
    locale, _, country = locale.partition("/")
    buyer = Party(name="Buyer", address=PostalAddress(city="X", country_code=country or "DE"))
    inv = submitted(currency="EUR", lines=[line("1", "10", id="a", description=name)], seller=SELLER, buyer=buyer)
    data = pdf.render(inv, "x", CompanyProfile(locale=locale))
    (text,) = page_texts(data)
    assert name in text
    cjk = {n.removeprefix("NotoSansCJK")[:2] for n in assert_fonts_embedded(data) if n.startswith("NotoSansCJK")}
    assert cjk == {face}


def cii(buyer: str = JAPANESE, guideline: str = "urn:cen.eu:en16931:2017") -> bytes:
    """A small EN 16931 CII invoice (one standard-rated line), valid by the XSD and the CEN schematron."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
 <rsm:ExchangedDocumentContext>
  <ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{guideline}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>
 </rsm:ExchangedDocumentContext>
 <rsm:ExchangedDocument>
  <ram:ID>INV-00001</ram:ID><ram:TypeCode>380</ram:TypeCode>
  <ram:IssueDateTime><udt:DateTimeString format="102">20260102</udt:DateTimeString></ram:IssueDateTime>
 </rsm:ExchangedDocument>
 <rsm:SupplyChainTradeTransaction>
  <ram:IncludedSupplyChainTradeLineItem>
   <ram:AssociatedDocumentLineDocument><ram:LineID>1</ram:LineID></ram:AssociatedDocumentLineDocument>
   <ram:SpecifiedTradeProduct><ram:Name>{GERMAN}</ram:Name></ram:SpecifiedTradeProduct>
   <ram:SpecifiedLineTradeAgreement>
    <ram:NetPriceProductTradePrice><ram:ChargeAmount>100.00</ram:ChargeAmount></ram:NetPriceProductTradePrice>
   </ram:SpecifiedLineTradeAgreement>
   <ram:SpecifiedLineTradeDelivery>
    <ram:BilledQuantity unitCode="C62">1</ram:BilledQuantity>
   </ram:SpecifiedLineTradeDelivery>
   <ram:SpecifiedLineTradeSettlement>
    <ram:ApplicableTradeTax>
     <ram:TypeCode>VAT</ram:TypeCode><ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>19</ram:RateApplicablePercent>
    </ram:ApplicableTradeTax>
    <ram:SpecifiedTradeSettlementLineMonetarySummation><ram:LineTotalAmount>100.00</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>
   </ram:SpecifiedLineTradeSettlement>
  </ram:IncludedSupplyChainTradeLineItem>
  <ram:ApplicableHeaderTradeAgreement>
   <ram:SellerTradeParty>
    <ram:Name>Acme Widgets GmbH</ram:Name>
    <ram:PostalTradeAddress><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
    <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DE123456789</ram:ID></ram:SpecifiedTaxRegistration>
   </ram:SellerTradeParty>
   <ram:BuyerTradeParty>
    <ram:Name>{buyer}</ram:Name>
    <ram:PostalTradeAddress><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>
   </ram:BuyerTradeParty>
  </ram:ApplicableHeaderTradeAgreement>
  <ram:ApplicableHeaderTradeDelivery/>
  <ram:ApplicableHeaderTradeSettlement>
   <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
   <ram:ApplicableTradeTax>
    <ram:CalculatedAmount>19.00</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>
    <ram:BasisAmount>100.00</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode>
    <ram:RateApplicablePercent>19</ram:RateApplicablePercent>
   </ram:ApplicableTradeTax>
   <ram:SpecifiedTradePaymentTerms>
    <ram:DueDateDateTime><udt:DateTimeString format="102">20260116</udt:DateTimeString></ram:DueDateDateTime>
   </ram:SpecifiedTradePaymentTerms>
   <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    <ram:LineTotalAmount>100.00</ram:LineTotalAmount>
    <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
    <ram:TaxTotalAmount currencyID="EUR">19.00</ram:TaxTotalAmount>
    <ram:GrandTotalAmount>119.00</ram:GrandTotalAmount>
    <ram:DuePayableAmount>119.00</ram:DuePayableAmount>
   </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
  </ram:ApplicableHeaderTradeSettlement>
 </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
""".encode()


XMP_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "fx": "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
}


def xmp_values(root: Any, path: str) -> list[str]:
    """An XMP property written either as an element or as an attribute of rdf:Description."""
    prefix, name = path.split(":")
    ns = XMP_NS[prefix]
    found = [e.text or "" for e in root.iter(f"{{{ns}}}{name}")]
    found += [d.get(f"{{{ns}}}{name}") for d in root.iter(f"{{{XMP_NS['rdf']}}}Description")]
    return [v for v in found if v is not None]


@pytest.fixture(scope="module")
def hybrid(rendered: bytes) -> bytes:
    xml = cii()
    assert not fatal(validate(Syntax.CII, xml)), validate(Syntax.CII, xml)
    return facturx_pdf(rendered, xml, title="Invoice INV-00001", author="Acme Widgets GmbH")


def test_a_facturx_pdf_carries_the_cii_that_factur_x_reads_back_unchanged(hybrid: bytes) -> None:
    name, xml = facturx.get_xml_from_pdf(hybrid, check_xsd=True)
    assert name == FILE_NAME == "factur-x.xml"
    assert xml == cii()


def test_a_facturx_pdf_has_the_pdfa3_markers_the_standard_requires(hybrid: bytes) -> None:
    reader = PdfReader(io.BytesIO(hybrid))
    root: Any = reader.trailer["/Root"].get_object()
    # XMP: PDF/A-3 B identification and the Factur-X extension schema at the XML's level.
    xmp = etree.fromstring(root["/Metadata"].get_object().get_data())
    assert xmp_values(xmp, "pdfaid:part") == ["3"] and xmp_values(xmp, "pdfaid:conformance") == ["B"]
    assert xmp_values(xmp, "fx:ConformanceLevel") == ["EN 16931"]
    assert xmp_values(xmp, "fx:DocumentFileName") == ["factur-x.xml"]
    assert xmp_values(xmp, "fx:DocumentType") == ["INVOICE"]
    assert XMP_NS["fx"] in xmp_values(xmp, "pdfaSchema:namespaceURI")
    # The XML attached, with its relationship, listed in the catalog's /AF too.
    names = root["/Names"].get_object()["/EmbeddedFiles"].get_object()["/Names"]
    assert isinstance(names, ArrayObject) and names[0] == "factur-x.xml"
    spec = names[1].get_object()
    assert spec["/AFRelationship"] == "/Alternative" and spec["/UF"] == "factur-x.xml"
    assert spec["/EF"]["/F"].get_object()["/Subtype"] == "/text/xml"
    af = [a.idnum for a in root["/AF"].get_object() if isinstance(a, IndirectObject)]
    assert isinstance(names[1], IndirectObject) and names[1].idnum in af
    # An output intent with an ICC profile (sRGB, from the renderer's PDF/A output).
    intents = root["/OutputIntents"].get_object()
    assert intents[0]["/S"] == "/GTS_PDFA1"
    icc = intents[0]["/DestOutputProfile"].get_object().get_data()
    assert icc[36:40] == b"acsp" and icc[16:20] == b"RGB "  # an ICC profile of an RGB colour space
    assert_fonts_embedded(hybrid)
    assert "Acme Widgets GmbH" in "\n".join(page_texts(hybrid))  # still the same invoice to look at


@pytest.mark.parametrize(
    ("xml", "says"),
    [
        (b"<not xml", "well-formed"),
        (b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>', "CII"),
        (cii(guideline="urn:example:not-a-level"), "BT-24"),
        (b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', "CII"),
    ],
)
def test_a_facturx_pdf_is_refused_for_xml_that_is_not_a_cii_invoice_of_a_level(
    rendered: bytes, xml: bytes, says: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        facturx_pdf(rendered, xml)
    assert err.value.violations[0].field == "xml" and says in err.value.violations[0].description


def test_the_level_written_is_the_level_the_xml_declares() -> None:
    assert conformance_level(cii()) == "en16931"
    assert conformance_level(cii(guideline="urn:factur-x.eu:1p0:basic")) == "basic"


def test_a_credit_note_in_hebrew_reads_back_with_its_reference_and_totals() -> None:
    note = CreditNote(
        id="cn-1",
        company_id="co",
        invoice_id="inv-1",
        invoice_number="INV-00001",
        customer_id="cust",
        currency="ILS",
        credit_note_number="CN-00001",
        status=CreditNoteStatus.ISSUED,
        lines=[CreditNoteLine(description=f"{HEBREW} החזר", quantity=D("3"), unit_amount=D("10.5"), tax_rate=D("17"))],
        sub_total=D("31.50"),
        total_tax_amount=D("5.36"),
        total_amount=D("36.86"),
    )
    data = credit_note_pdf.render(note, SELLER, Party(name=HEBREW), "he-IL")
    (text,) = page_texts(data)
    assert "Credit note CN-00001 for invoice INV-00001" in " ".join(text.split())
    assert rtl_line_has(text, HEBREW) and "36.86 ILS" in text and "Page 1 of 1" in text and "17%" in text
    assert_fonts_embedded(data)


def test_a_credit_note_pdf_shows_its_tax_breakdown_by_the_categories_of_the_invoice_it_corrects() -> None:
    exempt = TaxationItem(
        tax_rate=D("0"), tax_category=TaxCategory.E, exemption_reason="Education", exemption_reason_code="VATEX-EU-132"
    )
    inv = submitted(
        currency="EUR",
        seller=SELLER,
        lines=[
            line(id="l1", taxation_items=[TaxationItem(tax_rate=D("19"), tax_category=TaxCategory.S)]),
            line(id="l2", taxation_items=[exempt]),
        ],
    )

    def part(description: str, sub_total: str, tax: str, corrects: str) -> CreditNoteLine:
        net, vat = D(sub_total), D(tax)
        return CreditNoteLine(
            unit_amount=net,
            invoice_line_item_id=corrects,
            description=description,
            sub_total=net,
            tax_amount=vat,
            total_amount=net + vat,
        )

    note = CreditNote(
        id="cn-2",
        invoice_number="INV-00002",
        customer_id="cust",
        currency="EUR",
        credit_note_number="CN-00002",
        status=CreditNoteStatus.ISSUED,
        lines=[
            part(CHINESE, "50.00", "9.50", "l1"),
            part(KOREAN, "10.00", "1.90", "l1"),
            part("Course", "40.00", "0.00", "l2"),
        ],
        sub_total=D("100.00"),
        total_tax_amount=D("11.40"),
        total_amount=D("111.40"),
    )
    data = credit_note_pdf.render(note, SELLER, Party(name=KOREAN), "en-US", inv)
    (text,) = page_texts(data)
    words = " ".join(text.split())
    assert "Tax breakdown Tax category Rate Taxable amount Tax Exemption" in words
    assert "S 19% 60.00 EUR 11.40 EUR" in words  # two lines of the 19% invoice line, one row
    assert "E 0% 40.00 EUR 0.00 EUR VATEX-EU-132 Education" in words
    assert CHINESE in text and KOREAN in text and pdf.REPLACEMENT not in text
    assert_fonts_embedded(data)


def test_the_pdf_is_the_same_on_every_machine_only_shipped_fonts() -> None:
    """No system font is looked at: the renderer knows exactly the shipped families."""
    families = sorted(pdf.shipped_fonts().families())
    assert families == [
        "Noto Sans",
        "Noto Sans Arabic",
        "Noto Sans CJK JP",
        "Noto Sans CJK KR",
        "Noto Sans CJK SC",
        "Noto Sans CJK TC",
        "Noto Sans Hebrew",
    ]


@pytest.mark.parametrize(
    ("text", "drawn"),
    [
        ("Zoë 株式会社 مؤسسة חברת Ελλάδα Ромашка", "Zoë 株式会社 مؤسسة חברת Ελλάδα Ромашка"),
        ("smile 😀, ไทย, 𠮷", "smile \ufffd, \ufffd\ufffd\ufffd, \ufffd"),  # no shipped font has them
        ("华为 삼성 ㄱ 臺灣 株式会社", "华为 삼성 ㄱ 臺灣 株式会社"),  # GB 2312, Hangul, Big5 and JIS X 0208
        ("bell\x07tab\tline\nend", "bell tab\tline\nend"),  # controls: a space; tab and newline kept
        ("ogham\u1680space", "ogham space"),  # a space no font draws
        ("joiner\u200dmark\u200fbom\ufeff", "joiner\u200dmark\u200fbom\ufeff"),  # laid out without glyphs
        ("\u0890sign", "sign"),  # a format character drawn by no font
        ("x" * 61, "x" * 30 + "\u200b" + "x" * 30 + "\u200b" + "x"),  # a long run gets places to wrap
    ],
)
def test_text_is_made_drawable_by_the_shipped_fonts(text: str, drawn: str) -> None:
    assert pdf.drawable(text) == drawn


def test_text_no_shipped_font_has_still_makes_a_pdfa() -> None:
    """PDF/A forbids a missing glyph and Typst refuses the document: such characters are replaced, not fatal."""
    hostile = "😀 ไทย 𠮷 한국어 简体 अ \x00\x01\x0b \U0010ffff \u0890 \u1680 end"
    inv = submitted(currency="JPY", lines=[line("1E+3", "1234", id="a", description=hostile)], note=hostile)
    data = pdf.render(inv, "x")
    (text,) = page_texts(data)
    assert "\ufffd" in text and "end" in text
    assert "1000" in text and "E+" not in text and "1,234,000 JPY" in text  # yen have no minor unit
    assert_fonts_embedded(data)
