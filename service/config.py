"""Configuration from environment variables only, validated at start-up (pydantic-settings).

Every variable is checked before anything starts; a bad value ends the process with one line per problem
that names the variable and what it accepts, never a traceback. Empty values count as unset.
"""

from __future__ import annotations

import ipaddress
import os
import re
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_PAGE_TOKEN_SECRET = "invoices-v1-page-tokens"
_EXTENSION = re.compile(r"\.[a-z0-9]{1,16}")


class ConfigError(Exception):
    """Invalid settings: one line per problem, each naming the variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class StartupError(Exception):
    """Valid settings whose target refuses at start-up (a database that cannot be reached, an address that
    cannot be bound, a data folder PostgreSQL cannot use): one line naming the variable, no traceback."""


def _listen_addr(value: str) -> str:
    if value.startswith("unix:"):
        return value
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("accepts host:port, e.g. 127.0.0.1:50051, [::]:50051 or 0.0.0.0:0, or unix:/path")
    return value


def _metrics_addr(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if value and (not sep or not host or not port.isdigit() or int(port) > 65535):
        raise ValueError("accepts host:port, e.g. 127.0.0.1:9464 or [::]:9464, or empty")
    return value


def _database_url(value: str) -> str:
    if value and not re.match(r"postgres(ql)?://", value):
        raise ValueError("accepts a postgresql://user:password@host:port/database URL, or empty (embedded server)")
    return value


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _extensions(value: Any) -> Any:
    if isinstance(value, str):
        value = [e.strip().lower() for e in value.split(",") if e.strip()]
    for ext in value:
        if not _EXTENSION.fullmatch(ext):
            raise ValueError(f"accepts comma-separated extensions such as .pdf,.png; {ext!r} is not one")
    return tuple(value)


def _mail_address(value: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or not address.isascii() or any(c.isspace() for c in address):
        raise ValueError("accepts an e-mail address such as invoices@example.com")
    return value


def _exporters(value: str) -> str:
    names = {n.strip() for n in value.split(",") if n.strip()}
    if not names <= {"none", "otlp", "console"}:
        raise ValueError("accepts none, otlp or console (comma-separated)")
    return value


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("accepts printable text")
    return value


ListenAddr = Annotated[str, AfterValidator(_listen_addr)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Each field reads the environment variable named by its alias."""

    model_config = SettingsConfigDict(
        frozen=True, case_sensitive=True, env_ignore_empty=True, populate_by_name=True, extra="ignore"
    )

    listen_addr: ListenAddr = Field("127.0.0.1:50051", alias="LISTEN_ADDR")
    # Empty: start the embedded PostgreSQL.
    database_url: Annotated[str, AfterValidator(_database_url)] = Field("", alias="DATABASE_URL")
    embedded_data_dir: str = Field(default_factory=lambda: os.path.abspath(".data/postgres"), alias="EMBEDDED_PG_DIR")
    pool_min: int = Field(2, ge=0, le=1000, alias="DB_POOL_MIN", description="an integer from 0 to 1000")
    pool_max: int = Field(10, ge=1, le=1000, alias="DB_POOL_MAX", description="an integer from 1 to 1000")
    max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024 * 1024,
        le=2**31 - 1,
        alias="GRPC_MAX_MESSAGE_BYTES",
        description="a byte count from 1048576 (1 MB) to 2147483647",
    )
    shutdown_grace_seconds: float = Field(
        10, ge=0, le=3600, alias="SHUTDOWN_GRACE_SECONDS", description="seconds from 0 to 3600"
    )
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)] = Field(
        "INFO", alias="LOG_LEVEL", description="one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
    )
    invoice_number_prefix: Annotated[str, Field(max_length=20), AfterValidator(_printable)] = Field(
        "INV-", alias="INVOICE_NUMBER_PREFIX", description="printable text of at most 20 characters"
    )
    invoice_number_width: int = Field(6, ge=1, le=20, alias="INVOICE_NUMBER_WIDTH", description="1 to 20 digits")
    # Signs ListInvoices page tokens; replicas must share it.
    page_token_secret: str = Field(DEFAULT_PAGE_TOKEN_SECRET, min_length=1, alias="PAGE_TOKEN_SECRET")
    attachment_max_bytes: int = Field(
        100 * 1024 * 1024, ge=1, alias="ATTACHMENT_MAX_BYTES", description="a byte count of at least 1"
    )
    attachment_max_per_invoice: int = Field(
        50, ge=1, le=10_000, alias="ATTACHMENT_MAX_PER_INVOICE", description="an integer from 1 to 10000"
    )
    # Empty: the allowlist of seed 001.
    attachment_extensions: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_extensions)] = Field(
        (), alias="ATTACHMENT_EXTENSIONS"
    )
    smtp_host: str = Field("", alias="SMTP_HOST")  # empty: SendInvoice is refused
    smtp_port: Port = Field(25, alias="SMTP_PORT", description="a port from 1 to 65535")
    smtp_username: str = Field("", alias="SMTP_USERNAME")
    smtp_password: str = Field("", alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(False, alias="SMTP_STARTTLS", description="true or false (also 1/0, yes/no, on/off)")
    smtp_from: Annotated[str, AfterValidator(_mail_address)] = Field("invoices@localhost", alias="SMTP_FROM")
    mail_max_bytes: int = Field(20 * 1024 * 1024, ge=1, alias="MAIL_MAX_BYTES", description="a byte count ≥ 1")
    seller_name: Annotated[str, AfterValidator(_printable)] = Field("Invoice Service", alias="SELLER_NAME")
    workers: int = Field(2, ge=0, le=64, alias="PUSH_WORKERS", description="an integer from 0 to 64")
    lease_seconds: int = Field(30, ge=1, le=86_400, alias="PUSH_LEASE_SECONDS", description="seconds from 1 to 86400")
    async_batch_threshold: int = Field(
        10, ge=0, alias="ASYNC_BATCH_THRESHOLD", description="an integer ≥ 0"
    )  # batches with more requests always run asynchronously
    push_timeout_minutes: int = Field(
        60, ge=1, le=525_600, alias="PUSH_TIMEOUT_MINUTES", description="minutes from 1 to 525600"
    )
    idempotency_ttl_seconds: int = Field(
        24 * 3600, ge=1, le=90 * 86_400, alias="IDEMPOTENCY_TTL_SECONDS", description="seconds from 1 to 7776000"
    )
    event_retention_days: int = Field(
        30, ge=0, le=36_500, alias="EVENT_RETENTION_DAYS", description="days from 0 (keep forever) to 36500"
    )
    push_operation_retention_days: int = Field(
        90, ge=0, le=36_500, alias="PUSH_OPERATION_RETENTION_DAYS", description="days from 0 (keep forever) to 36500"
    )
    # How often each process purges expired request ids and old rows.
    retention_interval_seconds: int = Field(
        300, ge=1, le=86_400, alias="RETENTION_INTERVAL_SECONDS", description="seconds from 1 to 86400"
    )
    # An upload silent this long before its first message or between two is abandoned (ABORTED).
    upload_idle_seconds: int = Field(
        30, ge=1, le=3600, alias="UPLOAD_IDLE_SECONDS", description="seconds from 1 to 3600"
    )
    # gRPC's max_concurrent_streams on each connection: RFC 9113 recommends at least 100. A client may
    # briefly open more than the limit while earlier calls close (the server's count lags the client's):
    # those are refused with REFUSED_STREAM, which gRPC reports as UNAVAILABLE, safe to retry.
    max_streams_per_connection: int = Field(
        100, ge=1, le=10_000, alias="GRPC_MAX_CONCURRENT_STREAMS", description="an integer from 1 to 10000"
    )
    # Open streaming calls per company in each process.
    company_max_streams: int = Field(
        32, ge=1, le=10_000, alias="COMPANY_MAX_STREAMS", description="an integer from 1 to 10000"
    )
    # The whole SMTP conversation of one send.
    mail_send_timeout_seconds: int = Field(
        60, ge=1, le=3600, alias="MAIL_SEND_TIMEOUT_SECONDS", description="seconds from 1 to 3600"
    )
    auth_required: bool = Field(True, alias="AUTH_REQUIRED", description="true or false")
    tls_cert_file: str = Field("", alias="TLS_CERT_FILE")  # with tls_key_file: serve TLS
    tls_key_file: str = Field("", alias="TLS_KEY_FILE")
    tls_client_ca_file: str = Field("", alias="TLS_CLIENT_CA_FILE")  # also require client certificates (mTLS)
    # `python -m service.healthcheck` under TLS: what it trusts (default: TLS_CERT_FILE, the served chain),
    # the name it verifies (default: the certificate's first DNS or IP name), and under mutual TLS the
    # client certificate it presents (default: TLS_CERT_FILE and TLS_KEY_FILE).
    healthcheck_ca_file: str = Field("", alias="HEALTHCHECK_CA_FILE")
    healthcheck_server_name: str = Field("", alias="HEALTHCHECK_SERVER_NAME")
    healthcheck_cert_file: str = Field("", alias="HEALTHCHECK_CERT_FILE")
    healthcheck_key_file: str = Field("", alias="HEALTHCHECK_KEY_FILE")
    otel_traces_exporter: Annotated[str, AfterValidator(_exporters)] = Field("none", alias="OTEL_TRACES_EXPORTER")
    otel_metrics_exporter: Annotated[str, AfterValidator(_exporters)] = Field("none", alias="OTEL_METRICS_EXPORTER")
    # host:port of a Prometheus /metrics endpoint; empty: none.
    metrics_addr: Annotated[str, AfterValidator(_metrics_addr)] = Field(
        "", alias="METRICS_ADDR", description="host:port, e.g. 127.0.0.1:9464, or empty"
    )
    metrics_db_refresh_seconds: float = Field(
        10, ge=1, le=3600, alias="METRICS_DB_REFRESH_SECONDS", description="seconds from 1 to 3600"
    )  # the database-derived gauges are queried at most this often
    access_log: Literal["all", "errors", "off"] = Field("all", alias="ACCESS_LOG", description="all, errors or off")
    access_log_sample: float = Field(
        1.0, ge=0, le=1, alias="ACCESS_LOG_SAMPLE", description="a fraction from 0 to 1"
    )  # of successful calls logged; refusals and errors are always logged
    keepalive_time_ms: int = Field(
        60_000, ge=1000, alias="GRPC_KEEPALIVE_TIME_MS", description="milliseconds, at least 1000"
    )
    keepalive_timeout_ms: int = Field(
        20_000, ge=1000, alias="GRPC_KEEPALIVE_TIMEOUT_MS", description="milliseconds, at least 1000"
    )
    min_ping_interval_ms: int = Field(
        10_000, ge=0, alias="GRPC_MIN_PING_INTERVAL_MS", description="milliseconds, at least 0"
    )
    keepalive_permit_without_calls: bool = Field(
        True, alias="GRPC_KEEPALIVE_PERMIT_WITHOUT_CALLS", description="true or false"
    )
    max_connection_age_ms: int = Field(
        1_800_000, ge=0, alias="GRPC_MAX_CONNECTION_AGE_MS", description="milliseconds, 0 for no limit"
    )
    max_connection_age_grace_ms: int = Field(
        300_000, ge=0, alias="GRPC_MAX_CONNECTION_AGE_GRACE_MS", description="milliseconds, 0 for no limit"
    )
    statement_timeout_ms: int = Field(
        30_000, ge=0, le=2**31 - 1, alias="DB_STATEMENT_TIMEOUT_MS", description="milliseconds, 0 for no limit"
    )
    write_statement_timeout_ms: int = Field(
        10_000, ge=0, le=2**31 - 1, alias="DB_WRITE_STATEMENT_TIMEOUT_MS", description="milliseconds, 0 for no limit"
    )
    processes: int = Field(1, ge=1, le=64, alias="PROCESSES", description="an integer from 1 to 64")
    # Set by the parent in each of several serving processes, not by users.
    reuse_port: bool = Field(False, alias="SERVICE_REUSE_PORT")
    # Set at start-up when OTEL_TRACES_EXPORTER configured a tracer provider.
    tracing: bool = Field(False, alias="SERVICE_TRACING_CONFIGURED")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.pool_min > self.pool_max:
            raise ValueError(f"DB_POOL_MIN ({self.pool_min}) must not exceed DB_POOL_MAX ({self.pool_max})")
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE (mutual TLS is TLS first)")
        for name, path in (
            ("TLS_CERT_FILE", self.tls_cert_file),
            ("TLS_KEY_FILE", self.tls_key_file),
            ("TLS_CLIENT_CA_FILE", self.tls_client_ca_file),
            ("HEALTHCHECK_CA_FILE", self.healthcheck_ca_file),
            ("HEALTHCHECK_CERT_FILE", self.healthcheck_cert_file),
            ("HEALTHCHECK_KEY_FILE", self.healthcheck_key_file),
        ):
            if path and not (Path(path).is_file() and os.access(path, os.R_OK)):
                raise ValueError(f"{name}={path!r}: accepts the path of a readable PEM file")
        return self

    @classmethod
    def from_env(cls) -> Settings:
        """The settings of this process's environment, or ConfigError naming each bad variable."""
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    @property
    def is_local(self) -> bool:
        """An embedded database on a loopback address: a developer's own run."""
        host = self.listen_addr.rpartition(":")[0].strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = self.listen_addr.startswith("unix:")
        return not self.database_url and loopback


SECRETS = frozenset({"smtp_password", "page_token_secret"})
_INTERNAL = frozenset({"reuse_port", "tracing"})  # set by the service for itself, not by operators


def mask_url(url: str) -> str:
    """A database URL with its password (in the authority or as a parameter) replaced by ****."""
    masked = re.sub(r"^([a-z]+://[^:/@?]*):[^?]*@", r"\1:****@", url)  # to the last @: passwords may hold one
    return re.sub(r"([?&]password=)[^&]*", r"\1****", masked)


def effective(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) for every setting in effect, secrets masked: what `python -m service config` prints."""
    out = []
    for name, info in Settings.model_fields.items():
        if name in _INTERNAL:
            continue
        value = getattr(settings, name)
        if name in SECRETS:
            if name == "page_token_secret" and value == DEFAULT_PAGE_TOKEN_SECRET:
                text = "(the built-in development value)"
            else:
                text = "****" if value else ""
        elif name == "database_url":
            text = mask_url(value) if value else "(empty: the embedded PostgreSQL)"
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        out.append((info.alias or name, text))
    return out


def describe(exc: ValidationError) -> list[str]:
    """One line per problem: the variable, the value given, and what it accepts."""
    fields = Settings.model_fields
    by_alias = {f.alias: f for f in fields.values() if f.alias}
    lines = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        if not loc:  # a rule across variables names them itself
            lines.append(f"invalid configuration: {str(error['msg']).removeprefix('Value error, ')}")
            continue
        name = str(loc[0])
        info = by_alias.get(name) or fields.get(name)
        variable = (info.alias if info is not None else None) or name
        accepts = info.description if info is not None and info.description else None
        message = str(error["msg"]).removeprefix("Value error, ")
        given = os.environ.get(variable, error.get("input"))
        what = f"accepts {accepts}" if accepts else message
        if accepts and "accepts" not in message:
            what = f"{what} ({message})"
        lines.append(f"invalid configuration: {variable}={given!r}: {what}")
    return lines
