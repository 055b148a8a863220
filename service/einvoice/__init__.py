"""EN 16931 e-invoices (issue 17): the business terms (`terms.py`), each syntax's table and its writer and
reader (`cii.py` UN/CEFACT CII D16B, `ubl.py` OASIS UBL 2.1), and validation by the official XML Schemas and
CEN schematron rules (`validation.py`). Pure but for validation, which runs Saxon on its own thread."""
