"""``optconf check`` on real implementations: Keras 3 on each backend and the tf_keras legacy Nadam pass."""

import json
import subprocess

import numpy as np
import pytest

from tests.conftest import KERAS_UPSTREAM_BUGS, OPTCONF, SCHEDULE_FREE, expected_upstream_bugs, requires


def _optconf(*args, timeout=900):
    return subprocess.run([*OPTCONF, *args], capture_output=True, text=True,
                          timeout=timeout)



@pytest.mark.keras
@pytest.mark.parametrize("algorithms", [("adam", "adamw", "nadam"), ("adamax", "lamb", "schedule-free-adamw")],
                         ids=lambda a: "-".join(a))
@pytest.mark.parametrize("backend", [pytest.param(b, marks=requires("keras", b))
                                     for b in ("tensorflow", "jax", "torch")])
def test_real_keras_is_conformant_with_the_ci_profile(backend, algorithms, tmp_path):
    """Every check passes, but the catalogued upstream bugs of the installed release, each an expected failure
    diagnosed with exactly its id; one that no longer shows is stale.  No case is removed or skipped for it."""
    report = tmp_path / "report.json"
    # JAX's eager mode compiles every primitive for each new shape and dtype, and TensorFlow's eager apply costs about
    # 22 ms a call: their runs take the quick profile (every check and case, fewer steps and examples) to keep CI
    # under its budget; torch's takes the ci profile.
    profile = "quick" if backend in ("jax", "tensorflow") else "ci"
    out = _optconf("check", "keras", "--backend", backend, "--algorithm", ",".join(algorithms), "--profile", profile,
                   "--json", str(report), timeout=1500)
    document = json.loads(report.read_text())
    checks = document["checks"]
    context = out.stdout[-6000:] + out.stderr[-2000:]
    assert not [c for c in checks if c["error"]], context
    assert not [c for c in checks if c["verdict"] == "fail"], context
    assert out.returncode == 0 and document["conformant"], context
    seen = set()
    for c in checks:
        if c["verdict"] == "known upstream bug":
            assert c["known_upstream_bug"] == c["diagnosis"], (c["check"], c["dtype"], c["diagnosis"])
            ids = set(c["diagnosis"].split(" + "))  # several bugs may meet in one trajectory
            assert ids <= KERAS_UPSTREAM_BUGS[backend], (c["check"], c["dtype"], c["diagnosis"])
            assert SCHEDULE_FREE not in ids or c["algorithm"] == "schedule-free-adamw", c["check"]
            seen |= ids
    assert seen == expected_upstream_bugs(backend, algorithms), seen  # one that no longer shows is stale
    assert document["summary"]["known_upstream_bugs"] == sum(c["verdict"] == "known upstream bug" for c in checks)
    assert {c["algorithm"] for c in checks} == set(algorithms)
    dtypes = {c["dtype"] for c in checks} - {None}
    assert dtypes == ({"float32", "float64", "float16", "bfloat16"} if backend != "torch"
                      else {"float32", "float64", "float16"})
    families = {c["check"].split("/")[0] for c in checks}
    scale = {"scale"} if profile == "ci" else set()  # tensors of a million elements: the ci profile's
    assert families == {"pipeline", "one-step", "fixtures", "explore", "api"} | scale
    # Every API/config check applies on every backend, except stateless_apply on TensorFlow, which Keras itself
    # does not support there, and resuming where Keras itself departs from the oracle (no fair partner).
    from optimizer_conformance.conformance.checks.api import CHECKS

    for algorithm in algorithms:
        api = {c["check"]: c for c in checks if c["algorithm"] == algorithm and c["dtype"] is None}
        assert set(api) == {f"api/{name}" for name in CHECKS}
        skipped = {name for name, c in api.items() if c["not_applicable"]}
        expected = {"api/stateless-apply"} if backend == "tensorflow" else set()
        if backend == "jax":  # Keras's LossScaleOptimizer is no fair reference there (see the README)
            expected |= {"api/loss-scale-optimizer"}
        if algorithm == "schedule-free-adamw" and SCHEDULE_FREE in KERAS_UPSTREAM_BUGS[backend]:
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


class NumpyAdamLackingEma(NumpyAdamAdapter):
    """The same port, saying what it lacks."""

    conformance_lacks = {"use_ema": "no moving averages in this port"}


class NumpyAdamMisspeltLack(NumpyAdamAdapter):
    conformance_lacks = {"use_emma": "a typo"}


def test_a_port_that_ignores_use_ema_fails_the_ema_checks_and_one_that_says_so_is_not_applicable(tmp_path):
    args = ("--profile", "quick", "--checks", "pipeline,fixtures", "--backend", "torch")
    out = _optconf("check", "tests.test_harness:NumpyAdamAdapter", *args)
    # It keeps its weights right (no overwrite), but reports no averages: the EMA was not judged.
    assert out.returncode == 1, out.stdout[-3000:]
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.startswith("  pipeline/")}
    assert "ERROR" in lines["pipeline/ema"], lines["pipeline/ema"]
    assert "the EMA was not judged: no average/… reported" in out.stdout
    report = tmp_path / "declared.json"
    _optconf("check", "tests.test_harness:NumpyAdamLackingEma", *args, "--json", str(report))
    checks = {c["check"]: c for c in json.loads(report.read_text())["checks"]}
    for check in ("pipeline/ema", "pipeline/ema-overwrite-finalize", "pipeline/accumulation-ema"):
        assert checks[check]["verdict"] == "not applicable", checks[check]
        assert "the candidate declares it lacks use_ema: no moving averages in this port" in \
            checks[check]["not_applicable"]
    misspelt = _optconf("check", "tests.test_harness:NumpyAdamMisspeltLack", "--profile", "quick")
    assert misspelt.returncode == 2 and "conformance_lacks names 'use_emma'" in misspelt.stderr, misspelt.stderr
