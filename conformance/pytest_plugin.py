"""The pytest plugin: conformance tests for your own optimizer, in your own repository.

Installed with this package (entry point ``pytest11``); inert until a candidate is named::

    pytest --optconf-candidate mypackage.conformance:MyAdapter --optconf-algorithms adam,adamw

or in ``pytest.ini`` / ``pyproject.toml``::

    [tool.pytest.ini_options]
    optconf_candidate = "mypackage.conformance:MyAdapter"
    optconf_algorithms = "adam"
    optconf_profile = "ci"
    optconf_xfail = "conformance-xfail.txt"

Each check becomes a test item (``optconf::<algorithm>::<dtype>::<check>``, and for the API/config
checks against Keras ``optconf::<algorithm>::api::<name>``), so ``-k``, ``-x`` and
``pytest-xdist`` (``-n auto``) work as usual; the header names the candidate, versions and settings,
and the terminal summary prints the conformance table.  ``--optconf-json PATH`` writes the same
report as ``optconf check --json``.

Expected failures: a text file, one ``<algorithm>/<dtype>/<check>: <reason>`` (or
``<algorithm>/api/<name>: <reason>``) per line (``#``
comments); listed checks are strict xfails (an unexpected pass fails), entries matching no check are
warned about.

In code, the ``optconf`` fixture checks a candidate and returns its outcomes::

    @pytest.mark.optconf(algorithms=["adam"], dtypes=["float32"], profile="quick")
    def test_my_adam_is_keras_adam(optconf):
        report = optconf("mypackage.conformance:MyAdapter")
        assert report.conformant, report.text
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest

OPTIONS = {
    "candidate": ("candidate to check: 'keras' or 'package.module:Name'", None),
    "algorithms": ("comma-separated algorithms (default: all the candidate claims)", None),
    "dtypes": ("comma-separated dtypes (default: all the candidate computes in)", None),
    "dialect": ("keras3 (Adam, AdamW, Nadam) or tf-legacy (the TF 2.0 Nadam); default: what the candidate claims",
                None),
    "backend": ("Keras backend of the candidate's worker: tensorflow, jax or torch", None),
    "profile": ("hypothesis and trajectory profile: quick, ci (default) or deep", "ci"),
    "checks": ("comma-separated check families: pipeline, one-step, fixtures, explore, api", None),
    "compile": ("how Keras candidates run: eager (default), function (tf.function) or jit", None),
    "timeout": ("deadline in seconds of each call into the candidate (default 120)", None),
    "xfail": ("expected-failures file: '<algorithm>/<dtype>/<check>: <reason>' per line", None),
}
DIALECTS = {"keras3": ("adam", "adamw", "nadam"), "tf-legacy": ("nadam-legacy",)}


def pytest_addoption(parser):
    group = parser.getgroup("optconf", "Keras optimizer conformance (optimizer-conformance)")
    for name, (help_text, default) in OPTIONS.items():
        group.addoption(f"--optconf-{name}", dest=f"optconf_{name}", default=None, help=help_text)
        parser.addini(f"optconf_{name}", help_text, default=default)
    group.addoption("--optconf-json", dest="optconf_json", default=None, help="write the report as JSON")


def _setting(config, name: str):
    value = config.getoption(f"optconf_{name}")
    return value if value is not None else (config.getini(f"optconf_{name}") or None)


def _split(value):
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


@dataclass
class Settings:
    candidate: str
    algorithms: list[str] | None
    dtypes: list[str] | None
    dialect: str | None
    backend: str | None
    profile: str
    checks: list[str]
    compile: str = "eager"
    timeout: float = 120.0
    xfail: dict[str, str] = field(default_factory=dict)


def _choices(config, name: str, accepted) -> list[str] | None:
    """A comma-separated setting, each item one of ``accepted``; one clear line otherwise."""
    value = _setting(config, name)
    if value is None:
        return None
    items = _split(value)
    bad = [v for v in items if v not in accepted]
    if bad or not items:
        raise pytest.UsageError(f"optconf_{name} (--optconf-{name}): {', '.join(map(repr, bad)) or repr(value)} "
                                f"is not accepted; accepted: {', '.join(accepted)} (comma-separated)")
    return items


def _one_of(config, name: str, accepted, default: str | None) -> str | None:
    value = _setting(config, name)
    if value is None:
        return default
    if value not in accepted:
        raise pytest.UsageError(f"optconf_{name} (--optconf-{name}): {value!r} is not accepted; accepted: "
                                f"{', '.join(accepted)}")
    return value


def _settings(config) -> Settings | None:
    from optimizer_conformance.conformance.candidates import BACKENDS, COMPILE_MODES, DEFAULT_TIMEOUT
    from optimizer_conformance.conformance.checks import PROFILES
    from optimizer_conformance.conformance.cli import CHECK_FAMILIES, timeout_seconds
    from optimizer_conformance.reference.config import ALGORITHMS
    from optimizer_conformance.reference.formats import FORMATS

    candidate = _setting(config, "candidate")
    if not candidate:
        return None
    profile = _one_of(config, "profile", tuple(PROFILES), "ci")
    dialect = _one_of(config, "dialect", tuple(DIALECTS), None)
    backend = _one_of(config, "backend", BACKENDS, None)
    compile_mode = _one_of(config, "compile", COMPILE_MODES, "eager")
    checks = _choices(config, "checks", CHECK_FAMILIES) or list(CHECK_FAMILIES)
    algorithms = _choices(config, "algorithms", ALGORITHMS)
    dtypes = _choices(config, "dtypes", tuple(FORMATS))
    try:
        timeout = timeout_seconds(_setting(config, "timeout") or DEFAULT_TIMEOUT, "optconf_timeout (--optconf-timeout)")
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    xfail_path = _setting(config, "xfail")
    xfail = _read_xfail(Path(config.rootpath, xfail_path)) if xfail_path else {}
    return Settings(candidate, algorithms, dtypes, dialect, backend, profile, checks, compile_mode, timeout, xfail)


def _read_xfail(path: Path) -> dict[str, str]:
    if not path.exists():
        raise pytest.UsageError(f"optconf_xfail: {path} does not exist")
    if not path.is_file():
        raise pytest.UsageError(f"optconf_xfail: {path} is not a file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise pytest.UsageError(f"{path}:{line}: not UTF-8 text (byte {error.start}); expected "
                                "'<algorithm>/<dtype>/<check>: <reason>' lines") from None
    except OSError as error:
        raise pytest.UsageError(f"optconf_xfail: {path} cannot be read: {error.strerror or error}") from None
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, reason = line.partition(":")
        if "\x00" in line or not sep or not reason.strip() or key.count("/") < 2:
            raise pytest.UsageError(f"{path}:{number}: expected '<algorithm>/<dtype>/<check>: <reason>'; got {line!r}")
        entries[key.strip()] = reason.strip()
    return entries


# -- the worker, one per process (xdist workers get their own) --------------------------------------------

_WORKERS: dict[tuple, object] = {}


def _worker(candidate: str, backend: str | None, compile_mode: str = "eager", timeout: float = 120.0):
    from optimizer_conformance.conformance.candidates import Worker, parse_candidate

    key = (candidate, backend, compile_mode)
    if key not in _WORKERS:
        _WORKERS[key] = Worker(parse_candidate(candidate, backend, compile_mode), timeout)
    return _WORKERS[key]


def pytest_unconfigure(config):
    for worker in _WORKERS.values():
        worker.close()
    _WORKERS.clear()


# -- collection ---------------------------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "optconf(algorithms=None, dtypes=None, profile='quick', checks=None, "
                                       "backend=None): settings for the optconf fixture")
    config._optconf = _settings(config)
    config._optconf_rows = []


def pytest_report_header(config):
    settings = config._optconf
    if settings is None:
        return None
    lines = [f"optconf: candidate {settings.candidate}, profile {settings.profile}, checks {','.join(settings.checks)}"]
    lines.append(f"optconf: algorithms {','.join(settings.algorithms or ['(claimed)'])}, dtypes "
                 f"{','.join(settings.dtypes or ['(claimed)'])}, dialect {settings.dialect or '(claimed)'}, backend "
                 f"{settings.backend or os.environ.get('KERAS_BACKEND', 'tensorflow')}")
    if settings.xfail:
        lines.append(f"optconf: {len(settings.xfail)} expected failures")
    return lines


def _plan(settings: Settings, description: dict) -> tuple[list[str], list[str]]:
    claimed = description["algorithms"]
    algorithms = settings.algorithms or claimed
    if settings.dialect:
        algorithms = [a for a in algorithms if a in DIALECTS[settings.dialect]]
    dtypes = settings.dtypes or description["dtypes"]
    return algorithms, dtypes


def pytest_collection_modifyitems(session, config, items):
    settings = config._optconf
    if settings is None:
        return
    from optimizer_conformance.conformance.api import CHECKS as API_CHECKS
    from optimizer_conformance.conformance.candidates import CandidateError
    from optimizer_conformance.conformance.checks import PROFILES, features_for, fixture_cases

    try:
        description = _worker(settings.candidate, settings.backend, settings.compile, settings.timeout).description
    except (CandidateError, ValueError) as error:
        raise pytest.UsageError(f"optconf: {error}") from None
    algorithms, dtypes = _plan(settings, description)
    profile = PROFILES[settings.profile]
    seen = set()
    for algorithm in algorithms:
        # (dtype, check): the API checks once per algorithm (their "dtype" is "api"), the others per dtype.
        planned = [("api", f"api/{name}") for name in API_CHECKS] if "api" in settings.checks else []
        for dtype in dtypes:
            if "pipeline" in settings.checks or "one-step" in settings.checks:
                planned += [(dtype, f"pipeline/{f}") for f in features_for(algorithm)]
            if "fixtures" in settings.checks:
                planned += [(dtype, f"fixtures/{c.label}") for c in fixture_cases(algorithm, dtype, profile)]
            if "explore" in settings.checks:
                planned.append((dtype, "explore"))
        for dtype, check in planned:
            key = f"{algorithm}/{check}" if dtype == "api" else f"{algorithm}/{dtype}/{check}"
            seen.add(key)
            name = f"optconf::{algorithm}::{check.replace('/', '::')}" if dtype == "api" else \
                f"optconf::{algorithm}::{dtype}::{check}"
            item = ConformanceItem.from_parent(session, name=name, algorithm=algorithm, dtype=dtype, check=check)
            if key in settings.xfail:
                item.add_marker(pytest.mark.xfail(reason=settings.xfail[key], strict=True))
            items.append(item)
    for key in sorted(set(settings.xfail) - seen):
        warnings.warn(pytest.PytestWarning(f"optconf_xfail: stale entry {key!r} matches no check"), stacklevel=1)


class ConformanceFailure(Exception):
    pass


class ConformanceItem(pytest.Item):
    def __init__(self, *, algorithm: str, dtype: str, check: str, **kwargs):
        super().__init__(**kwargs)
        self.algorithm, self.dtype, self.check = algorithm, dtype, check

    def runtest(self):
        from optimizer_conformance.conformance.checks import PROFILES, Outcome, fixture_cases, pipeline_cases, run_case

        settings = self.config._optconf
        worker = _worker(settings.candidate, settings.backend, settings.compile, settings.timeout)
        profile = PROFILES[settings.profile]
        outcomes = []
        if self.dtype == "api":
            from optimizer_conformance.conformance.checks import api_outcomes

            name = self.check.split("/", 1)[1]
            outcomes += [o.close() for o in api_outcomes(worker, self.algorithm, profile, [name])]
            skipped = [o for o in outcomes if o.not_applicable]
            if skipped and len(skipped) == len(outcomes):
                self.user_properties.append(("optconf", json.dumps([_row(o) for o in outcomes])))
                pytest.skip(skipped[0].not_applicable)
        elif self.check == "explore":
            from optimizer_conformance.conformance.strategies import explore

            outcomes.append(explore(worker, self.algorithm, self.dtype, profile).close())
        else:
            family, label = self.check.split("/", 1)
            cases = (pipeline_cases if family == "pipeline" else fixture_cases)(self.algorithm, self.dtype, profile)
            case = next(c for c in cases if c.label == label)
            outcome = Outcome(self.algorithm, self.check, self.dtype)
            one_step = None
            if family == "pipeline" and "one-step" in settings.checks:
                one_step = Outcome(self.algorithm, f"one-step ({label})", self.dtype)
            run_case(worker, outcome, case, one_step)
            if family == "fixtures" or "pipeline" in settings.checks:
                outcomes.append(outcome.close())
            if one_step is not None:
                outcomes.append(one_step.close())
        self.user_properties.append(("optconf", json.dumps([_row(o) for o in outcomes])))
        failed = [o for o in outcomes if o.failed]
        if failed:
            import io

            from optimizer_conformance.conformance.report import print_failures

            text = io.StringIO()
            print_failures(failed, text)
            raise ConformanceFailure(text.getvalue().strip())

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"optconf {self.algorithm} {self.dtype} {self.check}"


def _row(o) -> dict:
    worst = o.worst
    return {"algorithm": o.algorithm, "check": o.check, "dtype": o.dtype, "passed": o.passed, "failed": o.failed,
            "ratio": None if worst is None else (worst.ratio if worst.ratio != float("inf") else "inf"),
            "where": None if worst is None else f"{worst.quantity} step {worst.step} [{worst.element}]",
            "error": o.error, "diagnosis": o.diagnosis, "problems": o.problems,
            "not_applicable": o.not_applicable}


# -- reporting (also under xdist: rows travel in user_properties) -------------------------------------------

def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for key, value in getattr(report, "user_properties", ()):
        if key == "optconf":
            _ROWS.extend(json.loads(value))


_ROWS: list[dict] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if getattr(config, "_optconf", None) is None or not _ROWS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("optconf conformance")
    for algorithm in dict.fromkeys(r["algorithm"] for r in _ROWS):
        rows = [r for r in _ROWS if r["algorithm"] == algorithm]
        passed = sum(1 for r in rows if r["passed"])
        applicable = sum(1 for r in rows if not r.get("not_applicable"))
        write(f"{algorithm}: {passed} of {applicable} checks pass (worst |candidate - exact| / budget)")
        for r in sorted(rows, key=lambda r: (r["dtype"], r["check"])):
            ratio = "-" if r["ratio"] is None else (r["ratio"] if isinstance(r["ratio"], str) else f"{r['ratio']:.3g}")
            verdict = ("n/a" if r.get("not_applicable") else "pass") if r["passed"] else (
                "ERROR" if r["error"] else "FAIL")
            where = r["where"] or (r.get("problems") or [None])[0]
            extra = f"  {where[:100]}" if where and not r["passed"] else ""
            write(f"  {r['dtype']:<9} {r['check']:<40} {verdict:<6} {ratio:>10}{extra}")
    path = config.getoption("optconf_json")
    if path:
        with open(path, "w") as f:
            json.dump({"candidate": config._optconf.candidate,
                       "conformant": any(r["passed"] for r in _ROWS) and not any(r["failed"] for r in _ROWS),
                       "checks": _ROWS}, f, indent=2)


# -- the fixture ----------------------------------------------------------------------------------------------

@dataclass
class Report:
    outcomes: list

    @property
    def conformant(self) -> bool:
        from optimizer_conformance.conformance.report import conformant

        return conformant(self.outcomes)

    @property
    def text(self) -> str:
        import io

        from optimizer_conformance.conformance.report import print_failures, print_table, summary_line

        out = io.StringIO()
        print_table(self.outcomes, out)
        print_failures(self.outcomes, out)
        out.write(summary_line(self.outcomes) + "\n")
        return out.getvalue()


@pytest.fixture
def optconf(request):
    """``optconf(candidate) -> Report``: run the checks (settings from the ``optconf`` marker) on a candidate."""
    from optimizer_conformance.conformance.checks import PROFILES, Plan, run_plan

    marker = request.node.get_closest_marker("optconf")
    options = dict(marker.kwargs) if marker else {}

    def check(candidate: str) -> Report:
        worker = _worker(candidate, options.get("backend"))
        algorithms = options.get("algorithms") or worker.description["algorithms"]
        dtypes = options.get("dtypes") or worker.description["dtypes"]
        checks = tuple(options.get("checks") or ("pipeline", "one-step", "fixtures", "explore", "api"))
        return Report(run_plan(worker, Plan(list(algorithms), list(dtypes), PROFILES[options.get("profile", "quick")],
                                            checks)))

    return check
