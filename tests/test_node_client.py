"""The contract from Node.js: tests/node/invoice_client.test.ts, compiled against the TypeScript stubs that
ts-proto generates (buf.gen.ts.yaml), runs with `node --test` against a real server that requires keys."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from tests.conftest import ServerThread

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "gen" / "node-suite" / "tests" / "node" / "invoice_client.test.js"


def test_the_node_client_suite_passes(database_url: str) -> None:
    # `make` owns generation and compilation (up to date after `make test`, rebuilt when a .proto changes).
    subprocess.run(["make", "-s", "node-suite"], cwd=ROOT, check=True, timeout=300)
    company = f"node-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": database_url}
    made = subprocess.run([sys.executable, "-m", "service", "keys", "create", "--company", company], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    key = re.search(r"key:\s+(\S+)", made.stdout).group(1)  # type: ignore[union-attr]
    srv = ServerThread(database_url, auth_required=True).start()
    try:
        run = subprocess.run(
            ["node", "--test", "--test-reporter=tap", str(SUITE)],
            env={**env, "INVOICE_SERVICE_ADDR": srv.address, "INVOICE_SERVICE_KEY": key, "INVOICE_COMPANY_ID": company},
            capture_output=True, text=True, timeout=240, cwd=ROOT,
        )  # fmt: skip
    finally:
        srv.stop()
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    passed = int(re.search(r"^# pass (\d+)", report, re.M).group(1))  # type: ignore[union-attr]
    assert passed == 5 and re.search(r"^# fail 0", report, re.M), report
