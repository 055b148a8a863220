"""The compose stack, read as docker compose would: every service it needs, a configuration the service
accepts, a collector whose pipelines are wired, and commands that exist. (No Docker engine runs on the
development machine; the image's steps are replayed outside Docker, see the README.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_postgres_the_service_and_a_collector_wired_together():
    compose = load("compose.yaml")
    services = compose["services"]
    assert {"postgres", "invoices", "otel-collector"} <= set(services)
    invoices = services["invoices"]
    assert invoices["build"] == "."
    assert invoices["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = {k: str(v) for k, v in invoices["environment"].items()}
    postgres = services["postgres"]["environment"]
    user, password, db = postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
    assert env["DATABASE_URL"] == f"postgresql://{user}:{password}@postgres:5432/{db}"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith("otel-collector:4317")
    # The service accepts exactly this environment (validated settings), and it is not a local run.
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        settings = Settings.from_env()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert settings.database_url and not settings.is_local and settings.listen_addr == "0.0.0.0:50051"
    assert invoices["command"] == ["serve"]  # the image's ENTRYPOINT is `python -m service`
    assert 'ENTRYPOINT ["python", "-m", "service"]' in (ROOT / "Dockerfile").read_text()
    mount = services["otel-collector"]["volumes"][0].split(":")[0]
    assert (ROOT / mount).is_file()
    for service in services.values():  # images pinned to a release, never `latest`
        if "image" in service:
            assert ":" in service["image"] and not service["image"].endswith(":latest"), service["image"]


def test_the_collector_pipelines_receive_otlp_and_export_what_they_name():
    config = load("deploy/otel-collector.yaml")
    for name, pipeline in config["service"]["pipelines"].items():
        assert pipeline["receivers"] == ["otlp"], name
        for exporter in pipeline["exporters"]:
            assert exporter in config["exporters"], f"{name} exports to undefined {exporter}"
        for processor in pipeline.get("processors", []):
            assert processor in config["processors"]
    assert set(config["service"]["pipelines"]) == {"traces", "metrics"}
