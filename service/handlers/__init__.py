"""Use cases: each loads from the store, applies a domain rule, and saves in one transaction."""
