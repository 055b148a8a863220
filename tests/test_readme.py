"""The README's examples work as printed: a key made with the real `keys create` command, then every
grpcurl line against a server that requires keys (only the address is swapped for the test server's)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ServerThread

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def examples() -> list[tuple[str, int]]:
    """(command, the gRPC code a refused command ends with; 0: it succeeds) for each command line of the
    README's examples block ("# Refused" lines: INVALID_ARGUMENT, or FAILED_PRECONDITION where they say so)."""
    text = README.read_text()
    section = text[text.index("## grpcurl examples") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README has no grpcurl examples block"
    out, refuse_next = [], 0
    for raw in block.group(1).splitlines():
        if raw.startswith("# Refused"):
            refuse_next = 9 if raw.startswith("# Refused (FAILED_PRECONDITION)") else 3
        elif raw.startswith(("grpcurl ", "python -m service")):
            out.append((raw, refuse_next))
            refuse_next = 0
    return out


@pytest.fixture(scope="module")
def secured(database_url: str):
    srv = ServerThread(database_url, auth_required=True).start()
    yield srv
    srv.stop()


def test_readme_examples_work_as_printed(secured, database_url, db):
    cmds = examples()
    assert len(cmds) >= 10 and cmds[0][0].startswith("python -m service keys create")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DATABASE_URL": database_url}
    for cmd, refused in cmds:
        run = subprocess.run(["bash", "-c", cmd.replace("127.0.0.1:50051", secured.address)], cwd=ROOT,
                             capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
        if cmd.startswith("python -m service keys create"):
            assert run.returncode == 0, run.stderr
            env["KEY"] = re.search(r"key:\s+(\S+)", run.stdout).group(1)  # type: ignore[union-attr]
            assert env["KEY"] not in run.stderr  # shown once, on stdout only
        elif not refused:
            assert run.returncode == 0, f"{cmd}\n{run.stderr}"
        else:
            assert run.returncode != 0 and json.loads(run.stderr)["code"] == refused, run.stderr
    row = db.fetch("SELECT status, amount_due FROM invoices WHERE company_id = 'acme' AND invoice_number = 'DEMO-1'")
    assert row[0]["status"] == "PARTIALLY_PAID" and str(row[0]["amount_due"]) == "260.00"
