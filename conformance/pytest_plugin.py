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
report as ``optconf check --json`` (format ``optimizer-conformance-report``).

Expected failures: a text file, one ``<algorithm>/<dtype>/<check>: <reason>`` (or
``<algorithm>/api/<name>: <reason>``) per line (``#`` comments); listed checks are strict xfails (an
unexpected pass fails), entries matching no check are warned about.

In code, the ``optconf`` fixture checks a candidate and returns its report::

    @pytest.mark.optconf(algorithms=["adam"], dtypes=["float32"], profile="quick")
    def test_my_adam_is_keras_adam(optconf):
        report = optconf("mypackage.conformance:MyAdapter")
        assert report.conformant, report.text

Options and fixtures only: the runner (:mod:`conformance.runner`) runs every item and the report
(:mod:`conformance.report`) prints it, imported when a candidate is named.  Per-session state lives in
``config.stash``; each item's outcomes travel in its report's ``user_properties``, so the summary is
the same under pytest-xdist.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    "floatx": ("float32 or float64: the floatx the candidate runs under (default: what it declares)", None),
    "strict": ("true: a known upstream bug of the library the candidate runs on fails its item (default false: "
               "an expected failure)", None),
}
OUTCOMES_PROPERTY = "optconf"


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
    strict: bool = False
    floatx: str | None = None


SETTINGS = pytest.StashKey[Settings | None]()
WORKERS = pytest.StashKey[Any]()  # conformance.runner.Workers, made when first needed


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("optconf", "Keras optimizer conformance (optimizer-conformance)")
    for name, (help_text, default) in OPTIONS.items():
        group.addoption(f"--optconf-{name}", dest=f"optconf_{name}", default=None, help=help_text)
        parser.addini(f"optconf_{name}", help_text, default=default)
    group.addoption("--optconf-json", dest="optconf_json", default=None, help="write the report as JSON")


def _setting(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"optconf_{name}")
    return value if value is not None else (config.getini(f"optconf_{name}") or None)


def _settings(config: pytest.Config) -> Settings | None:
    """The settings from options and ini keys, each validated: a bad one is one line naming it."""
    candidate = _setting(config, "candidate")
    if not candidate:
        return None
    from optimizer_conformance.conformance import settings as s
    from optimizer_conformance.conformance.candidates.client import BACKENDS, COMPILE_MODES, DEFAULT_TIMEOUT
    from optimizer_conformance.conformance.model import PROFILES
    from optimizer_conformance.reference.config import ALGORITHMS
    from optimizer_conformance.reference.formats import FORMATS

    def name(key: str) -> str:
        return f"optconf_{key} (--optconf-{key})"

    try:
        xfail_path = _setting(config, "xfail")
        return Settings(
            candidate=candidate,
            algorithms=s.choices(_setting(config, "algorithms"), ALGORITHMS, name("algorithms")),
            dtypes=s.choices(_setting(config, "dtypes"), FORMATS, name("dtypes")),
            dialect=s.one_of(_setting(config, "dialect"), s.DIALECTS, name("dialect"), None),
            backend=s.one_of(_setting(config, "backend"), BACKENDS, name("backend"), None),
            profile=s.one_of(_setting(config, "profile"), PROFILES, name("profile"), "ci"),
            checks=s.choices(_setting(config, "checks"), s.CHECK_FAMILIES, name("checks")) or list(s.CHECK_FAMILIES),
            compile=s.one_of(_setting(config, "compile"), COMPILE_MODES, name("compile"), "eager"),
            timeout=s.timeout_seconds(_setting(config, "timeout") or DEFAULT_TIMEOUT, name("timeout")),
            xfail=s.read_xfail(Path(config.rootpath, xfail_path)) if xfail_path else {},
            strict=s.one_of(_setting(config, "strict"), ("true", "false"), name("strict"), "false") == "true",
            floatx=s.one_of(_setting(config, "floatx"), s.FLOATX, name("floatx"), None),
        )
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def _workers(config: pytest.Config):
    if WORKERS not in config.stash:
        from optimizer_conformance.conformance.runner import Workers

        config.stash[WORKERS] = Workers()
    return config.stash[WORKERS]


def _plan(settings: Settings, description: dict):
    from optimizer_conformance.conformance.model import PROFILES
    from optimizer_conformance.conformance.runner import Plan
    from optimizer_conformance.conformance.settings import chosen

    return Plan(chosen(settings.algorithms, description["algorithms"], settings.dialect),
                chosen(settings.dtypes, description["dtypes"]), PROFILES[settings.profile], tuple(settings.checks),
                strict=settings.strict, floatx=settings.floatx or description.get("floatx") or "float32")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "optconf(algorithms=None, dtypes=None, profile='quick', checks=None, "
                                       "backend=None): settings for the optconf fixture")
    config.stash[SETTINGS] = _settings(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if WORKERS in config.stash:
        config.stash[WORKERS].close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(SETTINGS, None)
    if settings is None:
        return None
    lines = [f"optconf: candidate {settings.candidate}, profile {settings.profile}, checks {','.join(settings.checks)}",
             f"optconf: algorithms {','.join(settings.algorithms or ['(claimed)'])}, dtypes "
             f"{','.join(settings.dtypes or ['(claimed)'])}, dialect {settings.dialect or '(claimed)'}, backend "
             f"{settings.backend or os.environ.get('KERAS_BACKEND', 'tensorflow')}"]
    if settings.xfail:
        lines.append(f"optconf: {len(settings.xfail)} expected failures")
    return lines


def _worker(config: pytest.Config, settings: Settings):
    return _workers(config).get(settings.candidate, settings.backend, settings.compile, settings.timeout)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    settings = config.stash.get(SETTINGS, None)
    if settings is None:
        return
    from optimizer_conformance.conformance.candidates.client import CandidateError
    from optimizer_conformance.conformance.runner import plan_items

    try:
        description = _worker(config, settings).description
    except (CandidateError, ValueError) as error:
        raise pytest.UsageError(f"optconf: {error}") from None
    seen, added = set(), []
    for planned in plan_items(_plan(settings, description)):
        seen.add(planned.key)
        name = (f"optconf::{planned.algorithm}::{planned.check.replace('/', '::')}" if planned.dtype is None
                else f"optconf::{planned.algorithm}::{planned.dtype}::{planned.check}")
        # The node id is the name itself: under the session it would otherwise start with an empty path.
        item = ConformanceItem.from_parent(session, name=name, nodeid=name, planned=planned)
        if planned.key in settings.xfail:
            item.add_marker(pytest.mark.xfail(reason=settings.xfail[planned.key], strict=True))
        added.append(item)
    items.extend(added)
    # Counted as collected (by the terminal's "collected N items", --collect-only included), as a collector's
    # items are.
    config.hook.pytest_collectreport(report=pytest.CollectReport("optconf", "passed", None, added))
    for key in sorted(set(settings.xfail) - seen):
        warnings.warn(pytest.PytestWarning(f"optconf_xfail: stale entry {key!r} matches no check"), stacklevel=1)


class ConformanceFailure(Exception):
    pass


class ConformanceItem(pytest.Item):
    def __init__(self, *, planned, **kwargs) -> None:
        super().__init__(**kwargs)
        self.planned = planned

    def runtest(self) -> None:
        from optimizer_conformance.conformance.report import failures_text
        from optimizer_conformance.conformance.runner import run_item

        settings = self.config.stash[SETTINGS]
        worker = _worker(self.config, settings)
        outcomes = run_item(worker, _plan(settings, worker.description), self.planned)
        self.user_properties.append((OUTCOMES_PROPERTY, json.dumps([o.to_json() for o in outcomes])))
        if outcomes and all(o.not_applicable for o in outcomes):
            pytest.skip(outcomes[0].not_applicable)
        if any(o.failed for o in outcomes):
            raise ConformanceFailure(failures_text(outcomes))
        known = [o for o in outcomes if o.known_upstream_bug]
        if known:  # an expected failure: the library the candidate runs on has this catalogued bug
            from optimizer_conformance.conformance.checks.upstream import describe

            pytest.xfail(f"known upstream bug {describe(known[0].upstream)}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        p = self.planned
        return self.path, None, f"optconf {p.algorithm} {p.dtype or 'api'} {p.check}"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if config.stash.get(SETTINGS, None) is None:
        return
    # Every item's outcomes, from its report (under xdist the reports come from the workers).
    reports = [r for reports in terminalreporter.stats.values() for r in reports if getattr(r, "when", None) == "call"]
    rows = [row for r in reports for key, value in getattr(r, "user_properties", ()) if key == OUTCOMES_PROPERTY
            for row in json.loads(value)]
    if not rows:
        return
    import io

    from optimizer_conformance.conformance import report
    from optimizer_conformance.conformance.model import Outcome

    outcomes = [Outcome.from_json(row) for row in rows]
    terminalreporter.section("optconf conformance")
    text = io.StringIO()
    report.print_table(outcomes, text)
    for line in text.getvalue().strip("\n").splitlines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(report.summary_line(outcomes))
    path = config.getoption("optconf_json")
    if path:
        settings = config.stash[SETTINGS]
        report.write_json(path, report.to_json(outcomes, {"name": settings.candidate},
                                               {"profile": settings.profile, "checks": settings.checks,
                                                "algorithms": settings.algorithms, "dtypes": settings.dtypes,
                                                "compile": settings.compile, "timeout": settings.timeout,
                                                "strict": settings.strict}))


@pytest.fixture
def optconf(request: pytest.FixtureRequest):
    """``optconf(candidate) -> Report``: run the checks (settings from the ``optconf`` marker) on a candidate."""
    from optimizer_conformance.conformance.model import PROFILES
    from optimizer_conformance.conformance.report import Report
    from optimizer_conformance.conformance.runner import Plan, run_plan
    from optimizer_conformance.conformance.settings import CHECK_FAMILIES

    marker = request.node.get_closest_marker("optconf")
    options = dict(marker.kwargs) if marker else {}

    def check(candidate: str) -> Report:
        worker = _workers(request.config).get(candidate, options.get("backend"))
        plan = Plan(list(options.get("algorithms") or worker.description["algorithms"]),
                    list(options.get("dtypes") or worker.description["dtypes"]),
                    PROFILES[options.get("profile", "quick")], tuple(options.get("checks") or CHECK_FAMILIES))
        return Report(run_plan(worker, plan))

    return check
