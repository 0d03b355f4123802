"""torch.optim and optax as candidates by their own names, in each mode they offer, judged against Keras's rules:
every difference is a failure, and every failure is explained by the convention the library is known for; and
torch.optim judged against its own rules, the torch dialect, conforms in every mode."""

import json
import subprocess

import pytest

from tests.conftest import OPTCONF, requires

# What each library computes otherwise than Keras, as the catalogue of deviations names it: a diagnosis names
# one of them, or several at once ("a + b").
CONVENTIONS = {
    "torch.optim:Adam": ("epsilon-after-bias-correction", "step-count-per-variable"),
    "torch.optim:AdamW": ("epsilon-after-bias-correction", "step-count-per-variable"),
    "torch.optim:Adamax": ("adamax-epsilon-inside-max", "step-count-per-variable"),
    "torch.optim:NAdam": ("momentum-product-in-float32", "step-count-per-variable"),
    "optax:adamw": ("epsilon-after-bias-correction", "missing-gradient-as-zero"),
    "optax:amsgrad": ("epsilon-after-bias-correction", "amsgrad-max-of-corrected-velocity", "missing-gradient-as-zero"),
}



def _check(tmp_path, candidate: str, *args: str) -> dict:
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", candidate, "--profile", "quick", "--checks", "pipeline,fixtures",
                          "--dialect", "keras3", "--json", str(report), *args], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]  # they are not Keras's rules
    return json.loads(report.read_text())


def _assert_every_failure_explained(document: dict, candidate: str) -> None:
    failed = [c for c in document["checks"] if c["verdict"] == "fail"]
    assert failed and not [c for c in document["checks"] if c.get("error")], document["checks"]
    unexplained = [(c["check"], c["dtype"], c["diagnosis"]) for c in failed
                   if not c["diagnosis"] or not set(c["diagnosis"].split(" + ")) <= set(CONVENTIONS[candidate])]
    assert not unexplained, unexplained
    lacking = [c for c in document["checks"] if c["verdict"] == "not applicable"]
    assert lacking and all("leave it to the training loop" in c["not_applicable"] or "optax." in c["not_applicable"]
                           or "torch.optim" in c["not_applicable"] or "one dtype per trajectory" in c["not_applicable"]
                           for c in lacking), lacking


@requires("torch")
@pytest.mark.parametrize("candidate, mode, dtypes", [
    ("torch.optim:Adam", "eager", "float32,float64,float16,bfloat16"),
    ("torch.optim:Adam", "foreach", "float32,float16"),
    ("torch.optim:Adam", "fused", "float32,bfloat16"),
    ("torch.optim:AdamW", "fused", "float32,float64"),
])
def test_torch_adam_in_every_mode_differs_from_keras_by_its_epsilon_placement_alone(tmp_path, candidate, mode, dtypes):
    document = _check(tmp_path, candidate, "--compile", mode, "--dtype", dtypes)
    _assert_every_failure_explained(document, candidate)
    assert document["candidate"]["conventions"][0] == "epsilon-after-bias-correction"


@requires("torch")
def test_torch_nadam_differs_by_its_float32_momentum_product_and_its_two_subtractions_are_honest(tmp_path):
    document = _check(tmp_path, "torch.optim:NAdam", "--algorithm", "nadam", "--dtype", "float32,float64")
    _assert_every_failure_explained(document, "torch.optim:NAdam")
    # A None gradient leaves a parameter's step count and its momentum product behind: both named.
    missing = [c["diagnosis"] for c in document["checks"] if c["check"] == "pipeline/none-gradients"]
    assert missing == ["momentum-product-in-float32 + step-count-per-variable"] * 2, missing


@requires("torch")
def test_torch_adamax_keeps_epsilon_inside_its_max_and_has_no_fused_mode(tmp_path):
    _assert_every_failure_explained(_check(tmp_path, "torch.optim:Adamax", "--dtype", "float32"), "torch.optim:Adamax")
    fused = subprocess.run([*OPTCONF, "check", "torch.optim:Adamax", "--compile", "fused"], capture_output=True,
                           text=True, timeout=300)
    assert fused.returncode == 2 and "no fused Adamax; accepted: eager, foreach" in fused.stderr, fused.stderr


@requires("optax", "jax")
@pytest.mark.parametrize("candidate, mode, dtypes", [("optax:adamw", "jit", "float32,float64"),
                                                     ("optax:amsgrad", "eager", "float32")])
def test_optax_differs_from_keras_by_its_conventions_alone(tmp_path, candidate, mode, dtypes):
    _assert_every_failure_explained(_check(tmp_path, candidate, "--compile", mode, "--dtype", dtypes), candidate)


@requires("torch")
@pytest.mark.parametrize("candidate, mode, dtypes", [
    ("torch.optim:Adam", "eager", "float32,float64,float16,bfloat16"),
    ("torch.optim:Adam", "foreach", "float32,float16"),
    ("torch.optim:Adam", "fused", "float64,bfloat16"),
    ("torch.optim:AdamW", "eager", "float32,bfloat16"),
    ("torch.optim:AdamW", "foreach", "float64,float16"),
    ("torch.optim:AdamW", "fused", "float32,float64,float16,bfloat16"),
    ("torch.optim:NAdam", "eager", "float32,float64,float16,bfloat16"),
    ("torch.optim:NAdam", "foreach", "float32,float64"),
])
def test_torch_optim_conforms_to_its_own_dialect_in_every_mode(tmp_path, candidate, mode, dtypes):
    """The torch dialect is torch.optim's rules exactly: its ε after the bias correction, its weight decays, a step
    count and a momentum product per parameter, its float32 product; every check passes, none is skipped."""
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", candidate, "--dialect", "torch", "--compile", mode, "--dtype", dtypes,
                          "--profile", "quick", "--json", str(report)], capture_output=True, text=True, timeout=900)
    document = json.loads(report.read_text())
    assert out.returncode == 0 and document["conformant"], out.stdout[-4000:] + out.stderr[-2000:]
    checks = document["checks"]
    assert {c["algorithm"] for c in checks} == {f"torch-{candidate.split(':')[1].lower()}"}
    judged = {(c["check"].split("/")[0], c["dtype"]) for c in checks if c["verdict"] == "pass"}
    for dtype in dtypes.split(","):
        assert {("pipeline", dtype), ("one-step", dtype), ("explore", dtype)} <= judged, judged
    assert any(c["check"] == "fixtures" and c["verdict"] == "pass" for c in checks)
    assert {c["check"] for c in checks if c["not_applicable"]} == {"api/*"}  # no Keras API to compare


@requires("optax", "jax")
@pytest.mark.parametrize("candidate, mode, dtypes", [
    ("optax:adam", "eager", "float32,float64,float16,bfloat16"),
    ("optax:adamw", "jit", "float32,float64,float16,bfloat16"),
    ("optax:nadam", "jit", "float32,bfloat16"),
])
def test_optax_conforms_to_its_own_dialect(tmp_path, candidate, mode, dtypes):
    """The optax dialect is optax's transformations exactly: ε after the bias correction and eps_root inside the
    root, Nesterov's look-ahead over corrected moments, adamw's decay added to the update before the rate."""
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", candidate, "--dialect", "optax", "--compile", mode, "--dtype", dtypes,
                          "--profile", "quick", "--json", str(report)], capture_output=True, text=True, timeout=900)
    document = json.loads(report.read_text())
    assert out.returncode == 0 and document["conformant"], out.stdout[-4000:] + out.stderr[-2000:]
    checks = document["checks"]
    assert {c["algorithm"] for c in checks} == {f"optax-{candidate.split(':')[1]}"}
    judged = {(c["check"].split("/")[0], c["dtype"]) for c in checks if c["verdict"] == "pass"}
    for dtype in dtypes.split(","):
        assert {("pipeline", dtype), ("one-step", dtype), ("explore", dtype)} <= judged, judged
    assert any(c["check"] == "fixtures" and c["verdict"] == "pass" for c in checks)


@requires("torch")
def test_a_torch_port_with_the_wrong_weight_decay_fails_the_torch_dialect_where_it_decays(tmp_path):
    """Adam's L2 decay (added to the gradient) done as AdamW's (applied to the weight): the fixture and the
    explored cases that decay fail; the ones without decay pass."""
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", "tests.candidates.torch_ports:DecoupledAdam", "--algorithm", "torch-adam",
                          "--dtype", "float32", "--profile", "quick", "--json", str(report)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    verdicts = {c["check"]: c["verdict"] for c in json.loads(report.read_text())["checks"]}
    assert verdicts["fixtures"] == "fail" and verdicts["pipeline/basic"] == "pass", verdicts
    assert "torch-adam-l2-amsgrad" in out.stdout


@requires("tf_keras")
def test_tf_keras_keras2_optimizers_run_as_keras2_and_differ_only_by_their_ema(tmp_path):
    """tf_keras.optimizers.Adam (Keras 2) on tf.Variable with apply_gradients, never as a Keras 3 class: what Keras 2
    lacks is not applicable, and its one difference from Keras 3's Adam in float32 is its EMA's start."""
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", "tf_keras.optimizers:Adam", "--dtype", "float32", "--profile", "quick",
                          "--checks", "pipeline,fixtures", "--json", str(report)],
                         capture_output=True, text=True, timeout=900)
    checks = json.loads(report.read_text())["checks"]
    assert out.returncode == 1 and not [c for c in checks if c["error"]], out.stdout[-3000:]
    failed = {c["check"]: c["diagnosis"] for c in checks if c["verdict"] == "fail"}
    assert failed and set(failed.values()) == {"ema-from-initial-weights"}, failed
    assert {c["check"] for c in checks if c["verdict"] == "pass"} >= {"pipeline/basic", "pipeline/constraints",
                                                                       "pipeline/schedule-exponential"}
    lacking = {c["not_applicable"] for c in checks if c["not_applicable"]}
    assert lacking and all("Keras 2" in why for why in lacking), lacking


@requires("tf_keras")
def test_tf_keras_keras2_adamax_forms_its_sparse_max_by_an_increment(tmp_path):
    """Keras 2's Adamax on tf.IndexedSlices raises the decayed norm to the max by adding max(β₂u, |g|) − β₂u,
    rounding twice (an ulp from the max); named, beside its EMA's start, and nothing else."""
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", "tf_keras.optimizers:Adamax", "--dtype", "float32", "--profile", "quick",
                          "--checks", "pipeline", "--json", str(report)], capture_output=True, text=True, timeout=900)
    checks = json.loads(report.read_text())["checks"]
    assert out.returncode == 1 and not [c for c in checks if c["error"]], out.stdout[-3000:]
    failed = {c["check"]: c["diagnosis"] for c in checks if c["verdict"] == "fail"}
    assert failed.pop("pipeline/sparse-gradients") == "adamax-sparse-max-by-increment", failed
    # Its rows named twice are summed first (tf_keras deduplicates), then the same increment.
    assert failed.pop("pipeline/sparse-duplicate-rows") == "adamax-sparse-max-by-increment", failed
    assert set(failed.values()) == {"ema-from-initial-weights"}, failed


@requires("tf_keras")
def test_a_tf_keras_legacy_adam_takes_schedules_and_lacks_keras3s_pipeline(tmp_path):
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", "tf_keras.optimizers.legacy:Adam", "--dtype", "float32", "--profile",
                          "quick", "--checks", "pipeline,fixtures", "--json", str(report)],
                         capture_output=True, text=True, timeout=900)
    checks = {c["check"]: c for c in json.loads(report.read_text())["checks"]}
    assert out.returncode == 0, out.stdout[-3000:]
    assert all(c["verdict"] == "pass" for name, c in checks.items() if name.startswith("pipeline/schedule-"))
    assert checks["fixtures"]["verdict"] == "pass" and checks["pipeline/constraints"]["verdict"] == "pass"
    assert "legacy optimizers take no" in checks["pipeline/ema"]["not_applicable"]


def test_a_mode_a_candidate_does_not_have_is_one_clear_line():
    out = subprocess.run([*OPTCONF, "check", "keras", "--backend", "torch", "--compile", "fused"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "--compile 'fused' is not a mode of Keras's torch backend; accepted: eager" in (
        out.stderr), out.stderr
