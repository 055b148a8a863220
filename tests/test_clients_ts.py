"""`make clients-ts`: the TypeScript stubs alone, and the README naming every npm package they import."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "gen" / "clients" / "ts"


def _package(specifier: str) -> str:
    parts = specifier.split("/")
    return "/".join(parts[:2]) if specifier.startswith("@") else parts[0]


def test_make_clients_ts_generates_the_stubs_without_go_or_java():
    others = {d: d.exists() for d in (ROOT / "gen" / "clients" / "go", ROOT / "gen" / "clients" / "java")}
    made = subprocess.run(["make", "-s", "clients-ts"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    generated = {p.relative_to(OUT).as_posix() for p in OUT.rglob("*.ts")}
    expected = {"invoices/v1/invoice_service.ts", "invoices/v1/push_operation_service.ts", "google/rpc/status.ts"}
    assert expected <= generated
    assert {d: d.exists() for d in others} == others  # no Go or Java plugin ran


def test_readme_names_every_npm_package_the_stubs_import():
    imports = {_package(m) for path in OUT.rglob("*.ts") for m in re.findall(r'from "([^".][^"]*)"', path.read_text())}
    assert imports == {"@grpc/grpc-js", "@bufbuild/protobuf"}, imports
    readme = ROOT / "README.md"
    section = readme.read_text().split("## Clients in other languages", 1)[1].split("\n## ", 1)[0]
    assert "make clients-ts" in section
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for package in imports:
        assert f"`{package}`" in section, package
        assert f"node_modules/{package}" in locked, package  # the version the stubs were generated against
