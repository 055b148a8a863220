"""`buf breaking` guards the contract: a copy of proto/ with a renamed field is refused against this one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUF = ROOT / "node_modules" / ".bin" / "buf"


def _copy(tmp: Path) -> Path:
    work = tmp / "repo"
    shutil.copytree(ROOT / "proto", work / "proto")
    shutil.copytree(ROOT / "third_party", work / "third_party")
    shutil.copy(ROOT / "buf.yaml", work / "buf.yaml")
    return work


def _breaking(work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUF), "breaking", str(work), "--against", str(ROOT)], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.skipif(not BUF.exists(), reason="buf is installed by `make test` (npm @bufbuild/buf)")
def test_renaming_a_field_breaks_and_adding_one_does_not(tmp_path: Path) -> None:
    work = _copy(tmp_path)
    invoice = work / "proto" / "invoices" / "v1" / "invoice.proto"
    text = invoice.read_text()
    invoice.write_text(text.replace("string amount_due = 23;", "string amount_outstanding = 23;"))
    broken = _breaking(work)
    assert broken.returncode != 0 and "amount_due" in broken.stdout + broken.stderr
    # a number no field uses (the contract keeps growing from 45 up)
    invoice.write_text(text.replace("  bool is_deleted = 44", "  string extra_note = 999;\n  bool is_deleted = 44"))
    assert _breaking(work).returncode == 0, _breaking(work).stdout
