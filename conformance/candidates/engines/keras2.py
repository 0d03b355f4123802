"""The engine of tf_keras's Keras 2 optimizers (``tf_keras.optimizers.Adam``, ...): Keras 3's ancestors, run as
Keras 2 users run them, never as Keras 3 classes: ``tf.Variable`` weights, ``apply_gradients(zip(grads, vars))``,
schedules deserialized by tf_keras, the state read from the same attributes Keras 3 kept (``_momentums``, ...).

Keras 2's optimizers have clipping, decoupled weight decay with its exclusions, EMA and sparse gradients; they have
no gradient accumulation, no loss_scale_factor, no Keras 3 LossScaleOptimizer and no ``overwrite_with_gradient``: a
trajectory that uses one is not applicable, with that reason.  A constraint is the variable's (``tf.Variable(...,
constraint=...)``, as a tf_keras layer makes it), which the optimizer applies after its update.
"""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.channel import announce
from optimizer_conformance.conformance.candidates.engines.base import claimed_algorithms, decode_in, resolve, versions
from optimizer_conformance.conformance.model import encode, row_slices
from optimizer_conformance.reference.rules import KERAS_SCALARS, KERAS_SLOTS

# What a trajectory may use that Keras 2's optimizers do not have, and the spec's entry or configuration key.
LACKS = {"gradient_accumulation_steps": "gradient accumulation", "loss_scale_factor": "loss_scale_factor",
         "loss_scale_optimizer": "Keras 3's LossScaleOptimizer (Keras 2 has its own mixed-precision wrapper)",
         "overwrite_with_gradient": "overwrite_with_gradient"}


def is_keras2(obj: object) -> bool:
    """A tf_keras (Keras 2) optimizer class of the new API, or a subclass of one (not a legacy one)."""
    mro = getattr(obj, "__mro__", None) or ()
    return any((c.__module__ or "").startswith("tf_keras") and c.__name__ == "Optimizer"
               and ".legacy" not in c.__module__ for c in mro)


def tf_variables(spec: dict, dtype: str) -> list:
    """The spec's variables as ``tf.Variable``, each with its serialized constraint made by tf_keras, as a tf_keras
    layer's ``add_weight`` gives it."""
    import tensorflow as tf
    import tf_keras

    constraints = {int(i): tf_keras.constraints.deserialize(c) for i, c in (spec.get("constraints") or {}).items()}
    return [tf.Variable(decode_in(values, shape, dtype), name=name, constraint=constraints.get(i))
            for i, (name, shape, values) in enumerate(spec["variables"])]


class Keras2Engine:
    """tf_keras's Keras 2 optimizers, on ``tf.Variable`` with ``apply_gradients``."""

    def __init__(self, target: str) -> None:
        import tensorflow as tf
        import tf_keras

        self.tf, self.tf_keras, self.target = tf, tf_keras, target
        self.obj = resolve(target)

    def describe(self) -> dict:
        return {"name": self.target, "algorithms": list(claimed_algorithms(self.obj)),
                "dtypes": ["float32", "float64", "float16", "bfloat16"], "versions": versions(),
                "backend": "tf_keras", "library": "tf_keras", "floatx": "float32"}

    def api_subject(self, algorithm):
        return None, "the API checks compare with Keras 3's classes; Keras 2's optimizers have another API"

    def reference_rejects(self, spec: dict) -> str | None:
        if spec.get("variable_dtypes"):
            return "variables of several dtypes are run on Keras 3's classes only (not yet on Keras 2's)"
        for key, what in LACKS.items():
            if spec.get(key) or spec["config"].get(key):
                return f"Keras 2's optimizers have no {what}"
        return None

    def run(self, spec) -> list[dict]:
        dtype = spec["dtype"]
        config = {k: v for k, v in spec["config"].items() if v is not None and k not in LACKS}
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = self.tf_keras.optimizers.schedules.deserialize(config["learning_rate"])
        variables = tf_variables(spec, dtype)
        names = [name for name, _, _ in spec["variables"]]
        labels = [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]
        announce("the constructor")
        opt = self.obj(**config)
        exclude = spec.get("exclude") or {}
        if exclude:  # Keras 2 takes exclusions before it is built only
            var_list = [variables[i] for i in exclude.get("var_list", [])]
            opt.exclude_from_weight_decay(var_list=var_list or None, var_names=exclude.get("var_names"))
        announce("build")
        opt.build(variables)
        sparse, duplicate = set(spec.get("sparse_gradients") or ()), bool(spec.get("sparse_duplicate_rows"))
        states = []
        for k, step in enumerate(spec["gradients"], start=1):
            pairs = [(self._gradient(g, v, dtype, i in sparse, duplicate), v)
                     for i, (g, v) in enumerate(zip(step, variables)) if g is not None]
            announce("apply_gradients", k)
            opt.apply_gradients(pairs)
            states.append(self._state(opt, variables, labels))
        if spec.get("finalize"):
            announce("finalize_variable_values")
            opt.finalize_variable_values(variables)
            states.append(self._state(opt, variables, labels))
        return states

    def _gradient(self, values, variable, dtype: str, sparse: bool, duplicate: bool = False):
        dense = decode_in(values, variable.shape, dtype)
        if not sparse:
            return self.tf.constant(dense)
        rows, slices = row_slices(dense, duplicate)
        return self.tf.IndexedSlices(self.tf.constant(slices), self.tf.constant(rows, dtype="int64"),
                                     self.tf.constant(dense.shape, dtype="int64"))

    def _state(self, opt, variables, labels) -> dict[str, list[str]]:
        out = {f"variables/{label}": encode(v.numpy()) for label, v in zip(labels, variables)}
        for attribute, slot, switch in KERAS_SLOTS:  # Keras 3 kept Keras 2's attribute names
            values = getattr(opt, attribute, None) if switch is None or getattr(opt, switch, None) else None
            if values and len(values) == len(labels):
                for label, v in zip(labels, values):
                    if v is not None:
                        out[f"{slot}/{label}"] = encode(v.numpy())
        for attribute, name in KERAS_SCALARS.items():
            if getattr(opt, attribute, None) is not None:
                out[name] = encode(getattr(opt, attribute).numpy())
        out["iterations"] = [float(int(opt.iterations.numpy())).hex()]
        return out
