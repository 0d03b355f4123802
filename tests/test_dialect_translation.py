"""Another library's rule run as the Keras rule that computes it: Keras (or a port of it) in torch's and optax's
dialects, the arguments translated exactly, the states brought back in the library's names, and a failure there
explained by Keras's rule."""

import json
import subprocess

import pytest
from optimizer_conformance.conformance.cases.catalogue import pipeline_cases
from optimizer_conformance.conformance.checks.compare import compare, oracle_states
from optimizer_conformance.conformance.model import PROFILES, encode
from optimizer_conformance.conformance.settings import chosen
from optimizer_conformance.reference.rules import translation

from tests.conftest import OPTCONF, requires


@pytest.mark.parametrize("algorithm, config, reason", [
    ("torch-adam", {"maximize": True}, "maximize=True ascends the gradient"),
    ("torch-adam", {"weight_decay": 0.1}, "torch's L2 penalty added to the gradient"),
    ("torch-nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True},
     "momentum_decay=0.004 is the legacy TensorFlow Nadam's schedule"),
    ("torch-nadam", {"eps": 0.0}, "takes an ε of 0 as 1e-7"),
    ("optax-adam", {"eps_root": 0.01}, "eps_root=0.01 is added inside the square root"),
    ("optax-adamw", {"nesterov": True}, "nesterov=True looks ahead"),
    ("optax-nadam", {}, "no Keras optimizer computes optax-nadam"),
])
def test_what_no_keras_optimizer_computes_is_said_with_the_argument(algorithm, config, reason):
    assert reason in translation.keras_spec({"algorithm": algorithm, "config": config})


@pytest.mark.parametrize("algorithm, config, keras", [
    ("torch-adam", {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-6, "amsgrad": True},
     ("adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "weight_decay": None,
               "amsgrad": True})),
    ("torch-adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}, ("adam", {"weight_decay": 0.1})),
    ("torch-adamw", {}, ("adamw", {"weight_decay": 0.01})),
    ("torch-nadam", {"momentum_decay": 1.0}, ("nadam", {"learning_rate": 0.002})),
    ("torch-nadam", {}, ("nadam-legacy", {"decay": 0.004})),
    ("optax-adamw", {"b1": 0.5}, ("adamw", {"beta_1": 0.5, "weight_decay": 1e-4})),
])
def test_the_arguments_are_the_keras_rules_own(algorithm, config, keras):
    translated = translation.keras_spec({"algorithm": algorithm, "config": config})
    assert translated["algorithm"] == keras[0]
    assert keras[1].items() <= translated["config"].items(), translated


def _basic(algorithm: str, config: dict, dtype: str = "float32") -> dict:
    case = next(c for c in pipeline_cases(algorithm, dtype, PROFILES["quick"]) if c.label == "basic")
    return {**case.spec, "config": config}


@pytest.mark.parametrize("algorithm, config", [
    ("torch-adam", {"lr": 0.01, "eps": 1e-30, "amsgrad": True}),
    ("torch-adamw", {"lr": 0.01, "eps": 1e-30, "weight_decay": 0.1}),
    ("torch-nadam", {"lr": 0.01, "eps": 1e-30, "momentum_decay": 1.0, "weight_decay": 0.1,
                     "decoupled_weight_decay": True}),
    ("torch-nadam", {"lr": 0.01, "eps": 1e-30}),
    ("optax-adam", {"learning_rate": 0.01, "eps": 1e-30}),
    ("optax-adamw", {"learning_rate": 0.01, "eps": 1e-30, "weight_decay": 0.1}),
])
def test_where_epsilon_cannot_matter_the_keras_rule_is_the_same_mathematics(algorithm, config):
    """With ε negligible, where each library places it does not matter: the Keras rule under the translated
    arguments, its exact states renamed, lies within the other library's float32 budgets at every step (a wrong
    translation, betas swapped or the decay dropped, would be orders of magnitude out)."""
    spec = _basic(algorithm, config)
    keras = translation.keras_spec(spec)
    reported = [translation.from_keras({q: encode(v.as_float64()) for q, v in state.items()}, algorithm)
                for state in oracle_states(keras)]
    findings = compare(oracle_states(spec), reported)
    assert findings and max(f.ratio for f in findings) <= 1, max(findings, key=lambda f: f.ratio)


def test_states_come_back_in_the_librarys_names_and_go_back_to_keras():
    spec = _basic("torch-nadam", {"lr": 0.01, "momentum_decay": 1.0})
    keras_state = {q: encode(v.as_float64()) for q, v in oracle_states(translation.keras_spec(spec))[-1].items()}
    torch_state = translation.from_keras(keras_state, "torch-nadam")
    assert set(torch_state) == set(oracle_states(spec)[-1])  # exp_avg, exp_avg_sq, step and mu_product per variable
    assert translation.to_keras(torch_state, "torch-nadam", "nadam") == keras_state
    behind = {**torch_state, next(q for q in torch_state if q.startswith("step/")): encode(0.0)}
    assert translation.to_keras(behind, "torch-nadam", "nadam") is None  # one Keras count cannot hold it


def test_a_dialect_reaches_the_rules_the_candidates_keras_rules_compute():
    assert chosen(None, ["adam", "nadam"], "torch") == ["torch-adam", "torch-nadam"]
    assert chosen(None, ["adam", "nadam"], "optax") == ["optax-adam"]  # optax's nadam is no Keras rule
    assert chosen(None, ["adam", "nadam"]) == ["adam", "nadam"]  # without a dialect: what it claims
    assert chosen(None, ["adam", "torch-adam"], "optax") == ["optax-adam"]  # through torch.optim's Keras names


def _check(tmp_path, candidate: str, *args: str) -> dict:
    report = tmp_path / "report.json"
    out = subprocess.run([*OPTCONF, "check", candidate, "--profile", "quick", "--checks", "pipeline,fixtures",
                          "--json", str(report), *args], capture_output=True, text=True, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]  # Keras's ε placement is not torch's
    return json.loads(report.read_text())


def _assert_explained_by_keras_rules(document: dict, algorithms: set[str]) -> None:
    checks = document["checks"]
    assert {c["algorithm"] for c in checks} == algorithms
    assert not [c for c in checks if c.get("error")], checks
    failed = [c for c in checks if c["verdict"] == "fail"]
    assert failed and all(c["diagnosis"] and c["diagnosis"].startswith("as-keras-") for c in failed), \
        [(c["algorithm"], c["check"], c["diagnosis"]) for c in failed]
    # The fixtures with arguments Keras has no counterpart for (maximize, an L2 decay, eps_root) are left out, each
    # with the argument named.
    skipped = [c["not_applicable"] for c in checks if c["verdict"] == "not applicable"] + \
        [reason.split(": ", 1)[1] for c in checks for reason in c["skipped"]]
    assert skipped and all(reason.startswith(("as Keras's optimizer: ", "these arguments are Keras's"))
                           for reason in skipped), skipped


def test_a_keras_port_in_the_torch_dialect_differs_by_keras_rule_alone(tmp_path):
    """The bundled implementation (a port of Keras) in torch's dialect: every failure is Keras's own rule, every
    configuration Keras has no argument for is not applicable with the argument named."""
    document = _check(tmp_path, "optimizer_conformance.fast_optimizers.conformance:NumpyAdapter", "--dialect",
                      "torch", "--dtype", "float32")
    _assert_explained_by_keras_rules(document, {"torch-adam", "torch-adamw", "torch-nadam"})
    cli = subprocess.run([*OPTCONF, "check", "optimizer_conformance.fast_optimizers.conformance:NumpyAdapter",
                          "--dialect", "torch", "--dtype", "float32", "--profile", "quick", "--checks", "fixtures"],
                         capture_output=True, text=True, timeout=600)
    assert "computes another library's rule: [as-keras-adam] Keras's Adam (adam)" in cli.stdout, cli.stdout[-3000:]


@requires("keras", "jax")
def test_real_keras_in_the_optax_dialect_differs_by_keras_rule_alone(tmp_path):
    document = _check(tmp_path, "keras", "--backend", "jax", "--dialect", "optax", "--dtype", "float32")
    _assert_explained_by_keras_rules(document, {"optax-adam", "optax-adamw"})


def test_a_deviation_of_the_keras_rule_is_named_through_the_translation():
    """optax's AMSGrad judged as torch's Adam: Keras's Adam with ε after the bias correction and the max over the
    corrected velocity; named ``as-keras-adam + ...`` from its own numbers, those deviations tried first as a
    library's conventions are."""
    from optimizer_conformance.conformance.checks.deviations import combined
    from optimizer_conformance.conformance.checks.diagnosis import diagnose
    from optimizer_conformance.conformance.checks.upstream import BY_ID

    spec = _basic("torch-adam", {"lr": 0.01, "amsgrad": True, "eps": 0.1})
    conventions = tuple(BY_ID[i] for i in ("epsilon-after-bias-correction", "amsgrad-max-of-corrected-velocity"))
    keras = translation.keras_spec(spec)
    oracle = combined([d.deviate(keras)[1] for d in conventions])
    states = [translation.from_keras({q: encode(v.as_float64()) for q, v in state.items()}, "torch-adam")
              for state in oracle_states(keras, oracle=oracle)]
    assert max(f.ratio for f in compare(oracle_states(spec), states)) > 1  # it is not torch's Adam
    assert diagnose(spec, states, conventions) == \
        "as-keras-adam + epsilon-after-bias-correction + amsgrad-max-of-corrected-velocity"
