"""torch.optim and optax as candidates by their own names, in each mode they offer, judged against Keras's rules:
every difference is a failure, and every failure is explained by the convention the library is known for."""

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

# torch.optim's NAdam keeps a momentum product per parameter: a None gradient leaves that parameter's behind, which
# no deviation models yet (step-count-per-variable is for rules without a per-step scalar).
NOT_MODELLED = {("torch.optim:NAdam", "pipeline/none-gradients")}


def _check(tmp_path, candidate: str, *args: str) -> dict:
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", candidate, "--profile", "quick", "--checks", "pipeline,fixtures",
                          "--json", str(report), *args], capture_output=True, text=True, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]  # they are not Keras's rules
    return json.loads(report.read_text())


def _assert_every_failure_explained(document: dict, candidate: str) -> None:
    failed = [c for c in document["checks"] if c["verdict"] == "fail"]
    assert failed and not [c for c in document["checks"] if c.get("error")], document["checks"]
    unexplained = [(c["check"], c["dtype"], c["diagnosis"]) for c in failed
                   if (not c["diagnosis"] or not set(c["diagnosis"].split(" + ")) <= set(CONVENTIONS[candidate]))
                   and (candidate, c["check"]) not in NOT_MODELLED]
    assert not unexplained, unexplained
    lacking = [c for c in document["checks"] if c["verdict"] == "not applicable"]
    assert lacking and all("leave it to the training loop" in c["not_applicable"] or "optax." in c["not_applicable"]
                           or "torch.optim" in c["not_applicable"] for c in lacking), lacking


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


def test_a_mode_a_candidate_does_not_have_is_one_clear_line():
    out = subprocess.run([*OPTCONF, "check", "keras", "--backend", "torch", "--compile", "fused"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "--compile 'fused' is not a mode of Keras's torch backend; accepted: eager" in (
        out.stderr), out.stderr
