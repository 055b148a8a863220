"""Configuration: every variable is validated at start-up. A bad value ends `python -m service` with one
line per problem naming the variable and what it accepts (exit status 2), never a traceback; good
spellings are accepted; the development page-token secret is flagged outside local runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from service.config import ConfigError, Settings
from tests.test_process import ROOT, service_process

BAD = [
    ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL", "DEBUG, INFO"),
    ({"TLS_CERT_FILE": "/etc/hostname"}, "TLS_KEY_FILE", "together"),
    ({"TLS_CERT_FILE": "/nope.pem", "TLS_KEY_FILE": "/nope-key.pem"}, "TLS_CERT_FILE", "readable PEM file"),
    ({"TLS_CLIENT_CA_FILE": "/etc/hostname"}, "TLS_CLIENT_CA_FILE", "TLS_CERT_FILE"),
    ({"DB_POOL_MAX": "0"}, "DB_POOL_MAX", "from 1"),
    ({"DB_POOL_MIN": "20", "DB_POOL_MAX": "5"}, "DB_POOL_MIN", "DB_POOL_MAX"),
    ({"SHUTDOWN_GRACE_SECONDS": "-5"}, "SHUTDOWN_GRACE_SECONDS", "from 0"),
    ({"SMTP_STARTTLS": "maybe"}, "SMTP_STARTTLS", "true or false"),
    ({"SMTP_PORT": "70000"}, "SMTP_PORT", "1 to 65535"),
    ({"SMTP_FROM": "not an address"}, "SMTP_FROM", "e-mail address"),
    ({"LISTEN_ADDR": "50051"}, "LISTEN_ADDR", "host:port"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL", "postgresql://"),
    ({"GRPC_MAX_MESSAGE_BYTES": "100"}, "GRPC_MAX_MESSAGE_BYTES", "1048576"),
    ({"PROCESSES": "two"}, "PROCESSES", "integer"),
    ({"PUSH_WORKERS": "-1"}, "PUSH_WORKERS", "0 to 64"),
    ({"ATTACHMENT_EXTENSIONS": "pdf,png"}, "ATTACHMENT_EXTENSIONS", ".pdf"),
    ({"AUTH_REQUIRED": "sometimes"}, "AUTH_REQUIRED", "true or false"),
    ({"INVOICE_NUMBER_WIDTH": "0"}, "INVOICE_NUMBER_WIDTH", "1 to 20"),
    ({"IDEMPOTENCY_TTL_SECONDS": "0"}, "IDEMPOTENCY_TTL_SECONDS", "seconds"),
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER", "otlp"),
]


def _env(**overrides: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**keep, "LISTEN_ADDR": "127.0.0.1:0", "EMBEDDED_PG_DIR": "/nonexistent/never-started", **overrides}


@pytest.mark.parametrize(
    ("env", "variable", "accepts"), BAD, ids=[next(iter(e)) + "=" + next(iter(e.values())) for e, _, _ in BAD]
)
def test_a_bad_setting_stops_start_up_with_one_line_naming_it(env, variable, accepts):
    for command in (["serve"], ["migrate"], ["keys", "list", "--company", "x"]):
        done = subprocess.run([sys.executable, "-m", "service", *command], cwd=ROOT, env=_env(**env),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert variable in lines[0] and accepts in lines[0], lines[0]
        assert not os.path.exists("/nonexistent/never-started"), "nothing may start before the settings are valid"


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        _settings({"LOG_LEVEL": "loud", "DB_POOL_MAX": "0", "SMTP_PORT": "x"})
    assert [line.split("=")[0].split()[-1] for line in info.value.lines] == ["DB_POOL_MAX", "LOG_LEVEL", "SMTP_PORT"]


def _settings(env: dict[str, str]) -> Settings:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_env(**env))
    try:
        return Settings.from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"SMTP_STARTTLS": "on"}, "smtp_starttls", True),
        ({"SMTP_STARTTLS": "FALSE"}, "smtp_starttls", False),
        ({"AUTH_REQUIRED": "no"}, "auth_required", False),
        ({"LOG_LEVEL": "debug"}, "log_level", "DEBUG"),
        ({"ATTACHMENT_EXTENSIONS": " .PDF, .png "}, "attachment_extensions", (".pdf", ".png")),
        ({"DB_POOL_MAX": ""}, "pool_max", 10),  # empty is unset: the default
        ({"SHUTDOWN_GRACE_SECONDS": "2.5"}, "shutdown_grace_seconds", 2.5),
        ({"LISTEN_ADDR": "[::]:50051"}, "listen_addr", "[::]:50051"),
    ],
)
def test_good_spellings_are_accepted(env, field, value):
    assert getattr(_settings(env), field) == value


def test_the_development_page_token_secret_is_flagged_outside_local_runs(database_url):
    with service_process({"DATABASE_URL": database_url}) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        output = proc.stdout.read().decode() if proc.stdout else ""
    assert "PAGE_TOKEN_SECRET is the built-in development value" in output
    with service_process({"DATABASE_URL": database_url, "PAGE_TOKEN_SECRET": "s3cret-shared"}) as (proc, _):
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        output = proc.stdout.read().decode() if proc.stdout else ""
    assert "PAGE_TOKEN_SECRET" not in output
