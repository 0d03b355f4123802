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

import datetime
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

OPTIONS = {
    "candidate": ("candidate to check: 'keras' or 'package.module:Name'", None),
    "algorithms": ("comma-separated algorithms (default: all the candidate claims)", None),
    "dtypes": ("comma-separated dtypes (default: all the candidate computes in)", None),
    "dialect": ("only one dialect's rules: keras3 or tf-legacy (default: every rule the candidate claims)", None),
    "backend": ("Keras backend of the candidate's worker: tensorflow, jax or torch", None),
    "profile": ("hypothesis and trajectory profile: quick, ci (default; the optconf fixture's: quick) or deep", None),
    "checks": ("comma-separated check families: pipeline, one-step, fixtures, explore, scale, api", None),
    "compile": ("how candidates run: eager (default), function (tf.function) or jit; torch.optim: foreach, fused",
                None),
    "timeout": ("deadline in seconds of each call into the candidate (default 120)", None),
    "xfail": ("expected-failures file: '<algorithm>/<dtype>/<check>: <reason>' per line", None),
    "floatx": ("float32 or float64: the floatx the candidate runs under (default: what it declares)", None),
    "strict": ("true: a known upstream bug of the library the candidate runs on fails its item (default false: "
               "an expected failure)", None),
    "lacks": ("comma-separated features the port does not implement (use_ema, clipnorm, ...; 'all': the rule "
              "alone): their items are skipped as not applicable", None),
    "fixtures": ("comma-separated directories of one's own fixtures (shrunk failures, a third party's corpus), "
                 "relative to the rootdir, replayed beside the bundled ones", None),
}
OUTCOMES_PROPERTY = "optconf"


CANDIDATE_PROPERTY = "optconf-candidate"
SETTINGS = pytest.StashKey[Any]()  # conformance.settings.Settings, or None when no candidate is named
WORKERS = pytest.StashKey[Any]()  # conformance.runner.Workers, made when first needed


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("optconf", "Keras optimizer conformance (optimizer-conformance)")
    for name, (help_text, default) in OPTIONS.items():
        group.addoption(f"--optconf-{name}", dest=f"optconf_{name}", default=None, help=help_text)
        parser.addini(f"optconf_{name}", help_text, default=default)
    group.addoption("--optconf-json", dest="optconf_json", default=None, help="write the report as JSON")
    group.addoption("--optconf-xfail-update", dest="optconf_xfail_update", action="store_true", default=False,
                    help="write the optconf_xfail file from this run: every failing check covered (existing reasons "
                         "kept), entries that no longer match a failing check removed")
    group.addoption("--optconf-html", dest="optconf_html", default=None,
                    help="write the report to look at: one self-contained HTML file")


def _setting(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"optconf_{name}")
    return value if value is not None else (config.getini(f"optconf_{name}") or None)


def _name(key: str) -> str:
    return f"optconf_{key} (--optconf-{key})"


def _settings(config: pytest.Config):
    """The settings from options and ini keys, each validated: a bad one is one line naming it."""
    candidate = _setting(config, "candidate")
    if not candidate:
        return None
    from optimizer_conformance.conformance.settings import Settings, read_xfail

    try:
        xfail_path = _setting(config, "xfail")
        updating = config.getoption("optconf_xfail_update")
        if updating and not xfail_path:
            raise ValueError("--optconf-xfail-update: name the file to write with optconf_xfail (--optconf-xfail)")
        path = Path(config.rootpath, xfail_path) if xfail_path else None
        entries = read_xfail(path) if path is not None and (path.exists() or not updating) else {}
        # Directories relative to the rootdir, as optconf_xfail is.
        return Settings.parse({key: _setting(config, key) for key in OPTIONS}, _name, Path(config.rootpath),
                              xfail=entries, explore_database=Path(config.rootpath, ".hypothesis", "optconf"))
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def _workers(config: pytest.Config):
    if WORKERS not in config.stash:
        from optimizer_conformance.conformance.runner import Workers

        config.stash[WORKERS] = Workers()
    return config.stash[WORKERS]


def _plan(settings, description: dict):
    from optimizer_conformance.conformance.runner import plan_for

    return plan_for(settings, description)


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


def _worker(config: pytest.Config, settings):
    return _workers(config).get(settings)


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
    from optimizer_conformance.conformance.settings import expected_failure, is_pattern

    seen, added = set(), []
    for planned in plan_items(_plan(settings, description)):
        name = (f"optconf::{planned.algorithm}::{planned.check.replace('/', '::')}" if planned.dtype is None
                else f"optconf::{planned.algorithm}::{planned.dtype}::{planned.check}")
        # The node id is the name itself: under the session it would otherwise start with an empty path.
        item = ConformanceItem.from_parent(session, name=name, nodeid=name, planned=planned)
        item.add_marker(pytest.mark.optconf)  # -m optconf selects the conformance items
        expected = expected_failure(settings.xfail, planned.key)
        if expected is not None:
            entry, reason = expected
            seen.add(entry)
            # An exact entry is strict (a check that starts passing fails the run); a pattern is stale only when
            # none of the checks it matches fails, which the end of the run says.
            item.add_marker(pytest.mark.xfail(reason=reason, strict=not is_pattern(entry)))
        added.append(item)
    items.extend(added)
    # Counted as collected (by the terminal's "collected N items", --collect-only included), as a collector's
    # items are.
    config.hook.pytest_collectreport(report=pytest.CollectReport("optconf", "passed", None, added))
    if not config.getoption("optconf_xfail_update"):
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
        self.user_properties.append((CANDIDATE_PROPERTY, json.dumps(worker.description)))
        if outcomes:  # the item's own check, as junit XML properties a CI dashboard can show
            self.user_properties += _junit_properties(outcomes[0])
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


def _junit_properties(outcome) -> list[tuple[str, str]]:
    """``optconf.verdict``, and where the check judged numbers its worst ``ratio``, ``budget``, ``quantity`` (with its
    step and element) and the ``diagnosis``."""
    properties = [("optconf.verdict", outcome.verdict)]
    worst = outcome.worst
    if worst is not None:
        properties += [("optconf.ratio", f"{worst.ratio:.6g}"), ("optconf.budget", f"{worst.budget:.6g}"),
                       ("optconf.quantity", f"{worst.quantity} step {worst.step} element {worst.element}")]
    if outcome.diagnosis:
        properties.append(("optconf.diagnosis", outcome.diagnosis))
    return properties


def _key(nodeid: str) -> str:
    """An item's expected-failures key from its node id (``optconf::adam::float32::pipeline/basic``)."""
    return nodeid[len("optconf::"):].replace("::", "/")


def _still_failing(report) -> bool:
    """The check failed: a failure, or an expected failure the xfail file listed (not a known upstream bug)."""
    if report.failed:
        return not str(getattr(report, "longrepr", "")).startswith("[XPASS(strict)]")
    return report.skipped and hasattr(report, "wasxfail") and not str(report.wasxfail).startswith("known upstream")


def _review_expected_failures(terminalreporter, config: pytest.Config, reports: list) -> None:
    """Stale patterns (none of the checks they match failed) are warned about; with ``--optconf-xfail-update``
    the file is rewritten from the run."""
    from optimizer_conformance.conformance.settings import expected_failure, is_pattern, write_xfail

    settings = config.stash[SETTINGS]
    items = [r for r in reports if r.nodeid.startswith("optconf::")]
    failing = {_key(r.nodeid): r for r in items if _still_failing(r)}
    kept = {entry: reason for entry, reason in settings.xfail.items()
            if any(expected_failure({entry: reason}, key) for key in failing)}
    if not config.getoption("optconf_xfail_update"):
        for entry in settings.xfail:
            if is_pattern(entry) and entry not in kept:
                terminalreporter.write_line(f"optconf_xfail: stale pattern {entry!r}: none of the checks it matches "
                                            "failed (remove it, or run --optconf-xfail-update)")
        return
    for key, report in failing.items():
        if expected_failure(kept, key) is None:
            kept[key] = f"failing since {datetime.date.today()}: {_headline(report)}"
    path = Path(config.rootpath, _setting(config, "xfail"))
    write_xfail(path, kept)
    terminalreporter.write_line(f"optconf: wrote {path} ({len(kept)} entries, {len(failing)} failing checks "
                                "covered); review it and commit it")


def _headline(report) -> str:
    """A failing item's one-line reason: its outcome's verdict, worst ratio and diagnosis."""
    for key, value in getattr(report, "user_properties", ()):
        if key == OUTCOMES_PROPERTY:
            for row in json.loads(value):
                if row["verdict"] == "fail":
                    worst = row.get("worst") or {}
                    what = f"ratio {worst['ratio']} on {worst['quantity']}" if worst else (row.get("error") or "")
                    return f"{what.splitlines()[0] if what else 'fails'}" + (
                        f" ({row['diagnosis']})" if row.get("diagnosis") else "")
    return "fails"


def _item_counts(reports: list) -> str:
    """The conformance items counted as pytest counts them (one count, not the table's checks): passed, failed,
    expected failures (known upstream bugs and the xfail file's entries), not applicable (skipped)."""
    items = [r for r in reports if r.nodeid.startswith("optconf::")]
    expected = [r for r in items if r.skipped and hasattr(r, "wasxfail")]
    known = sum(1 for r in expected if str(r.wasxfail).startswith("known upstream bug"))
    counts = [f"{sum(1 for r in items if r.passed and not hasattr(r, 'wasxfail'))} passed",
              f"{sum(1 for r in items if r.failed)} failed",
              f"{len(expected)} expected failures ({known} known upstream bugs, {len(expected) - known} listed in "
              "optconf_xfail)",
              f"{sum(1 for r in items if r.skipped and not hasattr(r, 'wasxfail'))} not applicable (skipped)"]
    unexpected = sum(1 for r in items if r.passed and hasattr(r, "wasxfail"))
    if unexpected:
        counts.append(f"{unexpected} expected to fail passed")
    return f"optconf: {len(items)} conformance items: {', '.join(counts)}"


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
    terminalreporter.write_line(_item_counts(reports))
    _review_expected_failures(terminalreporter, config, reports)
    json_path, html_path = config.getoption("optconf_json"), config.getoption("optconf_html")
    if json_path or html_path:
        settings = config.stash[SETTINGS]
        described = next((json.loads(value) for r in reports for key, value in getattr(r, "user_properties", ())
                          if key == CANDIDATE_PROPERTY), {})
        plan = _plan(settings, described) if described else None
        floatx = plan.floatx if plan else settings.floatx or "float32"
        block = settings.report_block(plan.algorithms if plan else settings.algorithms or [],
                                      plan.dtypes if plan else settings.dtypes or [], floatx,
                                      exitstatus == pytest.ExitCode.INTERRUPTED)
        candidate = {**described, "name": settings.candidate}
        if json_path:
            report.write_json(json_path, report.to_json(outcomes, candidate, block))
        if html_path:
            from optimizer_conformance.conformance import report_html

            report_html.write(html_path, outcomes, candidate, block)


@pytest.fixture
def optconf(request: pytest.FixtureRequest):
    """``optconf(candidate) -> Report``: run the checks (settings from the ``optconf`` marker) on a candidate."""
    from optimizer_conformance.conformance.report import Report
    from optimizer_conformance.conformance.runner import plan_for, run_plan
    from optimizer_conformance.conformance.settings import Settings

    marker = request.node.get_closest_marker("optconf")
    options = dict(marker.kwargs) if marker else {}
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.optconf: unknown setting(s) {sorted(unknown)}; the settings are "
                                f"{', '.join(k for k in OPTIONS if k != 'xfail')}")

    def check(candidate: str) -> Report:
        # The session's settings (options and ini keys, the timeout among them), the fixture's quick profile,
        # then the marker's.
        raw = {key: _setting(request.config, key) for key in OPTIONS if key != "xfail"}
        raw = {**raw, "profile": raw["profile"] or "quick", **options, "candidate": candidate}
        try:
            settings = Settings.parse(raw, lambda key: f"@pytest.mark.optconf({key}=...)")
        except ValueError as error:
            raise pytest.UsageError(str(error)) from None
        worker = _workers(request.config).get(settings)
        return Report(run_plan(worker, plan_for(settings, worker.description)))

    return check
