"""The bundled implementation: certified by the harness, Keras's API, no full-size temporaries."""

import json
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from optimizer_conformance.conformance.cases import inputs
from optimizer_conformance.fast_optimizers import Adam, AdamW, LegacyNadam, Nadam, init, kernels, update
from optimizer_conformance.reference import run

from tests.conftest import OPTCONF, requires


def _optconf(*args, timeout=900):
    return subprocess.run([*OPTCONF, *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("adapter", ["NumpyAdapter", pytest.param("TorchAdapter", marks=requires("torch"))])
def test_optconf_check_passes_every_check_for_every_algorithm(adapter):
    out = _optconf("check", f"optimizer_conformance.fast_optimizers.conformance:{adapter}", "--backend", "torch",
                   "--profile", "ci")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    for algorithm in ("adam", "adamw", "nadam", "nadam-legacy", "adamax", "lamb", "schedule-free-adamw"):
        assert f"\n{algorithm}: " in out.stdout
    assert "float32" in out.stdout and "float64" in out.stdout


@requires("numba")
def test_the_fused_kernel_is_used_for_numpy_float32():
    w = np.ones(8, np.float32)
    g = np.full(8, 0.5, np.float32)
    assert kernels.numba_suits(w, g, np.zeros_like(w), np.zeros_like(w), None, None)
    assert not kernels.numba_suits(w, g.astype(np.float64))


@requires("torch")
def test_numpy_fused_and_torch_array_api_paths_agree_inside_the_budget():
    import torch

    rng = inputs.generator("fast-optimizers/paths")
    theta = inputs.held(inputs.centered(rng, (300,), 1), "float32").astype(np.float32)
    grads = [inputs.held(inputs.centered(rng, (300,), 1), "float32").astype(np.float32) for _ in range(4)]
    config = {"learning_rate": 0.05, "amsgrad": True, "clipnorm": 1.0, "use_ema": True}
    w_np, w_t = theta.copy(), torch.tensor(theta)
    a, b = Adam(**config), Adam(**config)
    for g in grads:
        a.apply([g], [w_np])
        b.apply([torch.tensor(g)], [w_t])
    q = run("adam", config, {"w": theta}, [[g] for g in grads]).state()["variables/w"]
    assert q.ratios(w_np).max() <= 1 and q.ratios(w_t.numpy()).max() <= 1


def test_names_follow_keras_rules():
    # name=None: the snake-cased class name, made unique as Keras makes it (the API checks compare with Keras).
    first, second = AdamW(), AdamW()
    assert re.fullmatch(r"adam_w(_\d+)?", first.name) and second.name != first.name
    assert Adam(name="mine").get_config()["name"] == "mine"


def test_get_config_round_trips_and_validates_like_keras():
    opt = Adam(learning_rate=0.01, amsgrad=True, clipnorm=1.0)
    config = opt.get_config()
    assert config["amsgrad"] is True and config["clipnorm"] == 1.0 and config["learning_rate"] == 0.01
    assert Adam.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="Only one of"):
        Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(weight_decay=None)
    with pytest.raises(ValueError, match="not recognized"):
        Adam(momentum=0.9)


def test_pipeline_api_iterations_exclusion_finalize_and_store():
    w, b = np.ones(4, np.float32), np.ones(2, np.float32)
    opt = AdamW(learning_rate=0.1, weight_decay=0.5, gradient_accumulation_steps=2, use_ema=True)
    opt.build([w, b], names=["kernel", "bias"])
    opt.exclude_from_weight_decay(var_names=["bias"])
    g = [np.full(4, 0.5, np.float32), np.zeros(2, np.float32)]
    assert opt.apply_gradients(zip(g, [w, b])) == 0
    assert np.all(w == 1)
    assert opt.apply_gradients(zip(g, [w, b])) == 1
    assert np.all(w < 1) and np.all(b == 1)  # the bias is excluded and its gradient is zero
    store = {}
    opt.save_own_variables(store)
    other = AdamW(learning_rate=0.1, weight_decay=0.5, gradient_accumulation_steps=2, use_ema=True)
    other.build([w.copy(), b.copy()], names=["kernel", "bias"])
    other.load_own_variables(store)
    assert other.iterations == opt.iterations
    assert all(np.array_equal(x, y) for x, y in zip(other.slots["momentum"], opt.slots["momentum"]))
    opt.finalize_variable_values()
    assert np.array_equal(w, opt.slots["average"][0])


def test_functional_form_matches_the_class():
    theta = np.linspace(-1, 1, 6).astype(np.float32)
    g = np.full(6, 0.25, np.float32)
    params, state = update(init("nadam", [theta.copy()], learning_rate=0.01), [g], [theta.copy()])
    state.optimizer  # noqa: B018
    a = theta.copy()
    Nadam(learning_rate=0.01).apply([g], [a])
    assert state.iterations == 1


def test_legacy_nadam_takes_the_schedule_decay():
    assert LegacyNadam(schedule_decay=0.01).get_config()["decay"] == 0.01


@pytest.mark.parametrize("path", ["fused", "array-api"])
def test_a_step_allocates_no_full_size_temporary(path, monkeypatch):
    n = 1 << 22
    rng = np.random.default_rng(0)
    w = rng.normal(size=n).astype(np.float32)
    g = rng.normal(size=n).astype(np.float32)
    if path == "array-api":
        monkeypatch.setattr(kernels, "numba_suits", lambda *a: False)
    elif not kernels.numba_available():
        pytest.skip("numba is not installed")
    opt = Adam(learning_rate=0.01, amsgrad=True, use_ema=True, clipnorm=1.0)
    opt.apply([g], [w])  # build and warm up
    tracemalloc.start()
    opt.apply([g], [w])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Bounded scratch: a few chunks' worth of float64, independent of the variable's size (16 MiB here).
    bound = 8 * kernels.CHUNK * 8
    assert peak < bound < w.nbytes, f"peak {peak} bytes for a {w.nbytes}-byte variable"


@requires("keras")
def test_the_store_layout_is_keras_s():
    code = (
        "import json, keras, numpy as np\n"
        "o = keras.optimizers.Nadam(use_ema=True, gradient_accumulation_steps=2)\n"
        "a = keras.Variable(np.zeros(2, 'float32'), name='a')\n"
        "o.build([a, keras.Variable(np.zeros(3, 'float32'), name='b')])\n"
        "print(json.dumps([v.path.split('/')[-1] for v in o.variables]))\n"
    )
    import os

    env = dict(os.environ, KERAS_BACKEND="torch")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    keras_names = json.loads(out.stdout.strip().splitlines()[-1])
    opt = Nadam(use_ema=True, gradient_accumulation_steps=2)
    opt.build([np.zeros(2, np.float32), np.zeros(3, np.float32)], names=["a", "b"])
    ours = [kind if i is None else f"{'ab'[i]}_{kind}" for kind, i in opt._layout()]
    translated = [{"iterations": "iteration", "u_product": "variable"}.get(k, k) for k in ours]
    assert translated == keras_names


# -- bad input: validated before any kernel runs ----------------------------------------------------------

def test_a_gradient_of_another_shape_is_rejected_naming_the_variable_and_both_shapes():
    variable = np.zeros(50_000_000, np.float32)  # a 1-element gradient was once read 50M elements past its end
    optimizer = Adam()
    optimizer.build([variable], names=["embedding"])
    with pytest.raises(ValueError, match=r"'embedding' has shape \(1,\); the variable has shape \(50000000,\)"):
        optimizer.apply([np.ones(1, np.float32)])
    assert not variable.any() and optimizer.iterations == 0


@pytest.mark.parametrize("view", ["transposed", "strided", "offset"])
def test_a_variable_that_is_a_view_is_updated_where_it_lies_as_a_contiguous_copy_would_be(view):
    buffer = (np.arange(1, 1 + 2 * 5 * 9, dtype=np.float32) / 7).reshape(10, 9)
    variable = {"transposed": buffer[:4, :3].T, "strided": buffer[1::2, ::3], "offset": buffer[2:6, 1:4]}[view]
    outside = buffer.copy()
    outside[np.nonzero(np.isin(buffer, variable))] = np.nan
    twin, before = np.ascontiguousarray(variable), variable.copy()
    for theta in (variable, twin):
        optimizer = Adam(learning_rate=0.1, use_ema=True)
        optimizer.build([theta])
        for _ in range(2):
            optimizer.apply([np.full(theta.shape, 0.5, np.float32)])
    np.testing.assert_array_equal(variable, twin)
    assert not np.array_equal(variable, before)
    kept = ~np.isnan(outside)
    np.testing.assert_array_equal(buffer[kept], outside[kept])  # nothing written outside the view


def test_read_only_and_non_floating_variables_are_rejected():
    with pytest.raises(TypeError, match="dtype int32 is not floating"):
        Adam().build([np.zeros(3, np.int32)])
    read_only = np.zeros(3, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        Adam().build([read_only])


_LAYOUTS = ("contiguous", "transposed", "strided", "read-only")


def _array(shape, dtype, layout):
    base = (np.arange(1, 1 + 2 * int(np.prod(shape, dtype=int)) + 4, dtype=np.float64) / 7).astype(dtype)
    if layout == "strided":
        return base[: 2 * int(np.prod(shape, dtype=int)): 2].reshape(shape) if shape else base[0:1].reshape(())
    a = base[: int(np.prod(shape, dtype=int))].reshape(shape).copy()
    if layout == "transposed":
        a = np.array(a, order="F")
    if layout == "read-only":
        a.flags.writeable = False
    return a


@pytest.mark.parametrize("optimizer_class", [Adam, AdamW, Nadam, LegacyNadam])
def test_no_input_makes_the_optimizer_read_or_write_out_of_bounds(optimizer_class):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    shapes = st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple)
    dtypes = st.sampled_from(["float32", "float64", "float16", "int32", "bool"])

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(shapes, shapes, dtypes, dtypes, st.sampled_from(_LAYOUTS), st.sampled_from(_LAYOUTS))
    def property_(variable_shape, gradient_shape, variable_dtype, gradient_dtype, variable_layout, gradient_layout):
        variable = _array(variable_shape, variable_dtype, variable_layout)
        gradient = _array(gradient_shape, gradient_dtype, gradient_layout)
        before = variable.copy()
        valid = (variable_shape == gradient_shape and variable_dtype.startswith("float")
                 and gradient_dtype.startswith("float") and variable.flags.writeable)
        optimizer = optimizer_class(learning_rate=0.1)
        try:
            optimizer.build([variable])
            optimizer.apply([gradient])
        except (ValueError, TypeError) as error:
            assert not valid, f"rejected a valid input: {error}"
            assert str(error).startswith(("variable ", "gradient for variable ")), str(error)
            np.testing.assert_array_equal(variable, before)
            return
        assert valid, "accepted an invalid input"
        assert np.isfinite(variable.astype(np.float64)).all() and not np.array_equal(variable, before)

    property_()


def test_the_bundled_implementation_stands_alone_without_the_oracle():
    """No import of the oracle (a bug in shared code could never be caught), and NumPy alone suffices."""
    script = r'''
import importlib.abc, sys
BLOCKED = ("optimizer_conformance.reference", "optimizer_conformance.conformance", "mpmath", "gmpy2",
           "array_api_compat", "numba", "keras", "jsonschema")
def blocked(name):
    return any(name == b or name.startswith(b + ".") for b in BLOCKED)
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if blocked(name):
            raise ImportError(f"blocked: {name}")
sys.meta_path.insert(0, Block())
import numpy as np
from optimizer_conformance.fast_optimizers import Adam, AdamW, LegacyNadam, Nadam
schedule = {"module": "keras.optimizers.schedules", "class_name": "CosineDecay",
            "config": {"initial_learning_rate": 0.1, "decay_steps": 4}, "registered_name": None}
for cls in (Adam, AdamW, Nadam, LegacyNadam):
    opt = cls.from_config({**cls().get_config(), "learning_rate": schedule})
    v = np.ones(4, np.float32)
    opt.build([v])
    for _ in range(3):
        opt.apply([np.full(4, 0.5, np.float32)])
    assert np.isfinite(v).all() and (v < 1).all(), (cls, v)
print("alone", sorted(m for m in sys.modules if blocked(m)))
'''
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "alone []"
