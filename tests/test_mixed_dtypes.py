"""Variables of several dtypes in one optimizer, in the oracle: each held and updated in its own dtype, global
clipping across them in the widest, and bad input named."""

import numpy as np
import pytest
from optimizer_conformance.conformance.checks.compare import oracle_states
from optimizer_conformance.conformance.model import Spec, make_spec
from optimizer_conformance.reference import ReferenceOptimizer

KERNEL = np.array([[0.5, -1.25], [0.75, 2.0]])
BIAS = np.array([0.125, -0.5, 0.25])
GRADIENTS = [[KERNEL * 0.1 * k, BIAS * -0.2 * k] for k in (1, 2, 3)]


def _states(config, dtype, variable_dtypes=None):
    spec = make_spec("adam", config, dtype, [("kernel", KERNEL), ("bias", BIAS)], GRADIENTS,
                     variable_dtypes=variable_dtypes)
    return oracle_states(spec)


def _same(a, b):
    return [float(x) for x in a.exact] == [float(x) for x in b.exact] and np.array_equal(a.budget, b.budget)


def test_without_global_clipping_each_variable_steps_as_it_would_in_its_own_dtype_alone():
    config = {"learning_rate": 0.01, "weight_decay": 0.1, "use_ema": True, "ema_momentum": 0.5}
    mixed = _states(config, "float32", {1: "float16"})
    alone32, alone16 = _states(config, "float32"), _states(config, "float16")
    for step, state in enumerate(mixed):
        for name in ("variables/kernel", "momentum/kernel", "velocity/kernel", "average/kernel"):
            assert _same(state[name], alone32[step][name]), (step, name)
        for name in ("variables/bias", "momentum/bias", "velocity/bias", "average/bias"):
            assert _same(state[name], alone16[step][name]), (step, name)


def test_global_clipping_takes_one_norm_over_both_dtypes_formed_in_the_wider():
    config = {"learning_rate": 0.01, "global_clipnorm": 0.01}
    mixed = _states(config, "float32", {1: "float16"})
    alone = _states(config, "float32")
    # The same exact trajectory as one float32 optimizer (one norm over every variable) ...
    assert [float(x) for x in mixed[-1]["variables/kernel"].exact] == [
        float(x) for x in alone[-1]["variables/kernel"].exact]
    # ... with the float16 bias's budgets wider: its gradient is cast back to float16 after the scale.
    assert np.all(mixed[-1]["variables/bias"].budget > alone[-1]["variables/bias"].budget)


@pytest.mark.parametrize("variable_dtypes, message", [
    ({5: "float16"}, r"variable_dtypes: 5 is not a variable index \(0 to 1\)"),
    ({1: "float8"}, r"variable_dtypes: dtype must be one of \['bfloat16', 'float16', 'float32', 'float64'\]; "
                    "got 'float8'"),
])
def test_a_bad_variable_dtype_is_one_line_naming_it(variable_dtypes, message):
    opt = ReferenceOptimizer("adam", {"learning_rate": 0.01})
    with pytest.raises(ValueError, match=message):
        opt.build([("kernel", KERNEL), ("bias", BIAS)], variable_dtypes=variable_dtypes)


def test_a_spec_s_variable_dtypes_must_be_an_object():
    spec = make_spec("adam", {}, "float32", [("kernel", KERNEL)], [[KERNEL]])
    with pytest.raises(ValueError, match="spec: variable_dtypes must be a dict; got list"):
        Spec.from_json({**spec, "variable_dtypes": ["float16"]})
    assert "variable_dtypes" not in spec  # written only when used
