"""How long ``optconf check keras`` takes in the ``ci`` profile, per backend, eager and compiled, and where the time
goes: starting the worker and the framework, waiting for the candidate (Keras), and the host (the oracle and the
judgement, which overlaps the candidate's work on the second core).

    python benchmarks/check_time.py [--backends tensorflow,jax,torch] [--profile ci] [--json PATH]

Each run is the command line a user runs, in a subprocess: ``optconf check keras --backend B --compile M --quiet
--json ...``; the split comes from the report's ``timing`` block.  Goals on the 2-core CI machine (issue "Reports
people look at"): JAX under 90 s, TensorFlow and torch under 45 s, eager.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

RUNS = (("tensorflow", "eager"), ("tensorflow", "function"), ("jax", "eager"), ("jax", "jit"), ("torch", "eager"))
GOALS_S = {"tensorflow": 45.0, "jax": 90.0, "torch": 45.0}


def measure(backend: str, mode: str, profile: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "report.json")
        command = [sys.executable, "-m", "optimizer_conformance.conformance.cli", "check", "keras", "--backend",
                   backend, "--compile", mode, "--profile", profile, "--quiet", "--json", path, *extra]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if not os.path.exists(path):
            return {"backend": backend, "compile": mode, "wall": wall, "error": done.stderr.strip()[-300:]}
        report = json.load(open(path))
    return {"backend": backend, "compile": mode, "wall": wall, **report.get("timing", {}), **report["summary"],
            "exit": done.returncode}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--algorithm", help="passed on to optconf check (default: every algorithm)")
    parser.add_argument("--eager-only", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    extra = ["--algorithm", args.algorithm] if args.algorithm else []
    rows = [measure(b, m, args.profile, extra) for b, m in RUNS
            if b in backends and (m == "eager" or not args.eager_only)]

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"optconf check keras, profile {args.profile} ({os.cpu_count()} cores)")
    for column in ("backend", "compile", "wall s", "start-up s", "candidate s", "host s", "passed", "failed",
                   "upstream", "n/a", "goal"):
        table.add_column(column, justify="right" if column.endswith(("s", "passed", "failed", "n/a")) else "left")
    for r in rows:
        if "error" in r:
            table.add_row(r["backend"], r["compile"], f"{r['wall']:.0f}", "", "", "", "", "", "", "", r["error"][:40])
            continue
        goal = GOALS_S[r["backend"]]
        verdict = f"{'within' if r['wall'] <= goal else 'over'} {goal:.0f} s" if r["compile"] == "eager" else ""
        table.add_row(r["backend"], r["compile"], f"{r['wall']:.0f}", f"{r.get('startup', 0):.0f}",
                      f"{r.get('candidate', 0):.0f}", f"{r.get('host', 0):.0f}", str(r["passed"]), str(r["failed"]),
                      str(r["known_upstream_bugs"]), str(r["not_applicable"]), verdict)
    Console(width=max(Console().width, 132)).print(table)  # a log file is 80 columns to rich: too narrow
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
