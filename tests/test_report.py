"""The one report: the table's numbers read right, the JSON follows its schema, and a diagnosis is exact."""

import io

import jsonschema
import numpy as np
import pytest
from optimizer_conformance.conformance import report
from optimizer_conformance.conformance.cases.catalogue import FEATURES
from optimizer_conformance.conformance.checks.compare import oracle_states
from optimizer_conformance.conformance.checks.diagnosis import diagnose
from optimizer_conformance.conformance.model import Finding, Outcome, encode


@pytest.mark.parametrize("ratio", [0.99999999998, 0.9999, 0.996, 1.0000000001, 1.004, 0.5, 1.0])
def test_a_ratio_never_reads_as_a_bare_one(ratio):
    text = report.ratio_text(ratio)
    assert text != "1" and (float(text) <= 1.0) == (ratio <= 1.0), text


def test_the_table_shows_a_ratio_just_under_one_as_under_one():
    o = Outcome("nadam", "pipeline/basic", "float64", cases=1,
                worst=Finding("velocity/kernel", 3, 0, 0.99999999998, 1.0, 1.0, 1.0))
    out = io.StringIO()
    report.print_table([o], out)
    assert "0.99999999998" in out.getvalue() and " 1\n" not in out.getvalue()


def test_every_outcome_kind_fits_the_report_schema_and_travels_as_json():
    worst = Finding("variables/kernel", 2, 3, float("inf"), float("nan"), 1.5, 0.0)
    outcomes = [
        Outcome("adam", "pipeline/basic", "float32", cases=1, worst=worst, worst_case="basic",
                diagnosis="step-count-plus-one", problems=["basic: iterations after step 2 is 3, expected 2"]),
        Outcome("adam", "api/signature", None, cases=12),
        Outcome("adam", "fixtures", "float16", not_applicable="adam-accumulation-3: Keras 3.0.0 rejects it",
                skipped=["adam-accumulation-3: Keras 3.0.0 rejects it"]),
        Outcome("adam", "explore", "float32", cases=1, error="no answer from apply() at step 2 within 4 s",
                example={"summary": "adam in float32", "spec": {}, "others": ["x"]}),
    ]
    document = report.to_json(outcomes, {"name": "keras [torch]"}, {"profile": "quick"})
    jsonschema.validate(document, report.schema())
    again = [Outcome.from_json(c) for c in document["checks"]]
    assert [o.verdict for o in again] == [o.verdict for o in outcomes] == ["fail", "pass", "not applicable", "fail"]
    assert again[0].worst.ratio == float("inf") and np.isnan(again[0].worst.candidate)


def _states(spec: dict, average) -> list[dict]:
    """The oracle's own states as a candidate would report them, each average replaced by ``average(state)``."""
    out = []
    for state in oracle_states(spec):
        reported = {q: encode(v.as_float64()) for q, v in state.items()}
        for q in [q for q in reported if q.startswith("average/")]:
            reported[q] = average(state, q)
        out.append(reported)
    return out


def test_a_diagnosis_names_a_deviation_only_when_every_reported_quantity_matches():
    ema = next(f for f in FEATURES if f.name == "ema").for_algorithm("adam", 4).spec("float64")
    # The weights do not depend on the average: only the averages tell the deviations apart.
    never_moves = _states(ema, lambda state, q: encode(np.zeros(state[q].shape)))
    assert diagnose(ema, never_moves) == "ema-not-maintained"
    equals_the_weights = _states(ema, lambda state, q: encode(state["variables/" + q.split("/", 1)[1]].as_float64()))
    assert diagnose(ema, equals_the_weights) == "ema-copies-under-tf-function"  # Keras 3.0.0-3.0.1 under tf.function
    halved = _states(ema, lambda state, q: encode(state[q].as_float64() / 2))
    assert diagnose(ema, halved) is None
    assert diagnose(ema, _states(ema, lambda state, q: encode(state[q].as_float64()))) is None  # honest: no bug


def _check_cli(*args: str):
    import subprocess

    from tests.conftest import OPTCONF

    return subprocess.run([*OPTCONF, "check", "optimizer_conformance.fast_optimizers.conformance:NumpyAdapter",
                           "--algorithm", "adam", "--dtype", "float32", "--profile", "quick", *args],
                          capture_output=True, text=True, timeout=600)


def test_durations_and_where_the_time_went_are_reported(tmp_path):
    out = _check_cli("--checks", "pipeline,fixtures", "--durations", "3", "--json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "slowest checks (3 of " in out.stdout
    document = __import__("json").loads((tmp_path / "r.json").read_text())
    jsonschema.validate(document, report.schema())
    assert all(c["duration"] is not None and c["duration"] >= 0 for c in document["checks"])
    timing = document["timing"]
    assert timing["total"] >= timing["startup"] > 0 and timing["candidate"] >= 0
    assert abs(timing["startup"] + timing["candidate"] + timing["host"] - timing["total"]) < 0.01


def test_progress_is_plain_lines_off_a_terminal_and_nothing_when_quiet():
    shown = _check_cli("--checks", "pipeline")
    assert shown.returncode == 0 and "optconf: " in shown.stderr and " checks, " in shown.stderr, shown.stderr
    assert "\r" not in shown.stderr  # no bar drawn into a log
    quiet = _check_cli("--checks", "pipeline", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert not quiet.stdout.startswith("optconf check") and "passed, 0 failed" in quiet.stdout
    bad = _check_cli("--durations", "-2")
    assert bad.returncode == 2 and "--durations must be a number of checks >= 0" in bad.stderr


def test_the_table_never_breaks_on_wide_cells():
    wide = Finding("velocity/kernel", 3, 0, 0.99999999997, 1.0, 1.0, 1.0)
    failing = Finding("variables/kernel", 3, 0, 150.0, 1.0, 1.0, 1.0)
    outcomes = [Outcome("nadam", "pipeline/basic", "float32", cases=1, worst=Finding("v", 1, 0, 0.98, 1, 1, 1)),
                Outcome("nadam", "pipeline/basic", "float64", cases=1, worst=wide),
                Outcome("nadam", "pipeline/a-very-long-feature-name-that-is-wider-than-before", "float32", cases=1,
                        worst=failing),
                Outcome("nadam", "pipeline/a-very-long-feature-name-that-is-wider-than-before", "float64", cases=1,
                        worst=failing)]
    out = io.StringIO()
    report.print_table(outcomes, out)
    rows = [line for line in out.getvalue().splitlines() if line.startswith("  ")]
    # Every row's columns end where the header's do: cells are right-aligned to the widest one.
    assert len({len(row) for row in rows}) == 1, out.getvalue()
    assert "0.99999999997" in out.getvalue() and "  FAIL 1.5e+02" in out.getvalue()


def test_features_the_port_lacks_are_not_applicable_with_the_reason_and_a_misspelt_one_is_refused(tmp_path):
    out = _check_cli("--checks", "pipeline", "--lacks", "use_ema,learning_rate_schedule", "--json",
                     str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    document = __import__("json").loads((tmp_path / "r.json").read_text())
    by_check = {c["check"]: c for c in document["checks"]}
    assert by_check["pipeline/ema"]["verdict"] == "not applicable"
    assert "declares it lacks use_ema: declared with --lacks" in by_check["pipeline/ema"]["not_applicable"]
    assert by_check["pipeline/schedule-cosine-warmup"]["verdict"] == "not applicable"
    assert by_check["pipeline/basic"]["verdict"] == "pass" and by_check["pipeline/clipnorm"]["verdict"] == "pass"
    assert document["settings"]["lacks"] == ["use_ema", "learning_rate_schedule"]
    bad = _check_cli("--lacks", "ema")
    assert bad.returncode == 2 and "--lacks: 'ema' is not accepted; accepted: use_ema," in bad.stderr, bad.stderr


def test_a_shortened_message_ends_at_a_word_with_an_ellipsis():
    from optimizer_conformance.conformance.model import first_line

    message = "ValueError: Keras returns the correct value here\nTraceback follows"
    assert first_line(message) == "ValueError: Keras returns the correct value here"
    assert first_line(message, 30) == "ValueError: Keras returns the…"
    assert first_line("x" * 50, 10) == "x" * 9 + "…" and first_line("") == ""
