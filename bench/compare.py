"""Before/after: the RPC and ListInvoices benchmarks for two git revisions, in one run on this machine.

    python bench/compare.py REV_A REV_B [--rounds 2] [--quick] [--keep]      (or: make bench-compare)

Each revision is checked out in a temporary worktree (`git worktree add --detach`). The benchmark scripts
are always this checkout's (bench/rpc_bench.py, bench/list_bench.py); only the service they start comes from
the revision's tree (`--service-root`), with its own migrations. A revision whose requirements/dev.lock and
pyproject.toml equal this checkout's runs on this checkout's .venv (its generated stubs too, unless its
proto/ differs: then its stubs are generated into its worktree); otherwise `make install gen` builds a
.venv in its worktree. Runs are interleaved A, B, A, B, ... so drift (other load on the machine, a warming
disk) falls on both alike; each figure is the median over the rounds. Prints a table with the change per
figure and flags any figure worse by more than 5% (refusals: any at all).
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

from bench._common import machine  # noqa: E402

THRESHOLD = 0.05
RPC_ARGS = ["--seconds", "3", "--levels", "1,16,64", "--processes", "1,2", "--no-limits"]
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
    python: str
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
        return Tree(label, rev, commit, path, sys.executable, how)
    subprocess.run(["make", "install", "gen"], cwd=path, check=True, stdout=subprocess.DEVNULL)
    return Tree(label, rev, commit, path, str(path / ".venv" / "bin" / "python"), "own .venv (make install gen)")


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


def run(tree: Tree, script: str, extra: list[str], logs: Path, round_: int, verbose: bool) -> dict[str, Any]:
    """One benchmark script of this checkout against the tree's service; its figures, its output logged."""
    result = logs / f"{script}-{tree.label}-{round_}.json"
    log = logs / f"{script}-{tree.label}-{round_}.txt"
    command = [
        tree.python,
        str(ROOT / "bench" / f"{script}.py"),
        "--service-root",
        str(tree.path),
        "--json",
        str(result),
    ]
    with log.open("w") as out:
        done = subprocess.run([*command, *extra], stdout=out, stderr=subprocess.STDOUT, check=False)
    text = log.read_text()
    if done.returncode:
        print("\n".join(text.splitlines()[-40:]))
        raise SystemExit(f"{script} against {tree.label} ({tree.rev}) failed: exit {done.returncode}")
    if verbose:
        print(f"--- {script} against {tree.label} ({tree.rev}), round {round_} ---")
        print("\n".join(line for line in text.splitlines() if not line.startswith(_NOISE)))
    data: dict[str, Any] = json.loads(result.read_text())
    return data


def table(trees: list[Tree], runs: dict[str, list[dict[str, Any]]]) -> list[str]:
    a = trees[0]
    names = list(runs[a.label][0]["figures"])
    lines = [f"{'figure':<58} | {'A':>10} | {'B':>10} | change | verdict"]
    worse = 0
    for name in names:
        values = [[r["figures"][name]["value"] for r in runs[t.label] if name in r["figures"]] for t in trees]
        if not all(values):
            continue
        va, vb = (statistics.median(v) for v in values)
        spec = runs[a.label][0]["figures"][name]
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
        lines.append(f"{name:<58} | {va:>10,.3f} | {vb:>10,.3f} | {shown} | {verdict}")
    lines.append(f"{worse} figure(s) flagged" if worse else f"no figure worse by more than {THRESHOLD:.0%}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev_a", help="the before revision (e.g. c97655e)")
    parser.add_argument("rev_b", help="the after revision (e.g. main)")
    parser.add_argument("--rounds", type=int, default=2, help="A, B pairs to run (interleaved)")
    parser.add_argument("--quick", action="store_true", help="short windows and a small list: checks the tool")
    parser.add_argument("--keep", action="store_true", help="keep the worktrees and logs")
    parser.add_argument("--verbose", action="store_true", help="print every run's own output too")
    args = parser.parse_args()
    rpc_args, list_args = (QUICK_RPC_ARGS, QUICK_LIST_ARGS) if args.quick else (RPC_ARGS, LIST_ARGS)

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
            print(f"   {t.path}; {t.how}")
        print(f"bench scripts: this checkout's ({git('rev-parse', '--short', 'HEAD')}), {ROOT}")
        print(f"rpc_bench.py {' '.join(rpc_args)}\nlist_bench.py {' '.join(list_args)} (rows cached across runs)")
        runs: dict[str, list[dict[str, Any]]] = {t.label: [] for t in trees}
        for round_ in range(1, args.rounds + 1):
            for t in trees:
                rpc = run(t, "rpc_bench", rpc_args, logs, round_, args.verbose)
                listed = run(t, "list_bench", [*list_args, "--rows-cache", str(cache)], logs, round_, args.verbose)
                rpc["figures"].update(listed["figures"])
                runs[t.label].append(rpc)
                print(f"round {round_} {t.label} done at {time.monotonic() - started:5.0f} s; {machine()}", flush=True)
        print()
        print("\n".join(table(trees, runs)))
        print(f"\n(median over {args.rounds} rounds; change = B against A; machine at end: {machine()})")
        print(f"total {time.monotonic() - started:.0f} s; each run's full output: {logs}" if args.keep else "")
    finally:
        for t in trees:
            if not args.keep:
                subprocess.run(["git", "worktree", "remove", "--force", str(t.path)], cwd=ROOT, check=False)
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
            print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
