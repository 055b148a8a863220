"""Pure table-driven tests of service/domain: no database, no gRPC, no network, no sleeps.

Each row's id names the rule; the row holds the expected outcome (values, or the error class and field).
Rules already covered elsewhere are referenced, not repeated: money rounding, currency exponents, tax modes,
FX payments, cash rounding in tests/test_money_rules.py; the filter grammar in tests/test_filter_grammar.py.
"""
