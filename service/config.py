"""Configuration from environment variables only."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError as exc:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True, slots=True)
class Settings:
    listen_addr: str
    database_url: str  # empty: start the embedded PostgreSQL
    embedded_data_dir: str
    pool_min: int
    pool_max: int
    max_message_bytes: int
    shutdown_grace_seconds: int
    log_level: str
    invoice_number_prefix: str
    invoice_number_width: int
    page_token_secret: str  # signs ListInvoices page tokens; replicas must share it
    attachment_max_bytes: int
    attachment_max_per_invoice: int
    attachment_extensions: tuple[str, ...]  # empty: the allowlist of seed 001
    smtp_host: str  # empty: SendInvoice is refused
    smtp_port: int
    smtp_username: str
    smtp_password: str
    smtp_starttls: bool
    smtp_from: str
    mail_max_bytes: int
    seller_name: str
    workers: int  # asynchronous-write workers in this process
    lease_seconds: int
    async_batch_threshold: int  # batches with more requests always run asynchronously
    push_timeout_minutes: int
    idempotency_ttl_seconds: int
    auth_required: bool  # API keys on every RPC but health and reflection
    tls_cert_file: str  # with tls_key_file: serve TLS
    tls_key_file: str
    tls_client_ca_file: str  # also: require client certificates signed by this CA (mutual TLS)
    upload_idle_seconds: int  # an upload silent this long between messages is abandoned
    max_streams_per_connection: int  # gRPC's max_concurrent_streams on each connection
    company_max_streams: int  # open streaming calls per company (per process)
    mail_send_timeout_seconds: int  # the whole SMTP conversation of one send
    processes: int = 1  # serving processes sharing LISTEN_ADDR (SO_REUSEPORT)
    reuse_port: bool = False  # set in each of several processes
    tracing: bool = False  # set when OTEL_TRACES_EXPORTER configured a tracer provider

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            listen_addr=os.environ.get("LISTEN_ADDR", "127.0.0.1:50051"),
            database_url=os.environ.get("DATABASE_URL", ""),
            embedded_data_dir=os.environ.get("EMBEDDED_PG_DIR", os.path.abspath(".data/postgres")),
            pool_min=_int("DB_POOL_MIN", 2),
            pool_max=_int("DB_POOL_MAX", 10),
            max_message_bytes=_int("GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024),
            shutdown_grace_seconds=_int("SHUTDOWN_GRACE_SECONDS", 10),
            log_level=os.environ.get("LOG_LEVEL", "INFO"),
            invoice_number_prefix=os.environ.get("INVOICE_NUMBER_PREFIX", "INV-"),
            invoice_number_width=_int("INVOICE_NUMBER_WIDTH", 6),
            page_token_secret=os.environ.get("PAGE_TOKEN_SECRET", "invoices-v1-page-tokens"),
            attachment_max_bytes=_int("ATTACHMENT_MAX_BYTES", 100 * 1024 * 1024),
            attachment_max_per_invoice=_int("ATTACHMENT_MAX_PER_INVOICE", 50),
            attachment_extensions=tuple(
                e.strip().lower() for e in os.environ.get("ATTACHMENT_EXTENSIONS", "").split(",") if e.strip()
            ),
            smtp_host=os.environ.get("SMTP_HOST", ""),
            smtp_port=_int("SMTP_PORT", 25),
            smtp_username=os.environ.get("SMTP_USERNAME", ""),
            smtp_password=os.environ.get("SMTP_PASSWORD", ""),
            smtp_starttls=os.environ.get("SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            smtp_from=os.environ.get("SMTP_FROM", "invoices@localhost"),
            mail_max_bytes=_int("MAIL_MAX_BYTES", 20 * 1024 * 1024),
            seller_name=os.environ.get("SELLER_NAME", "Invoice Service"),
            workers=_int("PUSH_WORKERS", 2),
            lease_seconds=_int("PUSH_LEASE_SECONDS", 30),
            async_batch_threshold=_int("ASYNC_BATCH_THRESHOLD", 10),
            push_timeout_minutes=_int("PUSH_TIMEOUT_MINUTES", 60),
            idempotency_ttl_seconds=_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
            auth_required=os.environ.get("AUTH_REQUIRED", "true").lower() not in ("0", "false", "no"),
            tls_cert_file=os.environ.get("TLS_CERT_FILE", ""),
            tls_key_file=os.environ.get("TLS_KEY_FILE", ""),
            tls_client_ca_file=os.environ.get("TLS_CLIENT_CA_FILE", ""),
            upload_idle_seconds=_int("UPLOAD_IDLE_SECONDS", 30),
            max_streams_per_connection=_int("GRPC_MAX_CONCURRENT_STREAMS", 32),
            company_max_streams=_int("COMPANY_MAX_STREAMS", 32),
            mail_send_timeout_seconds=_int("MAIL_SEND_TIMEOUT_SECONDS", 60),
            processes=max(1, _int("PROCESSES", 1)),
            reuse_port=os.environ.get("SERVICE_REUSE_PORT", "") == "1",
        )
