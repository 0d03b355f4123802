"""The candidate worker: one process that holds one candidate and runs trajectory specs on it.

Keras picks its backend once per process, and importing TensorFlow costs seconds, so the harness
starts a worker per candidate (``KERAS_BACKEND`` set) and talks to it in JSON lines over stdin and
stdout:

    → {"candidate": {"kind": "keras" | "import", "target": "pkg.mod:Name", "compile": "eager"}}
    ← {"ready": true, "describe": {...}}   or   {"error": "..."}
    → {"spec": {...}}                       (see conformance.trajectory.make_spec)
    → {"candidate": {...}}                  (switch to another candidate; answered like the first)
    ← {"call": "apply", "step": 3}          (before each call into the candidate: the host's deadline
                                             restarts, and a hang or crash is reported at that call)
    ← {"states": [{quantity: [hex, ...]}, ...]}   or   {"error": "...", "traceback": "..."}

Floats travel as ``float.hex`` strings.  Candidates: real Keras 3 (``keras.optimizers``), any
class or factory named by import path that follows the Keras optimizer API (Keras 3 subclasses,
``tf_keras.optimizers.legacy`` optimizers), and :mod:`conformance.adapter` adapters.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from optimizer_conformance.reference.formats import numpy_dtype  # noqa: E402

KERAS_CLASSES = {"adam": "Adam", "adamw": "AdamW", "nadam": "Nadam"}
ALL_DTYPES = ("float32", "float64", "float16", "bfloat16")

_CHANNEL = None  # the protocol's output stream, once serving


def announce(call: str, step: int | None = None) -> None:
    """Tell the host which call into the candidate comes next (its deadline and its crash report use it)."""
    if _CHANNEL is not None:
        _CHANNEL.write(json.dumps({"call": call, "step": step}) + "\n")
        _CHANNEL.flush()


def _decode(values, shape, dtype):
    return np.array([float.fromhex(v) for v in values], dtype=np.float64).reshape(shape).astype(numpy_dtype(dtype))


def _encode(array) -> list[str]:
    return [float(x).hex() for x in np.asarray(array, dtype=np.float64).reshape(-1)]


def resolve(target: str):
    """``package.module:Name`` (or ``package.module.Name``) to the object it names."""
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"candidate {target!r}: expected 'package.module:Name'")
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _claimed_algorithms(obj) -> tuple[str, ...]:
    claimed = getattr(obj, "conformance_algorithms", None) or getattr(obj, "algorithms", None)
    if claimed:
        return tuple(claimed)
    name = getattr(obj, "__name__", "").lower()
    if _is_legacy(obj) and "nadam" in name:
        return ("nadam-legacy",)
    try:
        import keras

        if isinstance(obj, type):
            for algorithm in ("adamw", "nadam", "adam"):
                if issubclass(obj, getattr(keras.optimizers, KERAS_CLASSES[algorithm])):
                    return (algorithm,)
    except ImportError:
        pass
    for algorithm in ("adamw", "nadam", "adam"):
        if algorithm in name.replace("_", ""):
            return (algorithm,)
    return ()


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
        algorithms = tuple(KERAS_CLASSES) if self.obj is None else _claimed_algorithms(self.obj)
        return {"name": self.target or f"keras ({backend})", "algorithms": list(algorithms), "dtypes": list(dtypes),
                "versions": _versions(), "backend": backend, "compile": self.compile}

    def make(self, algorithm, config):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = self.keras.optimizers.schedules.deserialize(config["learning_rate"])
        if self.obj is None:
            return getattr(self.keras.optimizers, KERAS_CLASSES[algorithm])(**config)
        if isinstance(self.obj, type):
            return self.obj(**config)
        return self.obj(algorithm, config)

    def api_subject(self, algorithm):
        from optimizer_conformance.conformance.api import (
            Subject,
            _keras_read,
            _keras_tensor,
            _keras_variable,
            keras_subject,
        )

        if self.obj is None:
            return keras_subject(algorithm), None
        if isinstance(self.obj, type):
            return Subject(self.target, self.obj, lambda kwargs: self.obj(**kwargs), _keras_variable, _keras_read,
                           _keras_tensor), None
        return Subject(self.target, None, lambda kwargs: self.obj(algorithm, kwargs), _keras_variable,
                       _keras_read, _keras_tensor), None

    def run(self, spec) -> list[dict]:
        keras, dtype = self.keras, spec["dtype"]
        variables = [keras.Variable(_decode(values, shape, dtype), name=name, dtype=dtype)
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
            grads = [None if g is None else keras.ops.convert_to_tensor(_decode(g, v.shape, dtype))
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
        out = {f"variables/{label}": _encode(to_np(v.value)) for label, v in zip(labels, variables)}
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
                    out[f"{slot}/{label}"] = _encode(to_np(v.value))
        if getattr(opt, "_u_product", None) is not None:
            out["u_product"] = _encode(to_np(opt._u_product.value))
        iterations = opt.iterations
        out["iterations"] = [float(int(to_np(getattr(iterations, "value", iterations)))).hex()]
        return out


class LegacyEngine:
    """``tf_keras.optimizers.legacy`` optimizers (TF 2.0 semantics): ``apply_gradients`` on ``tf.Variable``."""

    def __init__(self, target):
        import tensorflow as tf

        self.tf = tf
        self.target = target
        self.obj = resolve(target)

    def describe(self) -> dict:
        return {"name": self.target, "algorithms": list(_claimed_algorithms(self.obj)),
                "dtypes": ["float32", "float64", "float16"], "versions": _versions(), "backend": "tf_keras"}

    def api_subject(self, algorithm):
        return None, "the API checks compare with Keras 3; tf_keras legacy optimizers have another API"

    def run(self, spec) -> list[dict]:
        tf, dtype = self.tf, spec["dtype"]
        config = dict(spec["config"])
        if "decay" in config:
            config["schedule_decay"] = config.pop("decay")
        config = {k: v for k, v in config.items() if v is not None}
        announce("the constructor")
        opt = self.obj(**config)
        variables = [tf.Variable(_decode(values, shape, dtype), name=name) for name, shape, values in spec["variables"]]
        labels = [name for name, _, _ in spec["variables"]]
        states = []
        for k, step in enumerate(spec["gradients"], start=1):
            pairs = [(tf.constant(_decode(g, v.shape, dtype)), v) for g, v in zip(step, variables) if g is not None]
            announce("apply_gradients", k)
            opt.apply_gradients(pairs)
            out = {f"variables/{label}": _encode(v.numpy()) for label, v in zip(labels, variables)}
            for slot, key in (("momentum", "m"), ("velocity", "v")):
                for label, v in zip(labels, variables):
                    try:
                        out[f"{slot}/{label}"] = _encode(opt.get_slot(v, key).numpy())
                    except (KeyError, ValueError):
                        pass
            for w in opt.weights:
                if "momentum_cache" in w.name:
                    out["momentum_cache"] = _encode(w.numpy())
            out["iterations"] = [float(int(opt.iterations.numpy())).hex()]
            states.append(out)
        return states


class AdapterEngine:
    """A :mod:`conformance.adapter` adapter class (or instance)."""

    def __init__(self, target):
        self.target = target
        self.obj = resolve(target)

    def _instance(self):
        return self.obj() if isinstance(self.obj, type) else self.obj

    def describe(self) -> dict:
        inst = self._instance()
        return {"name": self.target, "algorithms": list(inst.algorithms),
                "dtypes": list(getattr(inst, "dtypes", ("float32",))), "versions": _versions(), "backend": "adapter"}

    def api_subject(self, algorithm):
        from optimizer_conformance.conformance.api import Subject

        inst = self._instance()
        if not hasattr(inst, "optimizer_class"):
            return None, ("the adapter names no Keras-API class: give it optimizer_class(algorithm), "
                          "to_array(array, dtype) and to_numpy(x) (see conformance/adapter.py)")
        cls = inst.optimizer_class(algorithm)
        return Subject(self.target, cls, lambda kwargs: cls(**kwargs), lambda a, name, dtype: inst.to_array(a, dtype),
                       lambda x: np.asarray(inst.to_numpy(x)), inst.to_array), None

    def run(self, spec) -> list[dict]:
        from optimizer_conformance.reference.config import get_config, normalize

        dtype = spec["dtype"]
        inst = self._instance()
        variables = [(name, _decode(values, shape, dtype)) for name, shape, values in spec["variables"]]
        # An adapter gets the full get_config() dictionary, Keras's defaults filled in.
        config = get_config(spec["algorithm"], normalize(spec["algorithm"], spec["config"]))
        announce("start")
        inst.start(spec["algorithm"], config, variables, dtype, spec.get("exclude") or {})
        states = []

        def snapshot(step):
            announce("state", step)
            state = inst.state()
            if not isinstance(state, dict):
                raise TypeError(f"state() returned {type(state).__name__}, not a dict of quantity name to array")
            return {str(k): _encode(_as_float64(k, v)) for k, v in state.items()}

        for k, step in enumerate(spec["gradients"], start=1):
            grads = [None if g is None else _decode(g, shape, dtype)
                     for g, (_, shape, _) in zip(step, spec["variables"])]
            announce("apply", k)
            inst.apply(grads)
            states.append(snapshot(k))
        if spec.get("finalize"):
            if hasattr(inst, "finalize"):
                announce("finalize")
                inst.finalize()
            states.append(snapshot(len(spec["gradients"]) + 1))
        return states


def _as_float64(quantity, value) -> np.ndarray:
    """A reported quantity as float64 (bfloat16 arrays included); anything that is not numbers is an error."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" and array.dtype != np.dtype(numpy_dtype("bfloat16")):
        raise TypeError(f"state()[{quantity!r}] is not an array of numbers (dtype {array.dtype})")
    return array.astype(np.float64)


def _api(engine, request: dict) -> list[dict]:
    from optimizer_conformance.conformance.api import CHECKS, run_api_checks

    try:
        import keras  # noqa: F401 - the reference for every API fact
    except ImportError:
        return run_api_checks(None, request["algorithm"], "keras is not installed: it is the reference for the API",
                              checks=tuple(request.get("checks") or CHECKS))
    subject, not_applicable = engine.api_subject(request["algorithm"])
    checks = tuple(request.get("checks") or CHECKS)
    return run_api_checks(subject, request["algorithm"], not_applicable, request.get("examples", 60), checks,
                          on_check=lambda name: announce(f"api/{name}"))


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("keras", "tensorflow", "jax", "torch", "tf_keras", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


def _is_legacy(obj) -> bool:
    """A ``tf_keras.optimizers.legacy`` (OptimizerV2) class or a subclass of one."""
    mro = getattr(obj, "__mro__", None) or getattr(type(obj), "__mro__", ())
    return any((c.__module__ or "").startswith("tf_keras") and ".legacy" in c.__module__ for c in mro)


def make_engine(candidate: dict):
    from optimizer_conformance.conformance.adapter import is_adapter

    kind, target = candidate.get("kind", "keras"), candidate.get("target")
    if kind == "keras" and not target:
        return KerasEngine(None, candidate.get("compile", "eager"))
    obj = resolve(target)
    if is_adapter(obj):
        return AdapterEngine(target)
    if _is_legacy(obj):
        return LegacyEngine(target)
    return KerasEngine(target, candidate.get("compile", "eager"))


def _error_reply(error: BaseException) -> dict:
    # SystemExit and KeyboardInterrupt raised by the candidate are its results too: a Ctrl-C at the terminal
    # never reaches the worker, which runs in a process group of its own.
    return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-3000:]}


def serve(stdin=sys.stdin, stdout=sys.stdout) -> int:
    global _CHANNEL
    _CHANNEL = stdout
    header = json.loads(stdin.readline())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = make_engine(header["candidate"])
            description = engine.describe()
    except BaseException as error:  # noqa: BLE001 - reported to the harness as "cannot load"
        stdout.write(json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n")
        stdout.flush()
        return 2
    stdout.write(json.dumps({"ready": True, "describe": description}) + "\n")
    stdout.flush()
    for line in stdin:
        request = json.loads(line)
        if "candidate" in request:
            # Switching candidates in one process spares the framework's import (seconds for TensorFlow).
            try:
                engine = make_engine(request["candidate"])
                reply = {"ready": True, "describe": engine.describe()}
            except BaseException as error:  # noqa: BLE001
                reply = {"error": f"{type(error).__name__}: {error}"}
            stdout.write(json.dumps(reply) + "\n")
            stdout.flush()
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if "api" in request:
                    reply = {"api": _api(engine, request["api"])}
                else:
                    reply = {"states": engine.run(request["spec"])}
        except BaseException as error:  # noqa: BLE001 - a candidate's exception is a result, not a crash
            reply = _error_reply(error)
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()
    return 0


def _die_with_parent() -> None:
    """End this worker when the harness that started it is gone, even while the candidate hangs."""
    parent = os.getppid()
    try:  # Linux: the kernel delivers SIGKILL the moment the parent dies
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:
        os._exit(70)


def main() -> int:
    _die_with_parent()
    # Keep the protocol channel clean: anything the candidate prints goes to stderr.
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(sys.stdin, channel)


if __name__ == "__main__":
    sys.exit(main())
