"""Proof of sensitivity: every porting bug in the catalogue fails the right check; every legitimate variant passes.

The catalogue (``tests/mutants``) is run as a third-party candidate would be, by import path, on the
TensorFlow backend (its classes override Keras's generic update path).
"""

import json
import subprocess

import pytest

from tests.conftest import KERAS_UPSTREAM_BUGS, OPTCONF, requires

pytestmark = [pytest.mark.keras, requires("keras", "tensorflow")]


@pytest.fixture(scope="module")
def worker():
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker

    with Worker(Candidate(None, "tensorflow")) as w:
        yield w


def _catalogue():
    import importlib.util

    if importlib.util.find_spec("keras") is None:
        return [], [], []
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from tests.mutants import API_BUGS, BUGS, LEGITIMATE

    return BUGS, LEGITIMATE, API_BUGS


BUGS, LEGITIMATE, API_BUGS = _catalogue()


def _check(worker, cls, checks=("pipeline", "one-step"), strict=True):
    from optimizer_conformance.conformance.candidates.client import Candidate
    from optimizer_conformance.conformance.model import PROFILES
    from optimizer_conformance.conformance.runner import Plan, run_plan

    description = worker.switch(Candidate(f"{cls.__module__}:{cls.__name__}", "tensorflow"))
    (algorithm,) = description["algorithms"]
    # --strict: a mutant built on Keras that copies one of Keras's own bugs is judged a failure all the same.
    return run_plan(worker, Plan([algorithm], ["float32"], PROFILES["quick"], checks, strict=strict))


def test_the_catalogue_is_large_enough():
    assert len(BUGS) >= 15
    assert len(LEGITIMATE) >= 3
    covered = {c.conformance_algorithms[0] for c in BUGS}
    assert covered == {"adam", "adamw", "nadam", "nadam-legacy", "adamax", "lamb", "schedule-free-adamw"}


@pytest.mark.parametrize("bug", BUGS, ids=lambda c: c.__name__)
def test_every_porting_bug_fails_the_right_check(worker, bug):
    outcomes = _check(worker, bug)
    failed = {o.check: o for o in outcomes if o.failed}
    assert bug.expected_check in failed, (
        f"{bug.__name__} should fail {bug.expected_check}; failed: {sorted(failed)}")
    worst = failed[bug.expected_check].worst
    assert worst is not None and worst.ratio > 1


@pytest.mark.parametrize("variant", LEGITIMATE, ids=lambda c: c.__name__)
def test_every_legitimate_variant_passes_everything(worker, variant):
    # A variant built on Keras inherits Keras's own bugs (TensorFlow squares a sparse gradient's duplicate rows apart):
    # those are expected, each diagnosed with exactly its catalogued id; anything else fails.
    outcomes = _check(worker, variant, checks=("pipeline", "one-step", "explore", "api"), strict=False)
    failed = [f"{o.check}: {o.worst} {o.error or ''} {o.problems}" for o in outcomes if o.failed]
    assert not failed, "\n".join(failed)
    inherited = {part for o in outcomes if o.known_upstream_bug for part in o.upstream.split(" + ")}
    assert inherited <= KERAS_UPSTREAM_BUGS["tensorflow"], inherited


def test_the_api_catalogue_has_the_four_kinds_of_api_bug():
    kinds = {c.expected_check for c in API_BUGS}
    assert {"api/signature", "api/get-config", "api/from-config", "api/state-layout"} <= kinds


@pytest.mark.parametrize("bug", API_BUGS, ids=lambda c: c.__name__)
def test_every_api_bug_fails_the_right_api_check_with_what_differs(worker, bug):
    outcomes = _check(worker, bug, checks=("api",))
    failed = {o.check: o for o in outcomes if o.failed}
    assert bug.expected_check in failed, f"{bug.__name__} should fail {bug.expected_check}; failed: {sorted(failed)}"
    problems = failed[bug.expected_check].problems
    assert problems and all(isinstance(p, str) and p for p in problems)


def test_an_api_bug_is_reported_readably_on_the_command_line():
    out = _optconf("check", "tests.mutants.api_bugs:StateLayoutOutOfOrder", "--backend", "tensorflow",
                   "--checks", "api")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL adam api/state-layout" in out.stdout
    assert "store entry 2 should hold momentum/kernel (Keras's order)" in out.stdout
    assert "holds velocity/kernel" in out.stdout


def test_every_bug_names_a_known_deviation_of_the_one_catalogue():
    from optimizer_conformance.conformance.checks.upstream import BY_ID

    unknown = {bug.__name__: bug.deviation for bug in BUGS if bug.deviation not in BY_ID}
    assert not unknown, f"mutants name deviations the catalogue does not have: {unknown}"


def test_every_deviation_of_the_catalogue_can_be_named():
    from optimizer_conformance.conformance.checks.upstream import BY_ID

    unnamed = [d for d, deviation in BY_ID.items() if deviation.deviate is None and deviation.recognise is None]
    assert not unnamed, f"deviations no diagnosis can name (neither computed nor recognised): {unnamed}"


@pytest.mark.parametrize("bug", BUGS, ids=lambda c: c.__name__)
def test_every_porting_bug_is_named_in_the_report(worker, bug):
    outcomes = _check(worker, bug, checks=("pipeline",))
    expected = next(o for o in outcomes if o.check == bug.expected_check)
    assert expected.diagnosis == bug.deviation, (bug.__name__, expected.diagnosis)


def _optconf(*args, timeout=600):
    return subprocess.run([*OPTCONF, *args], capture_output=True, text=True,
                          timeout=timeout)


def test_the_command_line_fails_a_bug_with_a_readable_report_and_json(tmp_path):
    report = tmp_path / "report.json"
    out = _optconf("check", "tests.mutants.catalogue:EpsilonInsideSqrt", "--backend", "tensorflow", "--dtype",
                   "float32", "--profile", "quick", "--checks", "pipeline", "--json", str(report))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL adam pipeline/large-hyperparameters [float32]" in out.stdout
    for field in ("quantity", "step", "element", "candidate", "exact", "difference", "budget", "ratio"):
        assert f"  {field}" in out.stdout
    document = json.loads(report.read_text())
    assert document["conformant"] is False
    assert document["candidate"]["versions"]["keras"]
    assert any(c["check"] == "pipeline/large-hyperparameters" and c["verdict"] == "fail" for c in document["checks"])


def test_the_command_line_prints_the_shrunk_example_and_writes_it_as_a_fixture(tmp_path):
    from optimizer_conformance.conformance.golden.format import load

    out = _optconf("check", "tests.mutants.catalogue:EpsilonInsideSqrt", "--backend", "tensorflow", "--dtype",
                   "float32", "--profile", "quick", "--checks", "explore", "--write-failures", str(tmp_path))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "smallest failing example: adam in float32" in out.stdout
    written = list(tmp_path.glob("failure-adam-float32-*.json"))
    assert len(written) == 1
    assert load(written[0]).algorithm == "adam"


@pytest.mark.parametrize(
    "args, message",
    [
        (["check", "no.such.module:Thing", "--backend", "tensorflow"], "cannot load"),
        (["check", "keras", "--backend", "theano"], "--backend: 'theano' is not accepted"),
        (["check", "keras", "--algorithm", "sgd"], "--algorithm: 'sgd' is not accepted"),
        (["check", "keras", "--profile", "forever"], "--profile: 'forever' is not accepted"),
        (["check", "keras", "--dtype", "float8"], "--dtype: 'float8' is not accepted"),
        (["check", "keras", "--dialect", "keras4"], "--dialect: 'keras4' is not accepted; accepted: keras3, tf-legacy"),
        (["check", "keras", "--compile", "warp"], "--compile: 'warp' is not accepted"),
        (["check", "keras", "--timeout", "-1"], "--timeout must be a positive number of seconds"),
    ],
)
def test_bad_arguments_and_unloadable_candidates_exit_2_with_one_line(args, message):
    out = _optconf(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
