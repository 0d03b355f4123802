"""The catalogue of upstream bugs: complete entries, a verdict of its own for the library that has the bug (and a
plain failure for a port that copies it), ``--strict``, ``optconf upstream``, and the README's table kept true."""

import io
import json
import os
import subprocess
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from optimizer_conformance.conformance import report
from optimizer_conformance.conformance.cases.catalogue import FEATURES
from optimizer_conformance.conformance.checks.compare import oracle_states
from optimizer_conformance.conformance.checks.deviations import EmaNotMaintained, release
from optimizer_conformance.conformance.checks.upstream import BY_ID, REPRODUCTIONS, UPSTREAM_BUGS, affecting
from optimizer_conformance.conformance.model import Case, Finding, Outcome, encode
from optimizer_conformance.conformance.runner import judge_case

from tests.conftest import OPTCONF, requires

ROOT = Path(__file__).resolve().parent.parent
OLDEST = ROOT / ".keras-oldest"


def _optconf(*args, env=None, timeout=900):
    return subprocess.run([*OPTCONF, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_every_upstream_bug_is_catalogued_in_full():
    for bug in UPSTREAM_BUGS:
        up = bug.upstream
        assert up.library in ("keras", "tf_keras") and up.backends and up.references and up.check, bug.id
        assert bug.deviate is not None, f"{bug.id}: a deviated oracle that computes what the library computes"
        assert release(up.first_affected) < release(up.first_fixed or "99"), bug.id
        assert up.first_fixed is None or up.last_affected, bug.id
        assert bug.deviate(REPRODUCTIONS[bug.id]) is not None, f"{bug.id}: its reproduction exercises it"


def test_release_ranges_and_what_a_candidate_runs_on():
    demotion = BY_ID["torch-float64-demotion"].upstream
    assert demotion.affects("keras", "3.15.1", "torch", "eager")
    assert not demotion.affects("keras", "3.15.1", "jax", "eager")
    assert not demotion.affects(None, "3.15.1", "torch", "eager")  # a port in another framework: never
    accumulation = BY_ID["accumulation-clips-and-decays-micro-steps"].upstream
    assert accumulation.affects_release("3.0.2") and accumulation.affects_release("3.4.1")
    assert not accumulation.affects_release("3.5.0") and not accumulation.affects_release("3.0.1")
    described = {"library": "keras", "versions": {"keras": "3.15.1"}, "backend": "torch", "compile": "eager"}
    assert {b.id for b in affecting(described)} == {"torch-float64-demotion", "schedule-free-x-from-updated-z",
                                                    "float64-hyperparameters-via-float32",
                                                    "torch-float64-weight-decay-factor-in-float32",
                                                    "low-precision-coefficients-in-variable-dtype",
                                                    "torch-parallel-update-in-first-dtype",
                                                    "torch-accumulator-reset-by-multiplying"}
    assert {b.id for b in affecting(described, "float32")} == {"schedule-free-x-from-updated-z",
                                                               "torch-accumulator-reset-by-multiplying"}


def _ema_case_and_frozen_states():
    trajectory = next(f for f in FEATURES if f.name == "ema").for_algorithm("adam", 4)
    spec = trajectory.spec("float32")
    states = [{q: encode(v.as_float64()) for q, v in state.items()}
              for state in oracle_states(spec, oracle=EmaNotMaintained)]
    return Case("pipeline/ema", "adam", "float32", spec, "ema"), states


def test_the_library_that_has_the_bug_gets_an_expected_failure_and_a_port_that_copies_it_fails():
    case, states = _ema_case_and_frozen_states()
    keras_300 = affecting({"library": "keras", "versions": {"keras": "3.0.0"}, "backend": "torch"}, "float32")
    on_keras = Outcome("adam", "pipeline/ema", "float32")
    judge_case(on_keras, case, states, upstream=keras_300)
    assert on_keras.verdict == "known upstream bug" and on_keras.upstream == "ema-not-maintained"
    port = Outcome("adam", "pipeline/ema", "float32")
    judge_case(port, case, states)  # a port in another framework: what Keras intends is what it must compute
    assert port.verdict == "fail" and port.diagnosis == "ema-not-maintained"
    # One failing case that the bug does not explain makes it a plain failure.
    other = [{q: encode(np.full(len(v), 3.0)) if q.startswith("variables/") else v for q, v in s.items()}
             for s in states]
    judge_case(on_keras, case, other, upstream=keras_300)
    assert on_keras.verdict == "fail"


def test_an_expected_failure_is_counted_apart_listed_with_its_reference_and_fits_the_schema():
    worst = Finding("norm/kernel", 1, 0, 1.2, 0.3, 0.30000001, 1e-8)
    known = Outcome("adamax", "pipeline/global-clipnorm", "float64", cases=1, worst=worst, worst_case="global-clipnorm",
                    diagnosis="torch-float64-demotion", upstream="torch-float64-demotion")
    passed = Outcome("adamax", "pipeline/basic", "float64", cases=1, worst=Finding("variables/kernel", 1, 0, 0.1,
                                                                                    0, 0, 1))
    outcomes = [known, passed]
    assert report.summary_line(outcomes) == "1 passed, 0 failed, 1 known upstream bug, 0 not applicable"
    assert report.conformant(outcomes)
    out = io.StringIO()
    report.render(outcomes, out)
    assert "UPSTREAM 1.2" in out.getvalue() and "KNOWN UPSTREAM BUG adamax pipeline/global-clipnorm" in out.getvalue()
    assert "keras-team/keras #23704" in out.getvalue()
    document = report.to_json(outcomes, {"name": "keras [torch]"}, {"strict": False})
    jsonschema.validate(document, report.schema())
    assert document["summary"]["known_upstream_bugs"] == 1
    assert document["checks"][0]["verdict"] == "known upstream bug"
    assert Outcome.from_json(document["checks"][0]).verdict == "known upstream bug"


@pytest.mark.keras
@requires("keras", "torch")
def test_real_keras_adamax_on_torch_float64_fails_only_as_the_catalogued_demotion_and_strict_fails(tmp_path):
    args = ("check", "keras", "--backend", "torch", "--algorithm", "adamax", "--dtype", "float64", "--profile",
            "quick", "--checks", "pipeline,fixtures")
    out = _optconf(*args, "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stdout[-4000:]
    checks = json.loads((tmp_path / "r.json").read_text())["checks"]
    known = {c["check"]: c for c in checks if c["verdict"] == "known upstream bug"}
    assert set(known) >= {"pipeline/global-clipnorm", "pipeline/clipnorm"}, out.stdout[-4000:]
    assert known["pipeline/global-clipnorm"]["known_upstream_bug"] == "torch-float64-demotion"
    torch_float64 = {"torch-float64-demotion", "float64-hyperparameters-via-float32",
                     "torch-float64-weight-decay-factor-in-float32"}
    assert all(set(c["known_upstream_bug"].split(" + ")) <= torch_float64 for c in known.values())
    assert "known upstream bugs" in out.stdout and "keras-team/keras #23704" in out.stdout
    strict = _optconf(*args, "--strict")
    assert strict.returncode == 1 and "FAIL adamax pipeline/global-clipnorm [float64]" in strict.stdout
    assert "matches a known upstream bug: [torch-float64-demotion]" in strict.stdout


def _probe_lines(stdout: str) -> dict[tuple[str, str], str]:
    lines = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in BY_ID:
            lines[(parts[0], parts[1])] = line
    return lines


@pytest.mark.keras
@requires("keras", "tensorflow", "jax", "torch")
def test_optconf_upstream_measures_the_installed_release():
    out = _optconf("upstream")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = _probe_lines(out.stdout)
    assert " present" in lines[("torch-float64-demotion", "torch")]
    assert " absent" in lines[("torch-float64-demotion", "tensorflow")]
    assert " absent" in lines[("torch-float64-demotion", "jax")]
    for backend in ("tensorflow", "torch"):
        assert " present" in lines[("schedule-free-x-from-updated-z", backend)]
    assert " absent" in lines[("schedule-free-x-from-updated-z", "jax")]
    # An Inf micro-gradient: torch's accumulator is NaN after the window (∞·0), TensorFlow's and JAX's zero.
    assert " present (ratio inf)" in lines[("torch-accumulator-reset-by-multiplying", "torch")]
    assert " absent" in lines[("torch-accumulator-reset-by-multiplying", "jax")]
    # A row of an embedding's gradient named twice: TensorFlow squares the two slices apart, JAX sums them first.
    assert " present" in lines[("tf-sparse-duplicate-rows-squared-apart", "tensorflow")]
    assert " absent" in lines[("tf-sparse-duplicate-rows-squared-apart", "jax")]
    assert "0 where the catalogue and the measurement disagree" in out.stdout
    bad = _optconf("upstream", "--backend", "theano")
    assert bad.returncode == 2 and "--backend" in bad.stderr and "tensorflow, jax, torch" in bad.stderr


@pytest.mark.keras
@requires("torch", "tensorflow")
@pytest.mark.skipif(not (OLDEST / "keras").is_dir(), reason="Keras 3.0.0 is not in .keras-oldest/ (README)")
def test_optconf_upstream_finds_the_bugs_of_keras_3_0_0():
    out = _optconf("upstream", "--backend", "torch,tensorflow", env={"PYTHONPATH": str(OLDEST)})
    assert out.returncode == 0, out.stdout + out.stderr
    lines = _probe_lines(out.stdout)
    assert "3.0.0)" in out.stdout.splitlines()[0]
    assert " present" in lines[("ema-not-maintained", "torch")]
    assert " present" in lines[("ema-copies-under-tf-function", "tensorflow")]
    assert " present" in lines[("tf-sparse-duplicate-rows-squared-apart", "tensorflow")]  # since sparse came in
    assert " not applicable" in lines[("accumulation-clips-and-decays-micro-steps", "torch")]


def test_the_readme_lists_every_upstream_bug_with_its_command():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Bugs this tool finds in real releases"):]
    table = table[:table.index("\n## ", 5)]
    for bug in UPSTREAM_BUGS:
        row = next((line for line in table.splitlines() if f"`{bug.id}`" in line), None)
        assert row is not None, f"README: no row for {bug.id}"
        for reference in bug.upstream.references:
            assert reference.split(" (")[0].split()[-1] in row, (bug.id, reference)
        assert "optconf" in row, bug.id


@pytest.mark.keras
@requires("keras", "torch", "tensorflow")
def test_mixed_dtypes_on_real_keras_torch_forms_scalars_in_the_first_dtype_and_tensorflow_raises_under_clipping(
        tmp_path):
    """A float16 variable first, a float32 one after it: Keras's torch backend steps the float32 one with float16
    scalars (the catalogued bug, diagnosed by its deviated oracle); TensorFlow cannot clip globally across the two
    dtypes (not applicable, with Keras's own message); and a float32 run with a float16 bias conforms on both."""
    def checks(backend, dtype):
        report = tmp_path / f"{backend}-{dtype}.json"
        out = _optconf("check", "keras", "--backend", backend, "--algorithm", "adam", "--dtype", dtype, "--profile",
                       "quick", "--checks", "pipeline", "--json", str(report))
        assert out.returncode == 0, out.stdout[-4000:]
        return {c["check"]: c for c in json.loads(report.read_text())["checks"]}

    torch16 = checks("torch", "float16")["pipeline/mixed-dtypes"]
    assert torch16["verdict"] == "known upstream bug", torch16
    assert "torch-parallel-update-in-first-dtype" in torch16["known_upstream_bug"].split(" + ")
    tf32 = checks("tensorflow", "float32")
    assert tf32["pipeline/mixed-dtypes"]["verdict"] == "pass"
    clipped = tf32["pipeline/mixed-dtypes-global-clipnorm"]
    assert clipped["verdict"] == "not applicable" and "raises on tensorflow when global_clipnorm meets variables " \
        "of several dtypes" in clipped["not_applicable"] and "InvalidArgumentError" in clipped["not_applicable"]
    torch32 = checks("torch", "float32")
    assert {torch32[k]["verdict"] for k in ("pipeline/mixed-dtypes", "pipeline/mixed-dtypes-global-clipnorm")} == {
        "pass"}


@pytest.mark.keras
@requires("keras", "jax", "torch")
def test_nadam_and_schedule_free_under_mixed_dtypes_show_only_keras_float16_scalars_on_the_float16_bias(tmp_path):
    """Nadam's momentum product is advanced once, in the first variable's dtype, and cast to each; a float32 run
    with a float16 bias then differs on JAX only where Keras forms the bias's scalars in float16 (1 − β₂ 2.4 % off:
    the catalogued low-precision bug, now diagnosed on the one variable that has that dtype); on torch, whose
    parallel update forms them once in the first (float32) variable's dtype, Nadam conforms."""
    def checks(backend, algorithms):
        report = tmp_path / f"{backend}.json"
        out = _optconf("check", "keras", "--backend", backend, "--algorithm", algorithms, "--dtype", "float32",
                       "--profile", "quick", "--checks", "pipeline", "--json", str(report))
        assert out.returncode == 0, out.stdout[-4000:]
        return {(c["algorithm"], c["check"]): c for c in json.loads(report.read_text())["checks"]}

    jax = checks("jax", "nadam,schedule-free-adamw")
    for algorithm in ("nadam", "schedule-free-adamw"):
        mixed = jax[(algorithm, "pipeline/mixed-dtypes")]
        assert mixed["verdict"] == "known upstream bug", mixed
        assert mixed["known_upstream_bug"] == "low-precision-coefficients-in-variable-dtype", mixed
        assert jax[(algorithm, "pipeline/mixed-dtypes-global-clipnorm")]["verdict"] == "pass"
    torch = checks("torch", "nadam")
    assert {torch[("nadam", f)]["verdict"] for f in ("pipeline/mixed-dtypes", "pipeline/mixed-dtypes-global-clipnorm")
            } == {"pass"}
