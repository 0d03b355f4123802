"""``optconf``: the project's command line.

    optconf check CANDIDATE [--backend tensorflow|jax|torch] [--algorithm adam,adamw,...] [--dialect keras3|tf-legacy]
                            [--dtype float32,float64,float16,bfloat16] [--profile quick|ci|deep]
                            [--compile eager|function|jit] [--checks pipeline,one-step,fixtures,explore,scale,api]
                            [--timeout SECONDS] [--json PATH] [--write-failures DIR] [--strict]
                            [--lacks FEATURES] [--jobs N] [--fixtures DIR]...
                            [--floatx float32|float64]

checks a candidate against the oracle: ``keras`` (real Keras 3 on the backend, default
``$KERAS_BACKEND`` or tensorflow) or ``package.module:Name`` (a Keras-style optimizer class or factory,
a ``tf_keras.optimizers.legacy`` optimizer, or an adapter: :mod:`conformance.candidates.protocol`).  Exit status:
0 conformant; 1 not (a candidate that crashes or hangs included); 2 when the arguments are wrong or the
candidate cannot be imported or constructed at all; 130 when interrupted (the report of what finished is
printed and written first).  A check that fails only as a catalogued bug of the library the candidate runs on
(:mod:`conformance.checks.upstream`), present in its release, is a *known upstream bug*: listed, counted apart,
and conformant unless ``--strict``.

    optconf upstream [--backend tensorflow,jax,torch]

runs each catalogued upstream bug's smallest reproduction on the installed Keras and says present or absent
(exit 1 where the catalogue and the measurement disagree).

    optconf generate [--check] [--only PATTERN...] [--jobs N] [--out DIR]
    optconf generate --verify FILE...

writes the golden fixture corpus into ``fixtures/`` (``--check``: regenerates it and reports every
difference, exit 1 if any; ``--verify``: re-derives any fixture file from its own inputs).

Imports: the runner, the report, the settings, the golden fixtures.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from optimizer_conformance.conformance import probe, report
from optimizer_conformance.conformance.candidates.client import CandidateError, parse_candidate, start_workers
from optimizer_conformance.conformance.golden import generate as gen
from optimizer_conformance.conformance.golden.format import FixtureError, load
from optimizer_conformance.conformance.golden.replay import FIXTURES, prepare
from optimizer_conformance.conformance.model import PROFILES
from optimizer_conformance.conformance.progress import Progress
from optimizer_conformance.conformance.runner import iter_outcomes, plan_for, plan_items
from optimizer_conformance.conformance.settings import (
    BACKENDS,
    CHECK_FAMILIES,
    DEFAULT_TIMEOUT,
    DIALECTS,
    Settings,
    choices,
    chosen,
)
from optimizer_conformance.reference.rules import ALGORITHMS, translation


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
    check.add_argument("--dialect", help=f"only the rules of one dialect: {', '.join(DIALECTS)} (default: every rule "
                                         "the candidate claims)")
    check.add_argument("--profile", help="quick, ci (default) or deep")
    check.add_argument("--compile", help="eager (default), function (tf.function) or jit (tf.function with XLA, "
                                         "jax.jit); torch.optim candidates: foreach or fused")
    check.add_argument("--checks", help=f"comma-separated, from {', '.join(CHECK_FAMILIES)} (default: all)")
    check.add_argument("--timeout", metavar="SECONDS",
                       help=f"deadline of each call into the candidate (default {DEFAULT_TIMEOUT:g}): a hang fails the "
                            "check it happened in and the worker is restarted")
    check.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    check.add_argument("--html", metavar="PATH", help="also write a report to look at: one self-contained HTML file "
                                                      "(heat map, plots of the failing and closest checks)")
    check.add_argument("--write-failures", metavar="DIR", help="write each shrunk failing example as a fixture")
    check.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                       help="progress on stderr: a bar on a terminal, else a line every 10%% or 30 s (default: on)")
    check.add_argument("--quiet", action="store_true", help="no progress, no header: the report only")
    check.add_argument("--durations", metavar="N", type=int, default=None,
                       help="list the N slowest checks after the report (0: all), as pytest's --durations")
    check.add_argument("--floatx", help="float32 or float64: the floatx the candidate runs under, the dtype of its "
                                        "learning-rate variable (default: what the candidate declares, else float32; "
                                        "keras: runs Keras under keras.config.set_floatx)")
    check.add_argument("--strict", action="store_true",
                       help="a known upstream bug of the library the candidate runs on is a failure, not expected")
    check.add_argument("--lacks", metavar="FEATURES",
                       help="comma-separated features the port does not implement (use_ema, clipnorm, "
                            "gradient_accumulation_steps, ...; 'all': the rule alone): their checks are not applicable")
    check.add_argument("--fixtures", metavar="DIR", action="append", default=None,
                       help="a directory of fixtures of one's own (shrunk failures from --write-failures, a third "
                            "party's corpus) replayed by the fixtures check beside the bundled ones; repeatable")
    check.add_argument("--explore-database", metavar="DIR",
                       default=os.environ.get("OPTCONF_EXPLORE_DATABASE", ".hypothesis/optconf"),
                       help="the explore check's database of shrunk failures, replayed first on the next run "
                            "(default $OPTCONF_EXPLORE_DATABASE, else .hypothesis/optconf, as hypothesis keeps "
                            ".hypothesis/; 'none': no database)")
    check.add_argument("--jobs", metavar="N", type=int, default=None,
                       help="workers running the candidate at once, each a process of its own (default: the cores, at "
                            "most 4, and 1 when --algorithm and --dtype name one of each)")
    matrix = sub.add_parser("matrix", help="every installed implementation against every rule, as a Markdown table")
    matrix.add_argument("--out", metavar="PATH", help="write the Markdown there (default: print it)")
    matrix.add_argument("--only", metavar="PATTERNS",
                        help="comma-separated shell patterns of implementations (labels or candidates: 'torch.optim*')")
    matrix.add_argument("--dtype", default="float32", help="comma-separated dtypes (default float32)")
    matrix.add_argument("--profile", default="quick", help="quick (default), ci or deep")
    upstream = sub.add_parser("upstream", help="which catalogued upstream bugs the installed libraries have")
    upstream.add_argument("--backend", help="comma-separated, from tensorflow, jax, torch (default: all installed)")
    generate = sub.add_parser("generate", help="write the golden fixture corpus (or --check it)")
    generate.add_argument("--check", action="store_true", help="regenerate and report any difference, write nothing")
    generate.add_argument("--only", nargs="+", metavar="PATTERN", help="fixture names or shell patterns (adam-*)")
    generate.add_argument("--jobs", type=int, default=None, help="processes (default: all cores)")
    generate.add_argument("--out", default=None, help="the fixture directory (default: the installed corpus, the "
                                                      "repository's fixtures/ in an editable install)")
    generate.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                          help="progress bar on stderr (default: when stderr is a terminal)")
    generate.add_argument("--list", action="store_true", help="list the corpus and exit")
    generate.add_argument("--verify", nargs="+", metavar="FILE",
                          help="re-derive each fixture file (bundled or third-party) from its own inputs with the "
                               "oracle and name the first exact value or budget that differs")
    return parser


def _usage_error(message: str) -> int:
    print(f"optconf: error: {message}", file=sys.stderr)
    return 2


# The command line's spelling of each setting (conformance.settings.Settings) where it is not --<name>.
FLAGS = {"algorithms": "--algorithm", "dtypes": "--dtype"}


def default_jobs(algorithms: list[str] | None, dtypes: list[str] | None) -> int:
    """Workers for a run: the cores, at most 4 (each holds a framework: hundreds of MB), and one for a run of one
    algorithm in one dtype (a second worker's start-up would cost more than it saves)."""
    if algorithms is not None and dtypes is not None and len(algorithms) * len(dtypes) == 1:
        return 1
    return max(1, min(os.cpu_count() or 1, 4))


def _timing(workers: list, total: float, startup: float) -> dict[str, float]:
    """Where the run's time went, in wall seconds: starting the workers, waiting for the candidate (each worker's
    waits, beyond what the host did meanwhile, averaged over the workers running at once), and the host's own work
    (the oracle and the judgement) in the rest."""
    waited = sum(w.timing["candidate"] for w in workers) / len(workers)
    restarts = sum(w.timing["startup"] for w in workers) / len(workers)
    # A worker restarted after a crash or hang restarted for the candidate: its start-up counts as the candidate's.
    timing = {"total": total, "startup": startup, "candidate": waited + max(0.0, restarts - startup),
              "workers": len(workers)}
    timing["host"] = total - timing["startup"] - timing["candidate"]
    return timing


def run_check(args) -> int:
    try:
        settings = Settings.parse({"candidate": args.candidate, "algorithms": args.algorithm, "dtypes": args.dtype,
                                   "dialect": args.dialect, "backend": args.backend, "profile": args.profile,
                                   "checks": args.checks, "compile": args.compile, "timeout": args.timeout,
                                   "floatx": args.floatx, "strict": args.strict, "lacks": args.lacks,
                                   "fixtures": args.fixtures},
                                  lambda key: FLAGS.get(key, f"--{key}"),
                                  explore_database=None if args.explore_database == "none"
                                  else Path(args.explore_database))
        candidate = parse_candidate(settings.candidate, settings.backend, settings.compile)
    except ValueError as error:
        return _usage_error(str(error))
    algorithms, dtypes, checks = settings.algorithms, settings.dtypes, list(settings.checks)
    if args.durations is not None and args.durations < 0:
        return _usage_error(f"--durations must be a number of checks >= 0; got {args.durations}")
    if args.jobs is not None and args.jobs < 1:
        return _usage_error(f"--jobs must be a positive integer; got {args.jobs}")
    jobs = args.jobs or default_jobs(algorithms, dtypes)
    progress_mode = "off" if args.quiet or args.progress is False else "bar" if sys.stderr.isatty() else "lines"
    started = time.perf_counter()
    progress = None

    outcomes: list = []
    interrupted = False
    workers: list = []
    described: dict = {}
    chosen_algorithms, chosen_dtypes = algorithms or [], dtypes or []
    try:
        # The fixtures are loaded and re-derived while the worker starts (two cores at once).
        warm_up = (lambda: prepare(algorithms, profile=PROFILES[settings.profile])) if "fixtures" in checks else None
        startup = time.perf_counter()
        workers = start_workers(candidate, settings.timeout, jobs, meanwhile=warm_up)
        startup = time.perf_counter() - startup
        described = workers[0].description
        claimed = described["algorithms"]
        if not claimed and algorithms is None:
            return _usage_error(f"{candidate.label} claims no algorithm; name one with --algorithm")
        chosen_algorithms = chosen(algorithms, claimed, settings.dialect)
        if not chosen_algorithms:
            return _usage_error(f"{candidate.label} claims no algorithm of the {settings.dialect} dialect")
        unsupported = [a for a in chosen_algorithms if claimed and a not in translation.reachable(claimed)]
        if unsupported:
            return _usage_error(f"{candidate.label} implements {', '.join(claimed)}, not {', '.join(unsupported)}")
        chosen_dtypes = dtypes or described["dtypes"]
        unsupported = [d for d in chosen_dtypes if d not in described["dtypes"]]
        if unsupported and dtypes is not None and args.candidate == "keras":
            return _usage_error(f"{candidate.label} does not compute in {', '.join(unsupported)}")
        if not args.quiet:
            print(f"optconf check {candidate.label}: {', '.join(chosen_algorithms)} in {', '.join(chosen_dtypes)}, "
                  f"profile {settings.profile}, checks {', '.join(checks)}")
            print("versions: " + ", ".join(f"{k} {v}" for k, v in described["versions"].items()), flush=True)
        plan = replace(plan_for(settings, described,
                                write_failure=_failure_writer(args.write_failures) if args.write_failures else None),
                       algorithms=chosen_algorithms, dtypes=chosen_dtypes)
        progress = Progress(len(plan_items(plan)), progress_mode)
        for outcome in iter_outcomes(workers, replace(plan, progress=progress)):
            outcomes.append(outcome)
    except CandidateError as error:
        if progress is not None:
            progress.close()
        return _usage_error(str(error).splitlines()[0])
    except KeyboardInterrupt:
        interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the report short
    finally:
        for worker in workers:
            worker.end(now=interrupted)
    if progress is not None:
        progress.close()
    if interrupted:
        print(f"\noptconf: interrupted; the report covers the {len(outcomes)} checks that finished", file=sys.stderr)
    report.render(outcomes, sys.stdout)
    if args.durations is not None:
        report.print_durations(outcomes, sys.stdout, args.durations)
    total = time.perf_counter() - started
    print(f"\n{report.summary_line(outcomes)} in {total:.1f} s")
    timing = _timing(workers, total, startup) if workers else None
    floatx = settings.floatx or described.get("floatx") or "float32"
    block = settings.report_block(chosen_algorithms, chosen_dtypes, floatx, interrupted)
    if args.json:
        report.write_json(args.json, report.to_json(outcomes, {"name": candidate.label, **described}, block, timing))
    if args.html:
        from optimizer_conformance.conformance import report_html

        report_html.write(args.html, outcomes, {"name": candidate.label, **described}, block)
    if interrupted:
        return 130
    return 0 if report.conformant(outcomes) else 1


def _failure_writer(directory: str):
    def write(spec: dict) -> Path:
        return gen.write_spec_fixture(Path(directory), spec)

    return write


def run_generate(args) -> int:
    if args.verify:
        return _verify(args.verify)
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
    out = Path(args.out) if args.out else FIXTURES
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


def _verify(paths: list[str]) -> int:
    bad = 0
    for path in paths:
        try:
            problem = gen.rederive(load(path))
        except FixtureError as error:
            problem = str(error)
        except OSError as error:
            problem = f"{path}: cannot be read: {error.strerror or error}"
        bad += problem is not None
        print(problem or f"{path}: verified (every exact value and budget re-derived from its inputs)")
    print(f"{len(paths) - bad} of {len(paths)} fixtures verified")
    return 1 if bad else 0


def run_upstream(args) -> int:
    try:
        backends = choices(args.backend, BACKENDS, "--backend")
    except ValueError as error:
        return _usage_error(str(error))
    probes = probe.probe(backends)
    print(probe.render(probes))
    return 0 if all(p.agrees for p in probes) else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        return run_generate(args)
    if args.command == "upstream":
        return run_upstream(args)
    if args.command == "matrix":
        return run_matrix(args)
    return run_check(args)


def run_matrix(args) -> int:
    from optimizer_conformance.conformance import matrix

    try:
        settings = Settings.parse({"candidate": "matrix", "dtypes": args.dtype, "profile": args.profile})
    except ValueError as error:
        return _usage_error(str(error))
    chosen = matrix.select(args.only.split(",") if args.only else None)
    if not chosen:
        return _usage_error(f"--only: {args.only!r} matches no installed implementation; they are: "
                            f"{', '.join(i.label for i in matrix.select(None))}")
    rows, versions = matrix.run(chosen, settings.dtypes or ["float32"], settings.profile,
                                progress=lambda label: print(f"optconf matrix: {label}", file=sys.stderr, flush=True))
    text = matrix.render(rows, versions, settings.dtypes or ["float32"], settings.profile)
    if args.out:
        matrix.write(Path(args.out), text)
        print(f"optconf matrix: wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
