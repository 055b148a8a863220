"""`make clients` works for client teams: buf.gen.yaml generates Go and Java stubs with locally installed
plugins (Debian packages, offline), and code written against them compiles; the Go client also calls a
real server. The toolchains come from `make client-tools`; CI installs them and sets
REQUIRE_CLIENT_TOOLCHAINS=1 so that a missing one fails instead of skipping."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from tests.conftest import ServerThread

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / "node_modules" / ".bin" / "buf"
TOOLS = ("protoc", "protoc-gen-go", "protoc-gen-go-grpc", "grpc_java_plugin", "go", "javac", "java")
JARS = ("protobuf", "grpc-api", "grpc-stub", "grpc-protobuf", "grpc-protobuf-lite", "grpc-context", "guava",
        "proto-google-common-protos", "geronimo-annotation-1.3-spec")  # fmt: skip
GO_PACKAGE = "github.com/invoice-service/clients/go/invoices/v1"

missing = [t for t in TOOLS if not shutil.which(t)] + [j for j in JARS if not Path(f"/usr/share/java/{j}.jar").exists()]
pytestmark = pytest.mark.skipif(
    bool(missing) and not os.environ.get("REQUIRE_CLIENT_TOOLCHAINS"),
    reason=f"`make client-tools` installs {', '.join(missing)}",
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clients")
    subprocess.run([str(BUF), "generate", "--output", str(out)], cwd=ROOT, check=True, timeout=300)
    return out / "gen" / "clients"


def _rpcs() -> list[str]:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString((ROOT / "gen/python/invoices/v1/descriptor_set.binpb").read_bytes())
    return [m.name for f in fds.file for s in f.service if s.name == "InvoiceService" for m in s.method]


def test_go_stubs_build_and_a_go_client_calls_the_service(generated: Path, tmp_path: Path, database_url: str) -> None:
    gopath = tmp_path / "gopath"
    shutil.copytree(generated / "go", gopath / "src" / GO_PACKAGE.removesuffix("/invoices/v1"))
    (gopath / "src" / "gocheck").mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "clients" / "main.go", gopath / "src" / "gocheck" / "main.go")
    stubs = (generated / "go" / "invoices" / "v1" / "invoice_service_grpc.pb.go").read_text()
    assert all(f"\t{rpc}(ctx context.Context" in stubs for rpc in _rpcs()), "every RPC has a Go client method"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{gopath}:/usr/share/gocode", "GOFLAGS": "",
           "GOCACHE": str(ROOT / "gen" / ".gocache")}  # fmt: skip
    subprocess.run(["go", "build", "-o", str(tmp_path / "goclient"), "gocheck"], env=env, check=True, timeout=600)

    company = f"go-{uuid.uuid4().hex[:8]}"
    made = subprocess.run([sys.executable, "-m", "service", "keys", "create", "--company", company], cwd=ROOT,
                          env={**os.environ, "DATABASE_URL": database_url}, capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    key = re.search(r"key:\s+(\S+)", made.stdout).group(1)  # type: ignore[union-attr]
    srv = ServerThread(database_url, auth_required=True).start()
    try:
        run = subprocess.run([str(tmp_path / "goclient"), srv.address, company], capture_output=True, text=True,
                             env={**os.environ, "INVOICE_SERVICE_KEY": key}, timeout=60)  # fmt: skip
    finally:
        srv.stop()
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [
        "INVOICE_STATUS_DRAFT",
        "59.97",
        "12.59",
        "72.56",
    ]  # exact: each amount at the currency's exponent (3 x 19.99 at 21%)


def test_java_stubs_compile_and_run(generated: Path, tmp_path: Path) -> None:
    classes = tmp_path / "classes"
    sources = [str(p) for p in (generated / "java").rglob("*.java")]
    assert any(p.endswith("InvoiceServiceGrpc.java") for p in sources)
    classpath = ":".join(f"/usr/share/java/{j}.jar" for j in JARS)
    subprocess.run(["javac", "-nowarn", "-d", str(classes), "-cp", classpath, *sources,
                    str(ROOT / "tests" / "clients" / "InvoiceClientCheck.java")], check=True, timeout=600)  # fmt: skip
    run = subprocess.run(["java", "-cp", f"{classes}:{classpath}", "InvoiceClientCheck"], capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    first, second = run.stdout.splitlines()
    assert first == f"12.50 invoices.v1.InvoiceService/CreateInvoice {len(_rpcs())}"
    assert second == "CreateInvoiceResponse"
