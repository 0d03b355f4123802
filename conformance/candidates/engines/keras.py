"""The engine of Keras 3 optimizers: real ones (``target`` None) or a class or factory following their API."""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.channel import announce
from optimizer_conformance.conformance.candidates.engines.base import (
    ALL_DTYPES,
    claimed_algorithms,
    decode_in,
    resolve,
    versions,
)
from optimizer_conformance.conformance.checks.api.bridge import (
    KERAS_CLASSES,
    Subject,
    keras_read,
    keras_rejects,
    keras_subject,
    keras_tensor,
    keras_variable,
)
from optimizer_conformance.conformance.model import encode


class KerasEngine:
    """Keras 3 optimizers: real ones (``target=None``) or a class/factory following their API."""

    def __init__(self, target=None, compile="eager"):
        import keras

        self.keras = keras
        self.target = target
        self.obj = resolve(target) if target else None
        self.compile = compile

    def describe(self) -> dict:
        backend = self.keras.backend.backend()
        dtypes = ALL_DTYPES if backend != "torch" else ALL_DTYPES[:3]
        algorithms = tuple(KERAS_CLASSES) if self.obj is None else claimed_algorithms(self.obj)
        return {"name": self.target or f"keras ({backend})", "algorithms": list(algorithms), "dtypes": list(dtypes),
                "versions": versions(), "backend": backend, "compile": self.compile}

    def make(self, algorithm, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = self.keras.optimizers.schedules.deserialize(config["learning_rate"])
        if self.obj is None:
            return getattr(self.keras.optimizers, KERAS_CLASSES[algorithm])(**config)
        if isinstance(self.obj, type):
            return self.obj(**config)
        return self.obj(algorithm, config)

    def api_subject(self, algorithm) -> tuple[Subject | None, str | None]:
        if self.obj is None:
            return keras_subject(algorithm), None
        if isinstance(self.obj, type):
            return Subject(self.target, self.obj, lambda kwargs: self.obj(**kwargs), keras_variable, keras_read,
                           keras_tensor), None
        return Subject(self.target, None, lambda kwargs: self.obj(algorithm, kwargs), keras_variable,
                       keras_read, keras_tensor), None

    def reference_rejects(self, spec: dict) -> str | None:
        """Why the Keras release here, the reference, refuses the spec's configuration (then it does not apply)."""
        return keras_rejects(spec["algorithm"], spec["config"])

    def run(self, spec) -> list[dict]:
        keras, dtype = self.keras, spec["dtype"]
        variables = [keras.Variable(decode_in(values, shape, dtype), name=name, dtype=dtype)
                     for name, shape, values in spec["variables"]]
        names = [name for name, _, _ in spec["variables"]]
        labels = [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]
        announce("the constructor")
        opt = self.make(spec["algorithm"], spec["config"])
        if hasattr(opt, "build"):
            announce("build")
            opt.build(variables)
        exclude = spec.get("exclude") or {}
        if exclude:
            var_list = [variables[i] for i in exclude.get("var_list", [])]
            opt.exclude_from_weight_decay(var_list=var_list or None, var_names=exclude.get("var_names"))
        apply = self._apply_fn(opt, variables)
        states = []
        for k, step in enumerate(spec["gradients"], start=1):
            grads = [None if g is None else keras.ops.convert_to_tensor(decode_in(g, v.shape, dtype))
                     for g, v in zip(step, variables)]
            announce("apply", k)
            apply(grads)
            states.append(self._state(opt, variables, labels))
        if spec.get("finalize"):
            announce("finalize_variable_values")
            opt.finalize_variable_values(variables)
            states.append(self._state(opt, variables, labels))
        return states

    def _apply_fn(self, opt, variables):
        mode, backend = self.compile, self.keras.backend.backend()
        if mode == "eager" and not hasattr(opt, "apply"):
            # A Keras-style class that only offers apply_gradients(pairs).
            return lambda grads: opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        if mode == "eager":
            return lambda grads: opt.apply(grads, variables)
        if mode in ("function", "jit") and backend == "tensorflow":
            import tensorflow as tf

            return tf.function(lambda grads: opt.apply(grads, variables), jit_compile=(mode == "jit"))
        if mode == "jit" and backend == "jax":
            import jax

            stateless = jax.jit(opt.stateless_apply)

            def apply(grads):
                if any(g is None for g in grads):
                    return opt.apply(grads, variables)
                new_vars, new_opt = stateless([v.value for v in opt.variables], grads, [v.value for v in variables])
                for v, x in zip(variables, new_vars):
                    v.assign(x)
                for v, x in zip(opt.variables, new_opt):
                    v.assign(x)

            return apply
        raise ValueError(f"compile mode {mode!r} is not available on the {backend} backend")

    def _state(self, opt, variables, labels) -> dict[str, list[str]]:
        to_np = self.keras.ops.convert_to_numpy
        out = {f"variables/{label}": encode(to_np(v.value)) for label, v in zip(labels, variables)}
        slots = {
            "momentum": getattr(opt, "_momentums", None),
            "velocity": getattr(opt, "_velocities", None),
            "velocity_hat": getattr(opt, "_velocity_hats", None) if getattr(opt, "amsgrad", False) else None,
            "average": getattr(opt, "_model_variables_moving_average", None) if getattr(opt, "use_ema", False)
            else None,
            "gradient_accumulator": getattr(opt, "_accumulated_gradients", None)
            if getattr(opt, "gradient_accumulation_steps", None) else None,
        }
        for slot, values in slots.items():
            if values and len(values) == len(labels) and all(v is not None for v in values):
                for label, v in zip(labels, values):
                    out[f"{slot}/{label}"] = encode(to_np(v.value))
        if getattr(opt, "_u_product", None) is not None:
            out["u_product"] = encode(to_np(opt._u_product.value))
        iterations = opt.iterations
        out["iterations"] = [float(int(to_np(getattr(iterations, "value", iterations)))).hex()]
        return out
