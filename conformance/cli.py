"""``optconf``: the project's command line.

    optconf check CANDIDATE [--backend tensorflow|jax|torch] [--algorithm adam,adamw,nadam,nadam-legacy]
                            [--dtype float32,float64,float16,bfloat16] [--profile quick|ci|deep]
                            [--compile eager|function|jit] [--checks pipeline,one-step,fixtures,explore,api]
                            [--json PATH] [--write-failures DIR]

checks a candidate against the oracle: ``keras`` (real Keras 3 on the backend, default
``$KERAS_BACKEND`` or tensorflow) or ``package.module:Name`` (a Keras-style optimizer class or factory,
a ``tf_keras.optimizers.legacy`` optimizer, or a :mod:`conformance.adapter` adapter).  Exit status:
0 conformant, 1 not, 2 when the arguments are wrong or the candidate cannot be loaded.

    optconf generate [--check] [--only PATTERN...] [--jobs N] [--out DIR]

writes the golden fixture corpus into ``fixtures/`` (``--check``: regenerates it and reports every
difference, exit 1 if any).
"""

from __future__ import annotations

import argparse
import sys
import time

from reference.config import ALGORITHMS
from reference.formats import FORMATS

CHECK_FAMILIES = ("pipeline", "one-step", "fixtures", "explore", "api")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optconf", description="Keras Adam-family conformance against an exact oracle."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="check a candidate against the oracle")
    check.add_argument("candidate", help="'keras' or 'package.module:Name'")
    check.add_argument("--backend", help="tensorflow, jax or torch (default: $KERAS_BACKEND, else tensorflow)")
    check.add_argument("--algorithm", help=f"comma-separated, from {', '.join(ALGORITHMS)} "
                                           "(default: all the candidate claims)")
    check.add_argument("--dtype", help="comma-separated dtypes (default: all the candidate computes in)")
    check.add_argument("--profile", default="ci", help="quick, ci (default) or deep")
    check.add_argument("--compile", default="eager", help="eager (default), function (tf.function) or jit")
    check.add_argument("--checks", help=f"comma-separated, from {', '.join(CHECK_FAMILIES)} (default: all)")
    check.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    check.add_argument("--write-failures", metavar="DIR", help="write each shrunk failing example as a fixture")
    check.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress on stderr (default: when stderr is a terminal)")
    generate = sub.add_parser("generate", help="write the golden fixture corpus (or --check it)")
    generate.add_argument("--check", action="store_true", help="regenerate and report any difference, write nothing")
    generate.add_argument("--only", nargs="+", metavar="PATTERN", help="fixture names or shell patterns (adam-*)")
    generate.add_argument("--jobs", type=int, default=None, help="processes (default: all cores)")
    generate.add_argument("--out", default="fixtures", help="the fixture directory (default: fixtures)")
    generate.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                          help="progress bar on stderr (default: when stderr is a terminal)")
    generate.add_argument("--list", action="store_true", help="list the corpus and exit")
    return parser


def _usage_error(message: str) -> int:
    print(f"optconf: error: {message}", file=sys.stderr)
    return 2


def _list(value: str | None, accepted, name: str) -> list[str] | None:
    if value is None or value == "all":
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in accepted]
    if bad or not items:
        raise ValueError(f"--{name} accepts {', '.join(accepted)} (comma-separated) or 'all'; got {value!r}")
    return items


def run_check(args) -> int:
    from conformance import report
    from conformance.candidates import CandidateError, Worker, parse_candidate
    from conformance.checks import PROFILES, Plan, run_plan

    try:
        candidate = parse_candidate(args.candidate, args.backend, args.compile)
        algorithms = _list(args.algorithm, ALGORITHMS, "algorithm")
        dtypes = _list(args.dtype, tuple(FORMATS), "dtype")
        checks = _list(args.checks, CHECK_FAMILIES, "checks") or list(CHECK_FAMILIES)
        if args.profile not in PROFILES:
            raise ValueError(f"--profile must be one of {', '.join(PROFILES)}; got {args.profile!r}")
    except ValueError as error:
        return _usage_error(str(error))
    show = sys.stderr.isatty() if args.progress is None else args.progress
    started = time.perf_counter()

    def progress(label: str) -> None:
        if show:
            sys.stderr.write(f"\r{time.perf_counter() - started:6.1f}s {label[:70]:<70}")
            sys.stderr.flush()

    try:
        with Worker(candidate) as worker:
            described = worker.description
            claimed = described["algorithms"]
            if not claimed and algorithms is None:
                return _usage_error(f"{candidate.label} claims no algorithm; name one with --algorithm")
            chosen_algorithms = algorithms or claimed
            unsupported = [a for a in chosen_algorithms if claimed and a not in claimed]
            if unsupported:
                return _usage_error(f"{candidate.label} implements {', '.join(claimed)}, not {', '.join(unsupported)}")
            chosen_dtypes = dtypes or described["dtypes"]
            unsupported = [d for d in chosen_dtypes if d not in described["dtypes"]]
            if unsupported and dtypes is not None and args.candidate == "keras":
                return _usage_error(f"{candidate.label} does not compute in {', '.join(unsupported)}")
            print(f"optconf check {candidate.label}: {', '.join(chosen_algorithms)} in {', '.join(chosen_dtypes)}, "
                  f"profile {args.profile}, checks {', '.join(checks)}")
            print("versions: " + ", ".join(f"{k} {v}" for k, v in described["versions"].items()))
            plan = Plan(chosen_algorithms, chosen_dtypes, PROFILES[args.profile], tuple(checks), progress=progress)
            writer = _failure_writer(args.write_failures) if args.write_failures else None
            if writer is not None:
                plan.write_failure = writer  # type: ignore[attr-defined]
            outcomes = run_plan(worker, plan)
    except CandidateError as error:
        if show:
            sys.stderr.write("\n")
        return _usage_error(str(error).splitlines()[0])
    if show:
        sys.stderr.write("\r" + " " * 80 + "\r")
    report.print_table(outcomes, sys.stdout)
    report.print_failures(outcomes, sys.stdout)
    print(f"\n{report.summary_line(outcomes)} in {time.perf_counter() - started:.1f} s")
    if args.json:
        report.write_json(args.json, report.to_json(
            outcomes, {"name": candidate.label, **described},
            {"profile": args.profile, "algorithms": chosen_algorithms, "dtypes": chosen_dtypes, "checks": checks,
             "compile": args.compile}))
    return 0 if all(o.passed for o in outcomes) else 1


def _failure_writer(directory: str):
    from pathlib import Path

    from conformance.generate import write_spec_fixture

    def write(spec):
        return write_spec_fixture(Path(directory), spec)

    return write


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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        return run_generate(args)
    return run_check(args)


if __name__ == "__main__":
    sys.exit(main())
