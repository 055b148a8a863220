"""Before/after: the RPC and ListInvoices benchmarks for two git revisions, in one run on this machine.

    python bench/compare.py REV_A REV_B [--rounds 3] [--quick] [--keep] [--verbose] [--only rpc|list]
    make bench-compare REV_A=c97655e REV_B=main

Each revision is checked out in a temporary worktree (`git worktree add --detach`). The benchmark scripts
are always this checkout's (bench/rpc_bench.py, bench/list_bench.py); only the service they start comes from
the revision's tree (`--service-root`), with its own migrations. A revision whose requirements/dev.lock and
pyproject.toml equal this checkout's runs on this checkout's .venv (its generated stubs too, unless its
proto/ differs: then its stubs are generated into its worktree); otherwise `make install gen` builds a
.venv in its worktree, and its service runs on that. Both services run side by side (a database each)
and each bench measures them taking turns, window by window (A B, then B A, ...), so drift (other load on
the machine, a warming cache) falls on both alike; each figure is the median of its windows. Prints a
table with the change per figure and flags any figure worse by more than 5% (refused calls: any at all).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import machine, python_of, service_env  # noqa: E402

THRESHOLD = 0.05
RPC_ARGS = ["--seconds", "2", "--levels", "1,16,64", "--processes", "1,2", "--no-limits"]
LIST_ARGS = ["--invoices", "200000", "--small", "10000", "--page-size", "1000"]
QUICK_RPC_ARGS = ["--seconds", "1", "--levels", "1,16", "--processes", "1,2", "--no-limits"]
QUICK_LIST_ARGS = ["--invoices", "30000", "--small", "10000", "--page-size", "1000"]


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _same_as_here(commit: str, path: str) -> bool:
    """Whether `path` at `commit` equals this checkout's working copy of it."""
    shown = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=ROOT, capture_output=True)
    here = ROOT / path
    return shown.returncode == 0 and here.exists() and shown.stdout == here.read_bytes()


def _proto_same(commit: str) -> bool:
    return git("rev-parse", f"{commit}:proto") == git("rev-parse", "HEAD:proto") and not git(
        "status", "--porcelain", "--", "proto"
    )


@dataclass
class Tree:
    label: str
    rev: str
    commit: str
    path: Path
    how: str


def prepare(label: str, rev: str, base: Path) -> Tree:
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = base / label
    git("worktree", "add", "--detach", str(path), commit)
    if all(_same_as_here(commit, f) for f in ("requirements/dev.lock", "pyproject.toml")):
        how = "lock files equal this checkout's: runs on this checkout's .venv"
        if not _proto_same(commit):
            _stubs(path)
            how += ", with stubs generated from its own proto/"
        return Tree(label, rev, commit, path, how)
    subprocess.run(["make", "install", "gen"], cwd=path, check=True, stdout=subprocess.DEVNULL)
    return Tree(label, rev, commit, path, "lock files differ: its own .venv (make install gen in its worktree)")


def _resolves(tree: Tree) -> str:
    """Where the tree's service imports `service` from, as the benches start it (must be its worktree)."""
    env = service_env(tree.path, "", "")
    probe = [python_of(tree.path), "-c", "import service; print(service.__file__)"]
    found = subprocess.run(probe, cwd=tree.path, env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not found.startswith(str(tree.path)):
        raise SystemExit(f"{tree.label}: `service` resolves to {found}, not to {tree.path}")
    return found


def _stubs(path: Path) -> None:
    """The revision's message and gRPC stubs in its worktree's gen/python (the service puts them first)."""
    out = path / "gen" / "python"
    (out / "invoices" / "v1").mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(path)) for p in (path / "proto" / "invoices" / "v1").glob("*.proto"))
    includes = ["-Iproto", "-Ithird_party/googleapis"]
    protoc = [sys.executable, "-m", "grpc_tools.protoc", *includes]
    subprocess.run([*protoc, f"--python_out={out}", f"--grpc_python_out={out}", *protos], cwd=path, check=True)
    descriptors = f"--descriptor_set_out={out}/invoices/v1/descriptor_set.binpb"
    subprocess.run([*protoc, "--include_source_info", descriptors, *protos], cwd=path, check=True)
    for init in ("invoices/__init__.py", "invoices/v1/__init__.py"):
        (out / init).touch()


_NOISE = ("{", "  loaded", "/", "  return Path")  # the service's JSON log lines, progress, library warnings


def run(trees: list[Tree], script: str, extra: list[str], logs: Path, verbose: bool) -> dict[str, Any]:
    """One benchmark script of this checkout (on this checkout's .venv) against both trees' services (each on
    its tree's .venv if it has one), taking turns; its figures."""
    result, log = logs / f"{script}.json", logs / f"{script}.txt"
    roots = [arg for t in trees for arg in ("--service-root", str(t.path))]
    command = [sys.executable, str(ROOT / "bench" / f"{script}.py"), *roots, "--json", str(result), *extra]
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    text = log.read_text()
    if done.returncode:
        print("\n".join(text.splitlines()[-40:]))
        raise SystemExit(f"{script} failed: exit {done.returncode} (command: {' '.join(command)})")
    if verbose:
        print(f"--- {script} ---")
        print("\n".join(line for line in text.splitlines() if not line.startswith(_NOISE)))
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def table(figures: dict[str, Any]) -> list[str]:
    lines = [f"{'figure':<58} | {'A':>11} | {'B':>11} | change | verdict"]
    worse = 0
    for name, spec in figures.items():
        got = spec["values"]
        if not got.get("A") or not got.get("B"):
            continue
        # Refused calls add up over the windows (any is a flag); the rest are medians of their windows.
        pick = sum if name.endswith(" refused") else statistics.median
        va, vb = pick(got["A"]), pick(got["B"])
        change = (vb - va) / va if va else (0.0 if vb == va else float("inf"))
        loss = -change if spec["higher_is_better"] else change
        if spec.get("reference"):
            verdict = "(not the service: machine drift)"
        elif name.endswith(" refused"):
            verdict = "REFUSALS" if vb or va else ""
        elif loss > THRESHOLD:
            verdict = f"WORSE by more than {THRESHOLD:.0%}"
        else:
            verdict = "better" if loss < -THRESHOLD else ""
        worse += verdict.startswith(("WORSE", "REFUSALS"))
        shown = f"{change:+6.1%}" if change != float("inf") else "   new"
        lines.append(f"{name:<58} | {va:>11,.3f} | {vb:>11,.3f} | {shown} | {verdict}")
    lines.append(f"{worse} figure(s) flagged" if worse else f"no figure worse by more than {THRESHOLD:.0%}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev_a", help="the before revision (e.g. c97655e)")
    parser.add_argument("rev_b", help="the after revision (e.g. main)")
    parser.add_argument("--rounds", type=int, default=3, help="RPC windows per figure and revision (A B, B A, ...)")
    parser.add_argument("--quick", action="store_true", help="short windows and a small list: checks the tool")
    parser.add_argument("--keep", action="store_true", help="keep the worktrees and logs")
    parser.add_argument("--verbose", action="store_true", help="print each bench's own output too")
    parser.add_argument("--only", choices=("rpc", "list"), help="run one of the two benches")
    args = parser.parse_args()
    rpc_args, list_args = (QUICK_RPC_ARGS, QUICK_LIST_ARGS) if args.quick else (RPC_ARGS, LIST_ARGS)
    rpc_args = [*rpc_args, "--rounds", str(args.rounds)]

    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    logs, cache = base / "logs", base / "rows-cache"
    logs.mkdir()
    trees: list[Tree] = []
    try:
        trees = [prepare("A", args.rev_a, base), prepare("B", args.rev_b, base)]
        print(f"machine at start: {machine()}")
        for t in trees:
            print(f"{t.label}: {t.rev} = {t.commit[:12]} ({git('log', '-1', '--format=%s', t.commit)[:70]})")
            print(f"   {t.path}; {t.how}; service from {_resolves(t)}")
        print(f"bench scripts: this checkout's ({git('rev-parse', '--short', 'HEAD')}, {ROOT})")
        print(f"rpc_bench.py {' '.join(rpc_args)}\nlist_bench.py {' '.join(list_args)}")
        print("A and B run side by side (each its own database) and take turns window by window: A B, B A, ...")
        figures: dict[str, Any] = {}
        if args.only != "list":
            figures.update(run(trees, "rpc_bench", rpc_args, logs, args.verbose)["figures"])
            print(f"rpc_bench done at {time.monotonic() - started:.0f} s; {machine()}", flush=True)
        if args.only != "rpc":
            listed = run(trees, "list_bench", [*list_args, "--rows-cache", str(cache)], logs, args.verbose)
            figures.update(listed["figures"])
            print(f"list_bench done at {time.monotonic() - started:.0f} s; {machine()}")
        print()
        print("\n".join(table(figures)))
        print(f"\n(medians over the windows, refused: totals; change = B against A; machine at end: {machine()})")
        if args.keep:
            print(f"each bench's full output: {logs}")
    finally:
        for t in trees:
            if not args.keep:
                subprocess.run(["git", "worktree", "remove", "--force", str(t.path)], cwd=ROOT, check=False)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)
        print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
