"""Locked, reproducible installs: every dependency pyproject.toml declares is pinned with hashes in the lock
files, the environment this suite runs in is exactly what requirements/dev.lock pins, and `make` installs
with --require-hashes and --no-deps, so nothing is resolved at install time."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def pins(lock: str) -> dict[str, str]:
    """name -> version of a lock file; each pin must carry at least one hash."""
    text = (ROOT / "requirements" / lock).read_text()
    out: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = PIN.match(block)
        if match:
            assert "--hash=sha256:" in block, f"{lock}: {match.group(1)} is pinned without a hash"
            out[canonicalize_name(match.group(1))] = match.group(2)
    return out


def declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    dev = [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    return runtime, dev


def test_every_declared_dependency_is_locked_within_its_bounds():
    runtime, dev = declared()
    for lock, requirements in (("runtime.lock", runtime), ("dev.lock", runtime + dev)):
        locked = pins(lock)
        for req in requirements:
            name = canonicalize_name(req.name)
            assert name in locked, f"{req.name} is declared but not in {lock}: run make lock"
            assert req.specifier.contains(locked[name], prereleases=True), f"{lock}: {name} {locked[name]} vs {req}"


def test_runtime_dependencies_have_major_version_bounds():
    runtime, _ = declared()
    unbounded = [str(r) for r in runtime if not any(s.operator in ("<", "==", "~=") for s in r.specifier)]
    assert not unbounded, f"declare an upper bound for {unbounded}"


def test_this_environment_is_exactly_the_lock():
    locked = pins("dev.lock")
    installed: dict[str, str] = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = {n: (installed.get(n), v) for n, v in locked.items() if n in installed and installed[n] != v}
    assert not drift, f"installed versions differ from requirements/dev.lock: {drift}"
    runtime, dev = declared()
    missing = [r.name for r in runtime + dev if canonicalize_name(r.name) not in installed]
    assert not missing, missing


def test_make_installs_from_the_lock_with_hashes_only():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes --no-deps -r requirements/dev.lock" in makefile
    assert "--no-build-isolation" in makefile  # the project's own build resolves nothing either
    assert "npm ci" in makefile and "npm install" not in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements/runtime.lock" in dockerfile
