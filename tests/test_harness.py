"""``optconf check`` on real implementations: Keras 3 on each backend and the tf_keras legacy Nadam pass."""

import json
import subprocess

import numpy as np
import pytest

from tests.conftest import KERAS_DEPARTURES, OPTCONF, requires


def _optconf(*args, timeout=900):
    return subprocess.run([*OPTCONF, *args], capture_output=True, text=True,
                          timeout=timeout)



@pytest.mark.keras
@pytest.mark.parametrize("algorithms", [("adam", "adamw", "nadam"), ("adamax", "lamb", "schedule-free-adamw")],
                         ids=lambda a: "-".join(a))
@pytest.mark.parametrize("backend", [pytest.param(b, marks=requires("keras", b))
                                     for b in ("tensorflow", "jax", "torch")])
def test_real_keras_is_conformant_with_the_ci_profile(backend, algorithms, tmp_path):
    report = tmp_path / "report.json"
    out = _optconf("check", "keras", "--backend", backend, "--algorithm", ",".join(algorithms), "--profile", "ci",
                   "--json", str(report))
    document = json.loads(report.read_text())
    checks = document["checks"]
    departures = {a: d for (b, a), d in KERAS_DEPARTURES.items() if b == backend and a in algorithms}
    assert not [c for c in checks if c["error"]], out.stdout[-6000:]
    failed = [c for c in checks if c["verdict"] == "fail"]
    assert {c["algorithm"] for c in failed} == set(departures), out.stdout[-6000:] + out.stderr[-2000:]
    assert out.returncode == (1 if departures else 0), out.stdout[-6000:] + out.stderr[-2000:]
    assert document["conformant"] == (not departures)
    for c in failed:  # each departure is named wherever a trajectory failed
        if c["check"].startswith("pipeline/") or c["check"] == "explore":
            assert c["diagnosis"] == departures[c["algorithm"]], (c["check"], c["dtype"], c["diagnosis"])
    assert {c["algorithm"] for c in checks} == set(algorithms)
    dtypes = {c["dtype"] for c in checks} - {None}
    assert dtypes == ({"float32", "float64", "float16", "bfloat16"} if backend != "torch"
                      else {"float32", "float64", "float16"})
    families = {c["check"].split("/")[0] for c in checks}
    assert families == {"pipeline", "one-step", "fixtures", "explore", "api"}
    # Every API/config check applies and passes on every backend, except stateless_apply on TensorFlow,
    # which Keras itself does not support there, and resuming where Keras itself departs from the oracle.
    from optimizer_conformance.conformance.checks.api import CHECKS

    for algorithm in algorithms:
        api = {c["check"]: c for c in checks if c["algorithm"] == algorithm and c["dtype"] is None}
        assert set(api) == {f"api/{name}" for name in CHECKS}
        failing = {name for name, c in api.items() if c["verdict"] == "fail"}
        # Where Keras departs, the API checks that judge its numbers against the oracle fail with it.
        assert failing <= ({"api/state-layout", "api/finalize-variable-values", "api/loss-scale-optimizer"}
                           if algorithm in departures else set()), failing
        skipped = {name for name, c in api.items() if c["not_applicable"]}
        expected = {"api/stateless-apply"} if backend == "tensorflow" else set()
        if backend == "jax":  # Keras's LossScaleOptimizer is no fair reference there (see the README)
            expected |= {"api/loss-scale-optimizer"}
        if algorithm in departures:
            expected |= {"api/resume"}
        assert skipped == expected, skipped


@pytest.mark.keras
@requires("tf_keras", "tensorflow")
def test_the_tf_keras_legacy_nadam_is_conformant_to_the_legacy_rule():
    out = _optconf("check", "tf_keras.optimizers.legacy:Nadam", "--algorithm", "nadam-legacy", "--profile", "ci")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "nadam-legacy" in out.stdout


class NumpyAdamAdapter:
    """A port that is not a Keras-style class, plugged in through the adapter protocol."""

    algorithms = ("adam",)
    dtypes = ("float32",)

    def start(self, algorithm, config, variables, dtype, exclude):
        self.c = config
        self.names = [n for n, _ in variables]
        self.theta = [np.array(v, dtype=np.float32) for _, v in variables]
        self.m = [np.zeros_like(v) for v in self.theta]
        self.v = [np.zeros_like(v) for v in self.theta]
        self.t = 0

    def apply(self, grads):
        f = np.float32
        lr, b1, b2, eps = f(self.c["learning_rate"]), self.c["beta_1"], self.c["beta_2"], f(self.c["epsilon"])
        t = f(self.t + 1)
        alpha = lr * np.sqrt(f(1) - f(b2) ** t) / (f(1) - f(b1) ** t)
        for i, g in enumerate(grads):
            if g is None:
                continue
            self.m[i] += (g - self.m[i]) * f(1 - b1)
            self.v[i] += (g * g - self.v[i]) * f(1 - b2)
            self.theta[i] -= (self.m[i] * alpha) / (np.sqrt(self.v[i]) + eps)
        self.t += 1

    def state(self):
        out = {"iterations": self.t}
        for i, n in enumerate(self.names):
            out[f"variables/{n}"] = self.theta[i]
            out[f"momentum/{n}"] = self.m[i]
            out[f"velocity/{n}"] = self.v[i]
        return out


def test_a_port_plugs_in_through_the_adapter_protocol():
    out = _optconf("check", "tests.test_harness:NumpyAdamAdapter", "--profile", "quick",
                   "--checks", "pipeline,one-step", "--backend", "torch")
    # The adapter implements the bare rule: the plain trajectories pass, the pipeline features it lacks fail.
    assert out.returncode == 1, out.stdout + out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("  pipeline/")}
    for passing in ("pipeline/basic", "pipeline/large-hyperparameters", "pipeline/none-gradients"):
        assert "FAIL" not in lines[passing] and "ERROR" not in lines[passing], lines[passing]
    assert "FAIL" in lines["pipeline/weight-decay"]
    assert "FAIL" in lines["pipeline/amsgrad"]
