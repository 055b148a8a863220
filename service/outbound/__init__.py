"""Adapters to the outside: the PDF renderer and the SMTP mailer. No business rules here."""
