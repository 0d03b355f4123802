"""``optconf``: the project's command line.

    optconf generate [--check] [--only PATTERN...] [--jobs N] [--out DIR]

writes the golden fixture corpus into ``fixtures/`` (``--check``: regenerates
it and reports every difference, exit 1 if any).

    optconf check keras [--backend tensorflow|jax|torch|all] [--dtype float32|float64|all]
                        [--compile eager|function|jit] [--json PATH]

runs real Keras on the built-in trajectories (every rule and pipeline
feature), replays them through the oracle and prints, per trajectory, the
worst ``|Keras − exact| / budget``.  Exit status: 0 conformant, 1 not, 2 when
the arguments are wrong or the candidate cannot be run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")
DTYPES = ("float32", "float64", "float16", "bfloat16")
# Keras's torch backend fails on bfloat16 variables itself.
BACKEND_DTYPES = {"tensorflow": DTYPES, "jax": DTYPES, "torch": DTYPES[:3]}
COMPILE_MODES = {"tensorflow": ("eager", "function", "jit"), "jax": ("eager", "jit"), "torch": ("eager",)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optconf", description="Keras Adam-family conformance against an exact oracle."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check a candidate against the oracle")
    check.add_argument("candidate", help="the candidate to check: 'keras' (real Keras 3)")
    check.add_argument("--backend", default="all", help=f"one of {', '.join(BACKENDS)} or 'all' (default)")
    check.add_argument("--dtype", default="all", help=f"one of {', '.join(DTYPES)} or 'all' (default)")
    check.add_argument("--compile", default="eager", help="eager (default), function (tf.function) or jit")
    check.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    generate = sub.add_parser("generate", help="write the golden fixture corpus (or --check it)")
    generate.add_argument("--check", action="store_true", help="regenerate and report any difference, write nothing")
    generate.add_argument("--only", nargs="+", metavar="PATTERN", help="fixture names or shell patterns (adam-*)")
    generate.add_argument("--jobs", type=int, default=None, help="processes (default: all cores)")
    generate.add_argument("--out", default="fixtures", help="the fixture directory (default: fixtures)")
    generate.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                          help="progress bar on stderr (default: when stderr is a terminal)")
    generate.add_argument("--list", action="store_true", help="list the corpus and exit")
    return parser


def run_generate(args) -> int:
    from pathlib import Path

    from conformance import generate as gen

    if args.list:
        for entry in gen.select(args.only):
            print(f"{entry.name:<44} {entry.description}")
        return 0
    if args.jobs is not None and args.jobs < 1:
        return _usage_error(f"--jobs must be a positive integer; got {args.jobs}")
    try:
        entries = gen.select(args.only)
    except ValueError as error:
        return _usage_error(str(error))
    out = Path(args.out)
    started = time.perf_counter()
    if args.check:
        problems = gen.check(out, entries, args.jobs, args.progress)
        for p in problems:
            print(p)
        print(f"{len(entries)} fixtures regenerated in {time.perf_counter() - started:.1f} s: "
              f"{'identical' if not problems else f'{len(problems)} differ'}")
        return 1 if problems else 0
    count = gen.write(out, entries, args.jobs, args.progress)
    print(f"wrote {count} fixtures to {out}/ in {time.perf_counter() - started:.1f} s")
    return 0


def _choices(value: str, accepted: tuple[str, ...], name: str) -> tuple[str, ...]:
    if value == "all":
        return accepted
    if value not in accepted:
        raise SystemExit(_usage_error(f"--{name} must be one of {', '.join(accepted)} or 'all'; got {value!r}"))
    return (value,)


def _usage_error(message: str) -> int:
    print(f"optconf: error: {message}", file=sys.stderr)
    return 2


def check_keras(backends, dtypes, compile_mode: str) -> list[dict]:
    from conformance.scenarios import SCENARIOS, spec
    from conformance.trajectory import compare, oracle_states, run_keras

    rows = []
    for backend in backends:
        if compile_mode not in COMPILE_MODES[backend]:
            raise SystemExit(_usage_error(f"--compile {compile_mode} is not available on the {backend} backend"))
        wanted = [d for d in dtypes if d in BACKEND_DTYPES[backend]]
        specs = [(name, dtype, spec(name, dtype, compile=compile_mode)) for name in SCENARIOS for dtype in wanted]
        started = time.perf_counter()
        results = run_keras([s for _, _, s in specs], backend)
        for (name, dtype, s), result in zip(specs, results):
            findings = compare(oracle_states(s), result["states"])
            worst = max(findings, key=lambda f: f.ratio)
            rows.append({
                "backend": backend, "compile": compile_mode, "dtype": dtype, "trajectory": name,
                "keras_version": result["keras_version"], "passed": worst.ratio <= 1.0,
                "worst_ratio": worst.ratio, "where": str(worst),
            })
        print(f"# {backend}: {len(specs)} trajectories in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return rows


def _print_table(rows: list[dict]) -> None:
    print(f"{'backend':<11} {'mode':<8} {'dtype':<8} {'trajectory':<36} {'result':<6} worst ratio")
    for r in rows:
        print(f"{r['backend']:<11} {r['compile']:<8} {r['dtype']:<8} {r['trajectory']:<36} "
              f"{'pass' if r['passed'] else 'FAIL':<6} {r['worst_ratio']:.3g}")
    failed = [r for r in rows if not r["passed"]]
    for r in failed:
        print(f"FAIL {r['backend']} {r['dtype']} {r['trajectory']}: {r['where']}")
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        return run_generate(args)
    if args.candidate != "keras":
        return _usage_error(
            f"candidate must be 'keras' (third-party candidates come with the harness); got {args.candidate!r}"
        )
    try:
        backends = _choices(args.backend, BACKENDS, "backend")
        dtypes = _choices(args.dtype, DTYPES, "dtype")
        rows = check_keras(backends, dtypes, args.compile)
    except SystemExit as exit:
        return int(exit.code)
    except RuntimeError as error:
        return _usage_error(str(error).splitlines()[0] if str(error) else "Keras could not be run")
    _print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"platform": platform.platform(), "python": platform.python_version(), "rows": rows}, f, indent=2)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
