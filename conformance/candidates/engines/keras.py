"""The engine of Keras 3 optimizers: real ones (``target`` None) or a class or factory following their API."""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.channel import announce
from optimizer_conformance.conformance.candidates.engines.base import (
    ALL_DTYPES,
    claimed_algorithms,
    declared_lack,
    declared_lacks,
    decode_in,
    resolve,
    versions,
)
from optimizer_conformance.conformance.checks.api.bridge import (
    Subject,
    keras_ignores_variable_options,
    keras_read,
    keras_rejects,
    keras_subject,
    keras_tensor,
    keras_variable,
)
from optimizer_conformance.conformance.model import encode, first_line, row_slices, spec_floatx, variable_dtype
from optimizer_conformance.reference.rules import KERAS_CLASSES, KERAS_SCALARS, KERAS_SLOTS


class KerasEngine:
    """Keras 3 optimizers: real ones (``target=None``) or a class/factory following their API."""

    def __init__(self, target=None, compile="eager"):
        import keras

        modes = {"tensorflow": ("eager", "function", "jit"), "jax": ("eager", "jit"), "torch": ("eager",)}
        accepted = modes.get(keras.backend.backend(), ("eager",))
        if compile not in accepted:
            raise ValueError(f"--compile {compile!r} is not a mode of Keras's {keras.backend.backend()} backend; "
                             f"accepted: {', '.join(accepted)}")
        self.keras = keras
        self.target = target
        self.obj = resolve(target) if target else None
        self.compile = compile
        self._probed: dict[tuple, str | None] = {}

    def describe(self) -> dict:
        declared_lacks(self.obj)  # a misspelt feature is an error at load, never a silent nothing
        backend = self.keras.backend.backend()
        dtypes = ALL_DTYPES if backend != "torch" else ALL_DTYPES[:3]
        # An older release lacks the newer optimizers (Keras 3.0.0 has no Lamb): it claims what it has.
        algorithms = tuple(a for a, name in KERAS_CLASSES.items() if hasattr(self.keras.optimizers, name)) \
            if self.obj is None else claimed_algorithms(self.obj)
        return {"name": self.target or f"keras ({backend})", "algorithms": list(algorithms), "dtypes": list(dtypes),
                "versions": versions(), "backend": backend, "compile": self.compile,
                "library": "keras" if self._runs_on_keras() else None,
                "floatx": getattr(self.obj, "conformance_floatx", None) or self.keras.config.floatx()}

    def _runs_on_keras(self) -> bool:
        """Keras itself, or a class built on Keras's optimizer (it inherits Keras's pipeline and its backend's
        casts, so Keras's own bugs are its too): what the catalogue of upstream bugs applies to."""
        if self.obj is None:
            return True
        bases = (self.keras.optimizers.Optimizer, self.keras.optimizers.LossScaleOptimizer)
        return isinstance(self.obj, type) and issubclass(self.obj, bases)

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
                           keras_tensor, self.loss_scale_class()), None
        return Subject(self.target, None, lambda kwargs: self.obj(algorithm, kwargs), keras_variable,
                       keras_read, keras_tensor, self.loss_scale_class()), None

    def reference_rejects(self, spec: dict) -> str | None:
        """Why the Keras release here, the reference, refuses the spec's configuration (then it does not apply)."""
        return (declared_lack(self.obj, spec) or keras_rejects(spec["algorithm"], spec["config"])
                or keras_ignores_variable_options(spec)
                or self._loss_scale_failure(spec) or self._sparse_failure(spec) or self._mixed_clipping_failure(spec)
                or self._duplicate_rows_failure(spec))

    def _sparse_failure(self, spec: dict) -> str | None:
        if not spec.get("sparse_gradients"):
            return None
        backend = self.keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            return f"Keras's {backend} backend takes no sparse gradients"
        if backend == "jax" and self.compile == "jit":
            # Measured on Keras 3.15.1: stateless_apply under jax.jit raises in bcoo_sum_duplicates (nse unknown).
            return (f"Keras {self.keras.__version__}'s JAX backend cannot take BCOO gradients under jit "
                    "(bcoo_sum_duplicates needs nse there)")
        return None

    def _gradient(self, values, variable, dtype: str, sparse: bool, duplicate: bool = False):
        """A gradient tensor; ``sparse``: the slices of its rows that are not all zero (``tf.IndexedSlices`` on
        TensorFlow, a ``BCOO`` over the first axis on JAX), each row once, or twice (``duplicate``:
        :func:`conformance.model.row_slices`)."""
        dense = decode_in(values, variable.shape, dtype)
        if not sparse:
            return self.keras.ops.convert_to_tensor(dense)
        rows, slices = row_slices(dense, duplicate)
        if self.keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            return tf.IndexedSlices(tf.constant(slices), tf.constant(rows, dtype="int64"),
                                    tf.constant(dense.shape, dtype="int64"))
        import jax.experimental.sparse as jax_sparse
        import jax.numpy as jnp

        return jax_sparse.BCOO((jnp.asarray(slices), jnp.asarray([[r] for r in rows], dtype="int32")),
                               shape=dense.shape)

    def loss_scale_class(self):
        """Keras's ``LossScaleOptimizer``, or the candidate's own port of it: a Keras-API class names it in
        ``conformance_loss_scale_optimizer`` (a class, or an import path); without one, Keras's wraps it."""
        own = getattr(self.obj, "conformance_loss_scale_optimizer", None) if self.obj is not None else None
        if isinstance(own, str):
            own = resolve(own)
        return own or self.keras.optimizers.LossScaleOptimizer

    def _mixed_clipping_failure(self, spec: dict) -> str | None:
        """Keras 3.15's TensorFlow backend raises when global_clipnorm meets variables of several dtypes (the scale,
        in the wider dtype, multiplies a narrower gradient: InvalidArgumentError in Mul); JAX and torch promote.
        Probed once per configuration up to its first update step (the first that clips, under accumulation), so
        a release that fixes it is judged."""
        if not (spec.get("variable_dtypes") and spec["config"].get("global_clipnorm")):
            return None
        first_update = spec["config"].get("gradient_accumulation_steps") or 1
        key = ("mixed-clipping", spec["algorithm"], spec["dtype"], self.compile, str(spec["variable_dtypes"]),
               first_update)
        return self._raises(key, spec, first_update, "when global_clipnorm meets variables of several dtypes (an "
                            "upstream bug: ", ")")

    def _duplicate_rows_failure(self, spec: dict) -> str | None:
        """Keras 3.15's ScheduleFreeAdamW on TensorFlow raises on a float16 or bfloat16 sparse gradient whose rows
        come twice (InvalidArgumentError in GatherV2 at its second step); probed once per rule, dtype and compile
        mode over the whole spec, so a release that fixes it is judged."""
        if not (spec.get("sparse_duplicate_rows") and self.keras.backend.backend() == "tensorflow"
                and spec["dtype"] in ("float16", "bfloat16")):
            return None
        key = ("duplicate-rows", spec["algorithm"], spec["dtype"], self.compile, len(spec["gradients"]))
        return self._raises(key, spec, len(spec["gradients"]), "when a sparse gradient names its rows twice (an "
                            "upstream bug: ", ")")

    def _loss_scale_failure(self, spec: dict) -> str | None:
        """Keras 3.15's LossScaleOptimizer cannot accumulate gradients of float16 or bfloat16 variables on
        TensorFlow and JAX (the float32 unscaled gradient meets the narrower accumulator and raises): probed
        once per configuration on its first two steps, so a release that fixes it is judged."""
        if spec.get("loss_scale_optimizer") and self.keras.backend.backend() == "jax":
            return (f"Keras {self.keras.__version__}'s LossScaleOptimizer is not a fair reference on JAX: its "
                    "stateful apply leaks tracers out of its cond, and through stateless_apply Nadam's u_product "
                    "(outside optimizer.variables) is lost")
        if not (spec.get("loss_scale_optimizer") and spec["config"].get("gradient_accumulation_steps")
                and spec["dtype"] in ("float16", "bfloat16")):
            return None
        key = (spec["algorithm"], spec["dtype"], self.compile, spec["config"]["gradient_accumulation_steps"])
        return self._raises(key, spec, 2, f"when a LossScaleOptimizer accumulates {spec['dtype']} gradients (", ")")

    def _raises(self, key: tuple, spec: dict, steps: int, when: str, end: str) -> str | None:
        """Whether Keras raises on the first ``steps`` steps of ``spec`` (probed once per ``key``): the reason,
        ``Keras <version> raises on <backend> <when><error><end>``, or None."""
        if key not in self._probed:
            try:
                self.run({**spec, "gradients": spec["gradients"][:steps], "finalize": False})
                self._probed[key] = None
            except Exception as error:  # noqa: BLE001 - whatever Keras raises says it cannot do this
                self._probed[key] = (f"Keras {self.keras.__version__} raises on {self.keras.backend.backend()} "
                                     f"{when}{type(error).__name__}: {first_line(error)}{end}")
        return self._probed[key]

    def run(self, spec) -> list[dict]:
        """The states along ``spec``, under its ``floatx`` (set before the optimizer makes its learning-rate
        variable, and restored after)."""
        keras = self.keras
        before = keras.config.floatx()
        keras.config.set_floatx(spec_floatx(spec))
        try:
            return self._run(spec)
        finally:
            keras.config.set_floatx(before)

    def _run(self, spec) -> list[dict]:
        keras = self.keras
        constraints = {int(i): c for i, c in (spec.get("constraints") or {}).items()}
        dtypes = [variable_dtype(spec, i) for i in range(len(spec["variables"]))]
        variables = [keras.Variable(decode_in(values, shape, d), name=name, dtype=d)
                     for (name, shape, values), d in zip(spec["variables"], dtypes)]
        for i, serialized in constraints.items():
            # As Layer.add_weight does it: keras.Variable takes no constraint argument (and ignores one).
            variables[i].constraint = keras.constraints.deserialize(serialized)
        for i in spec.get("overwrite_with_gradient") or ():
            variables[i].overwrite_with_gradient = True
        names = [name for name, _, _ in spec["variables"]]
        labels = [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]
        announce("the constructor")
        opt = inner = self.make(spec["algorithm"], spec["config"])
        if spec.get("loss_scale_optimizer"):
            opt = self.loss_scale_class()(inner, **spec["loss_scale_optimizer"])
        if hasattr(opt, "build"):
            announce("build")
            opt.build(variables)
        exclude = spec.get("exclude") or {}
        if exclude:
            var_list = [variables[i] for i in exclude.get("var_list", [])]
            inner.exclude_from_weight_decay(var_list=var_list or None, var_names=exclude.get("var_names"))
        apply = self._apply_fn(opt, variables)
        sparse, duplicate = set(spec.get("sparse_gradients") or ()), bool(spec.get("sparse_duplicate_rows"))
        states = []
        for k, step in enumerate(spec["gradients"], start=1):
            grads = [None if g is None else self._gradient(g, v, dtypes[i], i in sparse, duplicate)
                     for i, (g, v) in enumerate(zip(step, variables))]
            announce("apply", k)
            apply(grads)
            states.append(self._state(inner, variables, labels, opt))
        if spec.get("finalize"):
            announce("finalize_variable_values")
            opt.finalize_variable_values(variables)
            states.append(self._state(inner, variables, labels, opt))
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

    def _state(self, opt, variables, labels, wrapper) -> dict[str, list[str]]:
        """The inner optimizer's state, and a LossScaleOptimizer's own variables when ``wrapper`` is one."""
        to_np = self.keras.ops.convert_to_numpy
        out = {f"variables/{label}": encode(to_np(v.value)) for label, v in zip(labels, variables)}
        for attribute, slot, switch in KERAS_SLOTS:  # each rule's attributes (reference.rules)
            values = getattr(opt, attribute, None) if switch is None or getattr(opt, switch, None) else None
            if values and len(values) == len(labels):
                for label, v in zip(labels, values):
                    if v is not None:  # no slots for a variable assigned its gradient
                        out[f"{slot}/{label}"] = encode(to_np(v.value))
        for attribute, name in KERAS_SCALARS.items():
            if getattr(opt, attribute, None) is not None:
                out[name] = encode(to_np(getattr(opt, attribute).value))
        if wrapper is not opt:
            out["dynamic_scale"] = encode(to_np(wrapper.dynamic_scale.value))
            out["step_counter"] = encode(to_np(wrapper.step_counter.value))
        iterations = opt.iterations
        out["iterations"] = [float(int(to_np(getattr(iterations, "value", iterations)))).hex()]
        return out
