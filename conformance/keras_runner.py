"""Run real Keras 3 on a trajectory and record its full state after every ``apply``.

Keras picks its backend once per process, so this module is run as a
subprocess: ``KERAS_BACKEND=jax python -m conformance.keras_runner < spec.json``.
The spec and the result are JSON; floats travel as ``float.hex`` strings so
nothing is lost between processes.

Spec: ``{"algorithm", "config", "dtype", "variables": [[name, shape, [hex...]]],
"gradients": [[[hex...] or null per variable] per step], "exclude": {...},
"compile": "eager" | "function" | "jit", "finalize": bool}``.
A list of specs gives a list of results (one process start for many runs).
Result: ``{"backend", "keras_version", "states": [{quantity: [hex...]}]}``
with quantity names as in :meth:`reference.ReferenceOptimizer.state`.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

CLASSES = {"adam": "Adam", "adamw": "AdamW", "nadam": "Nadam"}


def _decode(values: list[str], shape, dtype: str) -> np.ndarray:
    from reference.formats import numpy_dtype

    return np.array([float.fromhex(v) for v in values], dtype=np.float64).reshape(shape).astype(numpy_dtype(dtype))


def _encode(array) -> list[str]:
    return [float(x).hex() for x in np.asarray(array, dtype=np.float64).reshape(-1)]


def _make_optimizer(keras, algorithm: str, config: dict):
    config = dict(config)
    lr = config.get("learning_rate")
    if isinstance(lr, dict):
        config["learning_rate"] = keras.optimizers.schedules.deserialize(lr)
    return getattr(keras.optimizers, CLASSES[algorithm])(**config)


def _slots(opt) -> dict[str, list]:
    slots = {
        "momentum": getattr(opt, "_momentums", None),
        "velocity": getattr(opt, "_velocities", None),
        "velocity_hat": getattr(opt, "_velocity_hats", None) if getattr(opt, "amsgrad", False) else None,
        "average": getattr(opt, "_model_variables_moving_average", None) if opt.use_ema else None,
        "gradient_accumulator": getattr(opt, "_accumulated_gradients", None)
        if opt.gradient_accumulation_steps
        else None,
    }
    return {k: v for k, v in slots.items() if v}


def run(spec: dict) -> dict:
    import keras

    dtype = spec["dtype"]
    variables = [
        keras.Variable(_decode(values, shape, dtype), name=name, dtype=dtype)
        for name, shape, values in spec["variables"]
    ]
    names = [name for name, _, _ in spec["variables"]]
    labels = [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]
    opt = _make_optimizer(keras, spec["algorithm"], spec["config"])
    opt.build(variables)
    exclude = spec.get("exclude") or {}
    if exclude:
        var_list = [variables[i] for i in exclude.get("var_list", [])]
        opt.exclude_from_weight_decay(var_list=var_list or None, var_names=exclude.get("var_names"))
    apply = _compiled_apply(keras, opt, variables, spec.get("compile", "eager"))
    states = []
    for step_grads in spec["gradients"]:
        grads = [
            None if g is None else keras.ops.convert_to_tensor(_decode(g, v.shape, dtype))
            for g, v in zip(step_grads, variables)
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            apply(grads)
        states.append(_state(keras, opt, variables, labels))
    if spec.get("finalize"):
        opt.finalize_variable_values(variables)
        states.append(_state(keras, opt, variables, labels))
    return {"backend": keras.backend.backend(), "keras_version": keras.__version__, "states": states}


def _compiled_apply(keras, opt, variables, mode: str):
    if mode == "eager":
        return lambda grads: opt.apply(grads, variables)
    backend = keras.backend.backend()
    if mode in ("function", "jit") and backend == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda grads: opt.apply(grads, variables), jit_compile=(mode == "jit"))
        return fn
    if mode == "jit" and backend == "jax":
        import jax

        stateless = jax.jit(opt.stateless_apply)

        def apply(grads):
            opt_values = [v.value for v in opt.variables]
            var_values = [v.value for v in variables]
            new_vars, new_opt = stateless(opt_values, grads, var_values)
            for v, x in zip(variables, new_vars):
                v.assign(x)
            for v, x in zip(opt.variables, new_opt):
                v.assign(x)

        return apply
    raise ValueError(f"compile: {mode!r} is not available on the {backend} backend")


def _state(keras, opt, variables, labels) -> dict[str, list[str]]:
    to_np = keras.ops.convert_to_numpy
    out = {f"variables/{label}": _encode(to_np(v.value)) for label, v in zip(labels, variables)}
    for slot, values in _slots(opt).items():
        for label, v in zip(labels, values):
            out[f"{slot}/{label}"] = _encode(to_np(v.value))
    if hasattr(opt, "_u_product"):
        out["u_product"] = _encode(to_np(opt._u_product.value))
    iterations = opt.iterations.value if hasattr(opt.iterations, "value") else opt.iterations
    out["iterations"] = [float(int(to_np(iterations))).hex()]
    return out


def main() -> int:
    spec = json.load(sys.stdin)
    json.dump([run(s) for s in spec] if isinstance(spec, list) else run(spec), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
