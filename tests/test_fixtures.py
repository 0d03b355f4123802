"""The fixture corpus: loads, verifies, replays inside budget, and rejects every kind of damage."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from optimizer_conformance.conformance.cases.catalogue import CORPUS
from optimizer_conformance.conformance.checks.compare import oracle_states
from optimizer_conformance.conformance.checks.numeric import judge_fixture
from optimizer_conformance.conformance.golden.format import FixtureError, content_hash, dumps, load, verify
from optimizer_conformance.conformance.golden.generate import build_document, check
from optimizer_conformance.conformance.golden.replay import spec_for
from optimizer_conformance.conformance.model import encode

from tests.conftest import KERAS_UPSTREAM_BUGS, OPTCONF, SCHEDULE_FREE, requires
from tests.keras_runs import run_keras, upstream_explanation

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PATHS = sorted(FIXTURES.glob("*.json"))


def test_the_corpus_is_on_disk_and_complete():
    assert {p.stem for p in PATHS} == {e.name for e in CORPUS}
    algorithms = {load(p).algorithm for p in PATHS}
    assert algorithms == {"adam", "adamw", "nadam", "nadam-legacy", "adamax", "lamb", "schedule-free-adamw",
                          "torch-adam", "torch-adamw", "torch-nadam", "optax-adam", "optax-adamw", "optax-nadam"}
    dtypes = {load(p).document["input_dtype"] for p in PATHS}
    assert dtypes == {"float64", "float32", "float16", "bfloat16"}
    assert max(len(load(p).document["gradients"]) for p in PATHS) >= 1000


def _oracle_states(fixture, dtype):
    return oracle_states(spec_for(fixture, dtype), precision=fixture.document["provenance"]["precision_bits"])


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_the_oracle_replayed_from_the_file_alone_reproduces_it(path):
    fixture = load(path)
    for dtype in fixture.budget_dtypes:
        for k, state in enumerate(_oracle_states(fixture, dtype)):
            for quantity, q in state.items():
                if quantity == "iterations":
                    assert int(q.exact[0]) == fixture.document["states"][k]["iterations"]
                    continue
                stored = fixture.exact(k, quantity)
                assert all(abs(a - b) <= abs(b) * 1e-33 if b.is_finite() else str(a) == str(b)
                           for a, b in zip(q.exact, stored)), (quantity, k)
                exact = np.abs(q.as_float64().reshape(-1))
                finite = np.isfinite(exact)  # a NaN or Inf is matched by kind: its stored budget is 0
                budget = fixture.budget(k, quantity, dtype)
                assert np.all(budget[~finite] == 0)
                assert np.allclose((q.budget + exact * 1e-33)[finite], budget[finite], rtol=1e-15, atol=0)
                assert np.max(fixture.ratios(k, quantity, dtype, q.as_float64())) <= 1.0


KERAS_DTYPES = {"tensorflow": ("float64", "float32", "float16", "bfloat16"),
                "jax": ("float64", "float32", "float16", "bfloat16"),
                "torch": ("float64", "float32", "float16")}


@pytest.mark.keras
@pytest.mark.parametrize("backend", [pytest.param(b, marks=requires("keras", b)) for b in KERAS_DTYPES])
def test_real_keras_replays_every_keras3_fixture_inside_budget(backend):
    fixtures = [f for f in map(load, PATHS) if f.document["dialect"] == "keras3"]
    runs = [(f, d) for f in fixtures for d in f.budget_dtypes if d in KERAS_DTYPES[backend]]
    results = run_keras([spec_for(f, d) for f, d in runs], backend)
    failures, known = [], {}
    for (fixture, dtype), result in zip(runs, results):
        if result.get("not_applicable"):
            # Keras's LossScaleOptimizer on JAX, sparse gradients on torch, global clipping across dtypes on
            # TensorFlow (which raises there): the harness says why (README).
            expected = {"jax": "loss_scale_optimizer", "torch": "sparse_gradients", "tensorflow": "variable_dtypes"}
            assert fixture.document.get(expected[backend]), (fixture.name, result["not_applicable"])
            assert backend != "tensorflow" or "global_clipnorm meets variables of several dtypes" in result[
                "not_applicable"], result["not_applicable"]
            continue
        over = [f"{fixture.name} [{dtype}]: {f}" for f in judge_fixture(fixture, dtype, result["states"])
                if not f.ratio <= 1.0]
        explained = upstream_explanation(spec_for(fixture, dtype), result) if over else None
        if explained:  # a catalogued upstream bug of this release, diagnosed with exactly its id
            known.setdefault(fixture.algorithm, set()).update(explained.split(" + "))
        else:
            failures += over
    assert len(runs) > 50
    assert not failures, "\n".join(failures[:20])
    for algorithm, ids in known.items():
        assert ids <= KERAS_UPSTREAM_BUGS[backend], (algorithm, ids)
    # The schedule-free departure shows in every schedule-free fixture: one that stops showing means Keras was fixed.
    assert (SCHEDULE_FREE in known.get("schedule-free-adamw", set())) == (SCHEDULE_FREE in KERAS_UPSTREAM_BUGS[backend])


@requires("torch")
def test_torch_nadam_with_the_legacy_schedule_replays_the_legacy_fixtures():
    import torch

    fixtures = [f for f in map(load, PATHS) if f.algorithm == "nadam-legacy" and "float32" in f.budget_dtypes]
    assert fixtures
    for fixture in fixtures:
        names = [name for name, _ in fixture.variables()]
        params = [torch.nn.Parameter(torch.tensor(theta, dtype=torch.float32)) for _, theta in fixture.variables()]
        c = fixture.config
        opt = torch.optim.NAdam(params, lr=c["learning_rate"], betas=(c["beta_1"], c["beta_2"]), eps=c["epsilon"],
                                momentum_decay=c["decay"], foreach=False)
        states = []
        for grads in fixture.gradients():
            for p, g in zip(params, grads):
                p.grad = torch.tensor(g, dtype=torch.float32)
            opt.step()
            states.append({f"variables/{n}": encode(p.detach().numpy()) for n, p in zip(names, params)})
        worst = max(judge_fixture(fixture, "float32", states), key=lambda f: f.ratio)
        assert worst.ratio <= 1.0, f"{fixture.name}: {worst}"


# -- damage ------------------------------------------------------------------------------------------

SMALL = FIXTURES / "adam-basic.json"


def _write(tmp_path, document=None, text=None):
    path = tmp_path / "damaged.json"
    path.write_text(text if text is not None else dumps(document), encoding="ascii")
    return path


def _another_digit(decimal: str) -> str:
    """The same 34-digit decimal with its tenth significant digit changed."""
    i = [k for k, c in enumerate(decimal) if c.isdigit()][9]
    return decimal[:i] + ("1" if decimal[i] != "1" else "2") + decimal[i + 1:]


def _document():
    return json.loads(SMALL.read_text())


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda d: d["states"][3]["exact"]["variables/kernel"].__setitem__(
            0, _another_digit(d["states"][3]["exact"]["variables/kernel"][0])), "sha256"),
        (lambda d: d["states"][0]["budget"]["float32"]["momentum/bias"].__setitem__(1, 1.0), "sha256"),
        (lambda d: d["gradients"][2][0]["hex"].__setitem__(0, "0x1.8p+0"), "gradients[2][0].decimal[0]"),
        (lambda d: d["config"].__setitem__("learning_rate", 0.02), "sha256"),
        (lambda d: d["variables"][0].__setitem__("shape", [4, 4]), "variables[0].initial.hex"),
        (lambda d: d.pop("provenance"), "(document)"),
        (lambda d: d.__setitem__("format_version", 2), "format_version"),
        (lambda d: d["states"].pop(), "states"),
        (lambda d: d["states"][5]["exact"]["velocity/bias"].__setitem__(0, "0.5"), "states[5].exact.velocity/bias[0]"),
        (lambda d: d["states"][7]["budget"]["float64"]["variables/bias"].__setitem__(0, -1.0),
         "states[7].budget.float64.variables/bias[0]"),
    ],
    ids=["exact-value", "budget", "gradient", "config", "shape", "missing-field", "version", "missing-state",
         "malformed-exact", "negative-budget"],
)
def test_tampering_is_detected_and_names_file_and_field(tmp_path, edit, field):
    document = _document()
    edit(document)
    path = _write(tmp_path, document)
    with pytest.raises(FixtureError) as caught:
        load(path)
    assert caught.value.path == str(path)
    assert caught.value.field == field, str(caught.value)


def test_a_truncated_file_is_rejected(tmp_path):
    text = SMALL.read_text()
    path = _write(tmp_path, text=text[: len(text) // 2])
    with pytest.raises(FixtureError, match="not valid JSON"):
        load(path)


def test_a_corrupted_byte_is_rejected(tmp_path):
    data = bytearray(SMALL.read_bytes())
    data[len(data) // 3] = 0xFF
    path = tmp_path / "corrupt.json"
    path.write_bytes(bytes(data))
    with pytest.raises(FixtureError, match="not ASCII"):
        load(path)


def test_nan_and_infinity_literals_are_rejected(tmp_path):
    text = SMALL.read_text().replace('"momentum/bias": [\n', '"momentum/bias": [\n  NaN,\n', 1)
    with pytest.raises(FixtureError, match="not valid JSON"):
        load(_write(tmp_path, text=text))


def test_a_rehashed_but_inconsistent_document_is_still_rejected(tmp_path):
    document = _document()
    document["gradients"][0].append(None)
    document["sha256"] = content_hash(document)
    with pytest.raises(FixtureError, match="gradients"):
        verify(document, "rehashed.json")


def test_generate_check_reports_a_modified_file(tmp_path):
    shutil.copy(SMALL, tmp_path / SMALL.name)
    entries = [e for e in CORPUS if e.name == "adam-basic"]
    assert check(tmp_path, entries, jobs=1, progress=False) == []
    text = (tmp_path / SMALL.name).read_text().replace('"adam"', '"Adam"', 1)
    (tmp_path / SMALL.name).write_text(text)
    problems = check(tmp_path, entries, jobs=1, progress=False)
    assert len(problems) == 1 and "differs from its regeneration at line" in problems[0]


def test_generation_is_deterministic():
    entry = next(e for e in CORPUS if e.name == "adam-accumulation-ema-schedule")
    assert dumps(build_document(entry)) == dumps(build_document(entry)) == (FIXTURES / f"{entry.name}.json").read_text()


# -- trust: what the hash does not protect, the oracle does ------------------------------------------------

def _rehashed_with_huge_budgets(tmp_path) -> Path:
    document = _document()
    for state in document["states"]:
        for per_quantity in state["budget"].values():
            for values in per_quantity.values():
                values[:] = [1e300] * len(values)
    document["sha256"] = content_hash(document)  # as fixtures/README.md says the hash is computed
    path = tmp_path / "adam-basic.json"
    path.write_text(dumps(document), encoding="ascii")
    load(path)  # the hash alone accepts it
    return path


def _optconf(*args):
    import subprocess

    return subprocess.run([*OPTCONF, *args], capture_output=True, text=True,
                          timeout=600)


def test_verify_re_derives_a_rehashed_fixture_and_names_the_first_difference(tmp_path):
    path = _rehashed_with_huge_budgets(tmp_path)
    out = _optconf("generate", "--verify", str(path), str(SMALL))
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"{path}: states[0].budget.float32.variables/kernel[0]: stored 1e+300, the oracle gives" in out.stdout
    assert f"{SMALL}: verified" in out.stdout and "1 of 2 fixtures verified" in out.stdout


def test_verify_accepts_the_bundled_corpus_and_rejects_unreadable_files(tmp_path):
    short = [str(p) for p in PATHS if len(load(p).document["gradients"]) <= 100]
    out = _optconf("generate", "--verify", *short)
    assert out.returncode == 0, out.stdout[-3000:]
    out = _optconf("generate", "--verify", str(tmp_path / "missing.json"))
    assert out.returncode == 1 and "missing.json" in out.stdout and "Traceback" not in out.stderr
    deep = tmp_path / "deep.json"  # 200,000 nested arrays: one error line, never a RecursionError traceback
    deep.write_text("[" * 200_000 + "]" * 200_000)
    out = _optconf("generate", "--verify", str(deep))
    assert out.returncode == 1 and f"{deep}: (file): JSON nested too deeply" in out.stdout, out.stdout + out.stderr
    assert "Traceback" not in out.stderr


@requires("numba")
def test_the_fixtures_check_never_judges_with_a_tampered_or_damaged_fixture(tmp_path):
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker
    from optimizer_conformance.conformance.model import PROFILES
    from optimizer_conformance.conformance.runner import Plan, run_plan

    _rehashed_with_huge_budgets(tmp_path)
    (tmp_path / "adam-clipnorm.json").write_text((FIXTURES / "adam-clipnorm.json").read_text()[:5000])
    shutil.copy(FIXTURES / "adam-defaults.json", tmp_path)
    plan = Plan(["adam"], ["float32"], PROFILES["quick"], ("fixtures",), fixture_directory=tmp_path)
    with Worker(Candidate("tests.candidates.misbehaving:Honest", "torch")) as worker:
        (outcome,) = run_plan(worker, plan)
    assert not outcome.passed and outcome.cases == 3
    assert "adam-basic.json: states[0].budget" in outcome.error or "adam-clipnorm.json" in outcome.error
    assert outcome.worst is not None and outcome.worst_case == "adam-defaults"  # the sound fixture was judged


def test_a_failed_write_leaves_the_old_fixture_intact(tmp_path):
    import resource
    import signal
    import subprocess

    target = tmp_path / "adam-basic.json"
    target.write_text("the old content\n")

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    out = subprocess.run([*OPTCONF, "generate", "--only", "adam-basic", "--jobs", "1",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300,
                         preexec_fn=limit_file_size)
    assert out.returncode != 0
    assert target.read_text() == "the old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adam-basic.json"]  # no temporary left behind


@requires("numba")
def test_a_fixtures_check_that_finds_none_of_the_corpus_is_an_error_and_the_count_is_reported(tmp_path):
    from optimizer_conformance.conformance import report
    from optimizer_conformance.conformance.candidates.client import Candidate, Worker
    from optimizer_conformance.conformance.model import PROFILES
    from optimizer_conformance.conformance.runner import Plan, run_plan

    with Worker(Candidate("tests.candidates.misbehaving:Honest", "torch")) as worker:
        (missing,) = run_plan(worker, Plan(["adam"], ["float32"], PROFILES["quick"], ("fixtures",),
                                           fixture_directory=tmp_path))
        (bundled,) = run_plan(worker, Plan(["adam"], ["float32"], PROFILES["quick"], ("fixtures",)))
    assert not missing.passed and "no fixture found" in missing.error and "the corpus has" in missing.error
    assert bundled.passed and bundled.cases >= 20
    import io

    table = io.StringIO()
    report.print_table([bundled], table)
    assert f"({bundled.cases})" in table.getvalue()


def test_stored_exact_values_keep_their_34_digits_whatever_the_working_precision():
    """At gmpy2's default 53 bits a stored value would be rounded to a float: an honest float64 result one ulp
    from that float but within budget of the true value failed (real Keras, adam-gradients-over-45-decades)."""
    import gmpy2

    fixture = load(FIXTURES / "adam-gradients-over-45-decades.json")
    text = fixture.document["states"][0]["exact"]["variables/kernel"][11]
    with gmpy2.context(gmpy2.get_context(), precision=53):
        exact = fixture.exact(0, "variables/kernel")[11]
        ratio = fixture.ratios(0, "variables/kernel", "float64", [0.0] * 11 + [0.6534003019281336])[11]
    assert exact.precision >= 113 and abs(exact - gmpy2.mpfr(text, 256)) < abs(exact) * 1e-34
    assert ratio < 1  # Keras's float64 value on the TensorFlow backend


@requires("keras", "torch")
def test_a_shrunk_failure_becomes_a_regression_fixture_replayed_with_fixtures_dir(tmp_path):
    """--write-failures writes explore's shrunk failure; --fixtures DIR replays it beside the bundled corpus: the
    port that failed fails on it, by name, and real Keras passes it; a directory that is not there is one line."""
    import subprocess

    own = tmp_path / "regressions"
    own.mkdir()
    mutant = ["check", "tests.mutants.catalogue:EpsilonInsideSqrt", "--algorithm", "adam", "--dtype", "float32",
              "--profile", "quick"]
    subprocess.run([*OPTCONF, *mutant, "--checks", "explore", "--write-failures", str(own)], capture_output=True,
                   text=True, timeout=600)
    written = sorted(own.glob("*.json"))
    assert len(written) == 1, written
    again = subprocess.run([*OPTCONF, *mutant, "--checks", "fixtures", "--fixtures", str(own)], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 1 and f"on {written[0].stem}" in again.stdout, again.stdout[-2000:]
    report = tmp_path / "keras.json"
    keras = subprocess.run([*OPTCONF, "check", "keras", "--backend", "torch", "--algorithm", "adam", "--dtype",
                            "float32", "--profile", "quick", "--checks", "fixtures", "--fixtures", str(own),
                            "--json", str(report)], capture_output=True, text=True, timeout=600)
    assert keras.returncode == 0, keras.stdout[-2000:]
    assert json.loads(report.read_text())["settings"]["fixtures"] == [str(own)]
    missing = subprocess.run([*OPTCONF, "check", "keras", "--fixtures", str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "--fixtures: " in missing.stderr and "is not a directory" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
