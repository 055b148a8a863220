"""Pure invoice rules: models, totals and the lifecycle. No I/O lives here."""
