"""The bridge between the API checks and Keras: the subjects compared, and the shared helpers of every check.

A :class:`Subject` is what a check needs of an implementation (how to make an optimizer, model variables
and gradients, and how to read values back); :func:`keras_subject` is real Keras, the reference for
every API fact.  :class:`Run` works an implementation through a trajectory spec; :func:`judge_run` keeps
the worst difference of its states from the oracle.

Imports: the data model, the catalogue and the comparison with the oracle; Keras inside functions.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
from optimizer_conformance.conformance.cases.catalogue import features_for
from optimizer_conformance.conformance.checks.compare import compare, oracle_states
from optimizer_conformance.conformance.model import Outcome, encode, first_line, spec_inputs, variable_options
from optimizer_conformance.reference.formats import FORMATS, numpy_dtype
from optimizer_conformance.reference.rules import KERAS_CLASSES, RULES

# The oracle the API checks judge numbers against: the specification, or, to tell whether a failure is a catalogued
# upstream bug of the library the candidate runs on, that bug's deviated oracle (a Deviation of checks.upstream).
JUDGED_BY: ContextVar = ContextVar("JUDGED_BY", default=None)


def expected_states(spec: dict) -> list[dict]:
    """The oracle's states along ``spec``: the specification's, or those of the deviation in :data:`JUDGED_BY`."""
    deviation = JUDGED_BY.get()
    deviated = deviation.deviate(spec) if deviation is not None and deviation.deviate is not None else None
    return oracle_states(spec) if deviated is None else oracle_states(deviated[0], oracle=deviated[1])




_REJECTED: dict[str, str | None] = {}


def keras_rejects(algorithm: str, config: dict) -> str | None:
    """Why the Keras installed here refuses ``config`` for ``algorithm`` (its constructor raises), or None.

    A release that predates an argument (``gradient_accumulation_steps`` before Keras 3.4) makes the cases
    that need it not applicable: the reference cannot do them either.
    """
    if algorithm not in KERAS_CLASSES:
        return None
    try:
        key = f"{algorithm}:{json.dumps(config, sort_keys=True)}"
    except TypeError:  # a schedule object, not its serialization: nothing to key the answer by
        return _refusal(algorithm, config)
    if key not in _REJECTED:
        _REJECTED[key] = _refusal(algorithm, config)
    return _REJECTED[key]


_HONOURED: dict[str, bool] = {}


def keras_ignores_variable_options(spec: dict) -> str | None:
    """Why the Keras installed here cannot run ``spec``'s variable options (a release that predates
    ``overwrite_with_gradient`` leaves the flag unread), or None.  Each option is probed once, by behaviour:
    a one-variable SGD step must do what the option says."""
    missing = [option for option in variable_options(spec)
               if option in ("overwrite_with_gradient", "constraints") and not _honours(option)]
    if not missing:
        return None
    import keras

    return f"Keras {keras.__version__} does not apply {' or '.join(missing)}"


def _honours(option: str) -> bool:
    if option not in _HONOURED:
        import keras

        variable = keras.Variable(np.ones(2, "float32"))
        if option == "overwrite_with_gradient":
            variable.overwrite_with_gradient = True
        else:
            variable.constraint = keras.constraints.NonNeg()
        gradient = keras.ops.convert_to_tensor(np.array([3.0, 0.5], "float32"))
        keras.optimizers.SGD(learning_rate=1.0).apply([gradient], [variable])
        want = [3.0, 0.5] if option == "overwrite_with_gradient" else [0.0, 0.5]
        _HONOURED[option] = keras.ops.convert_to_numpy(variable.value).tolist() == want
    return _HONOURED[option]


def _refusal(algorithm: str, config: dict) -> str | None:
    try:
        import keras
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            getattr(keras.optimizers, KERAS_CLASSES[algorithm])(**spec_kwargs({"config": config}))
    except Exception as error:  # noqa: BLE001 - whatever Keras raises says it cannot do this
        message = first_line(error, 200)
        return f"Keras {keras.__version__} rejects it ({type(error).__name__}: {message})"
    return None


def api_outcome(name: str, algorithm: str) -> Outcome:
    """The outcome of the API check ``name`` (API checks have no dtype)."""
    return Outcome(algorithm, f"api/{name}", None)


def constant_learning_rate() -> float:
    """A module-level callable learning rate (Keras serializes callables by module and name)."""
    return 0.01


@dataclass
class Subject:
    """What the checks need of an optimizer implementation: how to make one, and its model variables."""

    label: str
    cls: Any  # the class, or None when only a factory is known
    make: Callable[[dict], Any]
    variable: Callable[[np.ndarray, str, str], Any]  # (array, name, dtype) -> a model variable
    read: Callable[[Any], np.ndarray]
    tensor: Callable[[np.ndarray, str], Any]  # (array, dtype) -> a gradient
    loss_scale_optimizer: Any = None  # its LossScaleOptimizer class (Keras's own wraps a class without one)

    def same_as(self, other: Subject) -> bool:
        """Whether ``other`` makes the very optimizers this one makes (Keras checked against itself)."""
        return (self.cls is not None and self.cls is other.cls
                and self.loss_scale_optimizer is other.loss_scale_optimizer)


def keras_subject(algorithm: str) -> Subject:
    import keras

    cls = getattr(keras.optimizers, KERAS_CLASSES[algorithm])
    return Subject("Keras", cls, lambda kwargs: cls(**kwargs), keras_variable, keras_read, keras_tensor,
                   keras.optimizers.LossScaleOptimizer)


def keras_variable(array, name, dtype):
    import keras

    return keras.Variable(np.asarray(array), name=name, dtype=dtype)


def keras_tensor(array, dtype):
    import keras

    held = numpy_dtype(dtype) if dtype in FORMATS else np.dtype(dtype)
    return keras.ops.convert_to_tensor(np.asarray(array).astype(held))


def keras_read(x) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(getattr(x, "value", x)))


class Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"{type(self.error).__name__}: {first_line(self.error)}"


def attempt(fn: Callable[[], Any]) -> Any:
    """``fn()``, or the exception it raised (as a :class:`Raised`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as error:  # noqa: BLE001 - an exception is an outcome to compare
        return Raised(error)


def floatx() -> str:
    import keras

    return keras.config.floatx()


def in_floatx(x: float) -> float:
    return float(np.asarray(x, dtype=np.float64).astype(numpy_dtype(floatx())))


SCHEDULES = ("ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay",
             "CosineDecayRestarts")


def make_schedule(name: str) -> Any:
    """A fresh Keras schedule of each class (a schedule holds state, so each optimizer gets its own)."""
    from keras.optimizers import schedules as s

    return {
        "ExponentialDecay": lambda: s.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True),
        "PiecewiseConstantDecay": lambda: s.PiecewiseConstantDecay([2, 5], [0.1, 0.05, 0.01]),
        "PolynomialDecay": lambda: s.PolynomialDecay(0.1, 10, end_learning_rate=0.001, power=2.0, cycle=True),
        "InverseTimeDecay": lambda: s.InverseTimeDecay(0.1, 5, 0.5),
        "CosineDecay": lambda: s.CosineDecay(0.001, 10, alpha=0.1, warmup_target=0.05, warmup_steps=3),
        "CosineDecayRestarts": lambda: s.CosineDecayRestarts(0.1, 4, t_mul=2.0, m_mul=0.5, alpha=0.01),
    }[name]()


def argument_sets(algorithm: str) -> list[tuple[str, dict]]:
    """Constructor arguments covering every option (learning rates built fresh per call: schedules hold state)."""
    sets: list[tuple[str, dict]] = [
        ("defaults", {}),
        ("hyperparameters", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5}),
        ("integer hyperparameters", {"beta_1": 0, "beta_2": 1, "epsilon": 1}),
        ("weight decay", {"weight_decay": 0.1}),
        ("clipnorm", {"clipnorm": 1.0}),
        ("global_clipnorm", {"global_clipnorm": 2.0}),
        ("clipvalue", {"clipvalue": 0.5}),
        ("ema", {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 3}),
        ("ema momentum without ema", {"ema_momentum": 0.5}),
        ("loss scale", {"loss_scale_factor": 128.0}),
        ("accumulation", {"gradient_accumulation_steps": 4}),
        ("name", {"name": "my_optimizer"}),
    ]
    rule = RULES[algorithm]
    if "amsgrad" in rule.capabilities:
        sets.append(("amsgrad", {"amsgrad": True}))
    if rule.weight_decay_required:
        sets.append(("integer weight decay", {"weight_decay": 1}))
    sets += [(f"schedule {name}", {"learning_rate": name}) for name in SCHEDULES]
    return sets


def materialize(kwargs: dict) -> dict:
    """Schedules are named in the tables and built here, fresh for each optimizer."""
    out = dict(kwargs)
    lr = out.get("learning_rate")
    if lr in SCHEDULES:
        out["learning_rate"] = make_schedule(lr)
    elif lr == "callable":
        out["learning_rate"] = constant_learning_rate
    return out


STATE_SETS = ("basic", "amsgrad", "ema", "accumulation", "schedule-exponential")


def state_specs(algorithm: str, result: Outcome, features=STATE_SETS, steps: int = 6) -> list[tuple[str, dict]]:
    """Float32 specs of the catalogue's features named in ``features`` that apply to ``algorithm``; those the
    Keras release here rejects are left out of ``result``, with why."""
    specs = []
    for f in features_for(algorithm):
        if f.name in features:
            spec = f.for_algorithm(algorithm, steps).spec("float32")
            reason = keras_rejects(algorithm, spec["config"])
            if reason:
                result.skip(f.name, reason)
            else:
                specs.append((f.name, spec))
    return specs


def accepted_argument_sets(algorithm: str, result: Outcome) -> list[tuple[str, dict]]:
    """The argument sets the Keras release here accepts; the others are left out of ``result``, with why."""
    out = []
    for label, kwargs in argument_sets(algorithm):
        reason = keras_rejects(algorithm, materialize(kwargs))
        if reason:
            result.skip(label, reason)
        else:
            out.append((label, kwargs))
    return out


def spec_kwargs(spec: dict) -> dict:
    import keras

    kwargs = dict(spec["config"])
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = keras.optimizers.schedules.deserialize(kwargs["learning_rate"])
    return kwargs


class Run:
    """An implementation working through a spec: its optimizer, model variables, and recorded states."""

    def __init__(self, subject: Subject, spec: dict, values=None) -> None:
        self.subject, self.spec = subject, spec
        names_values, self.grads = spec_inputs(spec)
        self.names = [n for n, _ in names_values]
        values = values if values is not None else [v for _, v in names_values]
        self.variables = [subject.variable(v, n, spec["dtype"]) for n, v in zip(self.names, values)]
        self.optimizer = subject.make(spec_kwargs(spec))
        if spec.get("loss_scale_optimizer"):
            self.optimizer = subject.loss_scale_optimizer(self.optimizer, **spec["loss_scale_optimizer"])
        self.optimizer.build(self.variables)

    def steps(self, ks) -> list[dict]:
        states = []
        for k in ks:
            grads = [None if g is None else self.subject.tensor(g, self.spec["dtype"]) for g in self.grads[k]]
            self.optimizer.apply(grads, self.variables)
            states.append({f"variables/{n}": encode(self.subject.read(v)) for n, v in zip(self.names, self.variables)})
        return states

    def values(self) -> list[np.ndarray]:
        return [self.subject.read(v) for v in self.variables]

    def store(self) -> dict:
        store: dict = {}
        self.optimizer.save_own_variables(store)
        return store


def numeric_store(store: dict) -> dict:
    out = {}
    for key, value in store.items():
        v = value.detach().cpu().numpy() if hasattr(value, "detach") else value
        out[key] = np.asarray(v)
    return out


def judge_run(result: Outcome, spec: dict, label: str, what: str, run: Callable[[], list[dict]]) -> None:
    """Run ``run()`` (the candidate's recorded states) and keep the worst difference from the oracle."""
    states = attempt(run)
    if isinstance(states, Raised):
        result.problems.append(f"{label}: {what} raised {states!r}")
    else:
        keep_worst_of(result, spec, states, label)


_DEPARTURES: dict[tuple[Any, str], str | None] = {}


def keras_departure(keras_: Subject, spec: dict) -> str | None:
    """Why Keras's own uninterrupted run of ``spec`` is no fit partner for a check (its worst difference from the
    oracle, over budget), or ``None`` when it follows the oracle (Keras 3.15's schedule-free AdamW does not on
    TensorFlow and torch).  Found once per class and spec in a worker (several checks ask)."""
    key = (keras_.cls, json.dumps(spec, sort_keys=True))
    if key not in _DEPARTURES:
        _DEPARTURES[key] = _departure(keras_, spec)
    return _DEPARTURES[key]


def _departure(keras_: Subject, spec: dict) -> str | None:
    states = attempt(lambda: Run(keras_, spec).steps(range(len(spec["gradients"]))))
    if isinstance(states, Raised):
        return f"it raised {states!r}"
    worst = max(compare(expected_states(spec), states), key=lambda f: f.ratio, default=None)
    if worst is None or worst.ratio <= 1:
        return None
    return f"{worst.quantity} after step {worst.step}: ratio {worst.ratio:.3g}"


def keep_worst_of(result: Outcome, spec: dict, states: list[dict], label: str) -> None:
    for finding in compare(expected_states(spec), states):
        result.keep_worst(finding, label)
