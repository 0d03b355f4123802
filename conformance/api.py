"""API and configuration compatibility: is the candidate a drop-in replacement for the Keras optimizer?

Numbers are half of "this port is right"; the other half is that models, checkpoints and configs move
between the port and Keras.  These checks run inside the candidate's worker process next to real Keras
on the same backend, which is the reference for every API fact (nothing here is a recorded copy of
Keras's behaviour, so a new Keras release is checked against itself).  Numeric outcomes (a resumed
trajectory, ``stateless_apply``, a stored state) are judged against the oracle within budget, as
everywhere else.

Checks, reported per algorithm as ``api/<name>``:

``signature``            constructor parameter names, order, kinds and defaults; the ``name`` rule
                         (``None`` gives the snake-cased class name made unique: ``adam``, ``adam_w_1``);
``get-config``           the same keys, values and types as Keras for a table of argument sets
                         (every option, each learning-rate schedule, a callable, integer values);
``from-config``          ``from_config(get_config())`` gives the same configuration;
``config-exchange``      a Keras config loads into the candidate, and a candidate config loads into
                         Keras through ``keras.optimizers.deserialize``, each giving the same config;
``invalid-arguments``    every argument set Keras rejects in its constructor is rejected with the same
                         exception type, and every one Keras trains with is accepted: a table of known
                         bad inputs, then hypothesis (the shrunk disagreement is reported);
``state-layout``         ``variables`` count and order, ``iterations``, the ``save_own_variables``
                         store (keys, shapes, and what each entry holds, judged against the oracle);
``resume``               a state saved by Keras mid-training, loaded into the candidate, continues on
                         the oracle's trajectory within budget, and the reverse;
``stateless-apply``      (where offered) leaves every variable untouched and returns the oracle's step;
``exclude-from-weight-decay``, ``finalize-variable-values``, ``learning-rate-setter``: Keras's rules.

Learning rates compare in Keras's ``floatx``: Keras holds a float learning rate in a ``floatx``
variable, so ``get_config()`` and the setter read back its rounding.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optimizer_conformance.conformance.worker import KERAS_CLASSES

CHECKS = ("signature", "get-config", "from-config", "config-exchange", "invalid-arguments", "state-layout",
          "resume", "stateless-apply", "exclude-from-weight-decay", "finalize-variable-values",
          "learning-rate-setter")


def constant_learning_rate() -> float:
    """A module-level callable learning rate (Keras serializes callables by module and name)."""
    return 0.01


@dataclass
class Result:
    check: str
    problems: list[str] = field(default_factory=list)
    not_applicable: str | None = None
    finding: dict | None = None  # the worst oracle comparison, for the numeric checks
    cases: int = 0
    example: str | None = None

    def to_json(self) -> dict:
        return {"check": f"api/{self.check}", "problems": self.problems[:20], "not_applicable": self.not_applicable,
                "finding": self.finding, "cases": self.cases, "example": self.example}


@dataclass
class Subject:
    """What the checks need of an optimizer implementation: how to make one, and its model variables."""

    label: str
    cls: Any  # the class, or None when only a factory is known
    make: Callable[[dict], Any]
    variable: Callable[[np.ndarray, str, str], Any]  # (array, name, dtype) -> a model variable
    read: Callable[[Any], np.ndarray]
    tensor: Callable[[np.ndarray, str], Any]  # (array, dtype) -> a gradient


def keras_subject(algorithm: str) -> Subject:
    import keras

    cls = getattr(keras.optimizers, KERAS_CLASSES[algorithm])
    return Subject("Keras", cls, lambda kwargs: cls(**kwargs), _keras_variable, _keras_read, _keras_tensor)


def _keras_variable(array, name, dtype):
    import keras

    return keras.Variable(np.asarray(array), name=name, dtype=dtype)


def _keras_tensor(array, dtype):
    import keras
    from optimizer_conformance.reference.formats import FORMATS, numpy_dtype

    held = numpy_dtype(dtype) if dtype in FORMATS else np.dtype(dtype)
    return keras.ops.convert_to_tensor(np.asarray(array).astype(held))


def _keras_read(x) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(getattr(x, "value", x)))


# -- helpers -----------------------------------------------------------------------------------------------

class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"{type(self.error).__name__}: {str(self.error).splitlines()[0][:160] if str(self.error) else ''}"


def _attempt(fn: Callable[[], Any]) -> Any:
    """``fn()``, or the exception it raised (as a :class:`_Raised`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except Exception as error:  # noqa: BLE001 - an exception is an outcome to compare
        return _Raised(error)


def _floatx() -> str:
    import keras

    return keras.config.floatx()


def _in_floatx(x: float) -> float:
    from optimizer_conformance.reference.formats import numpy_dtype

    return float(np.asarray(x, dtype=np.float64).astype(numpy_dtype(_floatx())))


SCHEDULES = ("ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay", "CosineDecay",
             "CosineDecayRestarts")


def _schedule(name: str) -> Any:
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
    if algorithm in ("adam", "adamw"):
        sets.append(("amsgrad", {"amsgrad": True}))
    if algorithm == "adamw":
        sets.append(("integer weight decay", {"weight_decay": 1}))
    sets += [(f"schedule {name}", {"learning_rate": name}) for name in SCHEDULES]
    return sets


def _materialize(kwargs: dict) -> dict:
    """Schedules are named in the tables and built here, fresh for each optimizer."""
    out = dict(kwargs)
    lr = out.get("learning_rate")
    if lr in SCHEDULES:
        out["learning_rate"] = _schedule(lr)
    elif lr == "callable":
        out["learning_rate"] = constant_learning_rate
    return out


def _config_differences(want: dict, got: dict, *, loose_name: bool, where: str) -> list[str]:
    """Keys, values and types of ``got`` against ``want`` (Keras's)."""
    problems = []
    for key in want:
        if key not in got:
            problems.append(f"{where}: key {key!r} is missing (Keras: {want[key]!r})")
    for key in got:
        if key not in want:
            problems.append(f"{where}: key {key!r} is not in Keras's config (value {got[key]!r})")
    for key in want:
        if key not in got:
            continue
        a, b = want[key], got[key]
        if key == "name" and loose_name:
            continue  # a default name follows the class's name: api/signature checks that rule
        if key == "learning_rate" and isinstance(a, float) and isinstance(b, float):
            if _in_floatx(a) != _in_floatx(b):
                problems.append(f"{where}: learning_rate is {b!r}, Keras {a!r} (compared in {_floatx()})")
            continue
        if not _same(a, b):
            problems.append(f"{where}: {key} is {b!r} ({type(b).__name__}), Keras {a!r} ({type(a).__name__})")
    return problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


# -- the checks ----------------------------------------------------------------------------------------------

def check_signature(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("signature")
    if cand.cls is None:
        result.not_applicable = "the candidate is a factory: there is no constructor to compare"
        return result
    want = inspect.signature(keras_.cls.__init__).parameters
    got = inspect.signature(cand.cls.__init__).parameters
    want_names = [n for n, p in want.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    got_names = [n for n, p in got.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    result.cases = len(want_names)
    if got_names != want_names:
        missing = [n for n in want_names if n not in got_names]
        extra = [n for n in got_names if n not in want_names]
        detail = (f"missing {missing}" if missing else "") + ("; " if missing and extra else "") + (
            f"not in Keras {extra}" if extra else "")
        result.problems.append(f"parameters {got_names[1:]} differ from Keras's {want_names[1:]}"
                               + (f" ({detail})" if detail else " (order)"))
    for name in want_names:
        if name in got and want[name].default is not inspect.Parameter.empty:
            a, b = want[name].default, got[name].default
            if b is inspect.Parameter.empty:
                result.problems.append(f"default of {name}: Keras has {a!r}, the candidate requires the argument")
            elif not _same(a, b):
                result.problems.append(f"default of {name}: Keras {a!r} ({type(a).__name__}), "
                                       f"the candidate {b!r} ({type(b).__name__})")
    if any(p.kind == p.VAR_KEYWORD for p in want.values()) and not any(p.kind == p.VAR_KEYWORD for p in got.values()):
        result.problems.append("Keras takes **kwargs (it rejects unknown ones with ValueError and accepts the "
                               "deprecated `decay`); the candidate does not")
    for kwargs, what in (({}, "the default name"), ({"name": None}, "name=None"), ({"name": "opt_x"}, "name='opt_x'")):
        k = _attempt(lambda: _name_rule(keras_.make(dict(kwargs)), kwargs))
        c = _attempt(lambda: _name_rule(cand.make(dict(kwargs)), kwargs))
        if repr(k) != repr(c):
            result.problems.append(f"{what}: Keras {k}, the candidate {c}")
    return result


def _snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _name_rule(optimizer, kwargs: dict) -> str:
    """Which rule an optimizer's name follows: the given name, or its class's snake-cased name made unique."""
    name = optimizer.name
    if kwargs.get("name") is not None:
        return "keeps the given name" if name == kwargs["name"] else f"renames {kwargs['name']!r} to {name!r}"
    if isinstance(name, str) and re.fullmatch(re.escape(_snake_case(type(optimizer).__name__)) + r"(_\d+)?", name):
        return "names it after its class (snake case, made unique)"
    return f"names it {name!r}"


def check_get_config(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("get-config")
    for label, kwargs in argument_sets(algorithm) + [("callable learning rate", {"learning_rate": "callable"})]:
        result.cases += 1
        want = _attempt(lambda: keras_.make(_materialize(kwargs)).get_config())
        got = _attempt(lambda: cand.make(_materialize(kwargs)).get_config())
        if isinstance(want, _Raised) or isinstance(got, _Raised):
            if isinstance(want, _Raised) != isinstance(got, _Raised):
                result.problems.append(f"{label} {kwargs}: Keras gives {want!r}, the candidate {got!r}")
            continue
        result.problems += _config_differences(want, got, loose_name="name" not in kwargs, where=label)
    return result


def check_from_config(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("from-config")
    for label, kwargs in argument_sets(algorithm):
        result.cases += 1
        original = _attempt(lambda: cand.make(_materialize(kwargs)))
        if isinstance(original, _Raised):
            result.problems.append(f"{label}: the candidate cannot be made: {original!r}")
            continue
        config = original.get_config()
        again = _attempt(lambda: type(original).from_config(copy.deepcopy(config)).get_config())
        if isinstance(again, _Raised):
            result.problems.append(f"{label}: from_config(get_config()) raised {again!r}")
            continue
        result.problems += _config_differences(config, again, loose_name=False, where=f"{label} round trip")
    return result


def check_config_exchange(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    import keras

    result = Result("config-exchange")
    from_config = (cand.cls or type(cand.make({}))).from_config
    for label, kwargs in argument_sets(algorithm):
        result.cases += 1
        keras_config = keras_.make(_materialize(kwargs)).get_config()
        loaded = _attempt(lambda: from_config(copy.deepcopy(keras_config)).get_config())
        if isinstance(loaded, _Raised):
            result.problems.append(f"{label}: Keras's config does not load into the candidate: {loaded!r}")
        else:
            result.problems += _config_differences(keras_config, loaded, loose_name=False,
                                                   where=f"{label}, Keras config loaded into the candidate")
        cand_config = _attempt(lambda: cand.make(_materialize(kwargs)).get_config())
        if isinstance(cand_config, _Raised):
            result.problems.append(f"{label}: the candidate cannot be made: {cand_config!r}")
            continue
        serialized = {"module": "keras.optimizers", "class_name": KERAS_CLASSES[algorithm],
                      "config": copy.deepcopy(cand_config), "registered_name": None}
        in_keras = _attempt(lambda: keras.optimizers.deserialize(serialized).get_config())
        if isinstance(in_keras, _Raised):
            result.problems.append(f"{label}: keras.optimizers.deserialize rejects the candidate's config: "
                                   f"{in_keras!r}")
            continue
        result.problems += _config_differences(in_keras, cand_config, loose_name=False,
                                               where=f"{label}, candidate config loaded into Keras")
    return result


# -- invalid arguments -------------------------------------------------------------------------------------

def bad_arguments(algorithm: str) -> list[dict]:
    """Known bad (and borderline) inputs: every rule Keras's constructors enforce, and their edges."""
    table = [
        {"learning_rate": 1}, {"learning_rate": "0.01"}, {"learning_rate": None}, {"learning_rate": True},
        {"learning_rate": [0.01]}, {"unknown_argument": 1}, {"lr": 0.01}, {"decay": 0.1},
        {"gradient_accumulation_steps": 1}, {"gradient_accumulation_steps": 0}, {"gradient_accumulation_steps": -2},
        {"gradient_accumulation_steps": True}, {"gradient_accumulation_steps": 1.5},
        {"use_ema": True, "ema_momentum": 1.5}, {"use_ema": True, "ema_momentum": -0.1},
        {"use_ema": True, "ema_momentum": 1}, {"use_ema": True, "ema_momentum": 0},
        {"use_ema": False, "ema_momentum": 7.0},
        {"use_ema": True, "ema_overwrite_frequency": 0}, {"use_ema": True, "ema_overwrite_frequency": -1},
        {"use_ema": True, "ema_overwrite_frequency": 2.5}, {"use_ema": True, "ema_overwrite_frequency": 2.0},
        {"clipnorm": 1.0, "clipvalue": 1.0}, {"clipnorm": 1.0, "global_clipnorm": 1.0},
        {"clipvalue": 1.0, "global_clipnorm": 1.0}, {"clipnorm": 1.0, "clipvalue": 1.0, "global_clipnorm": 1.0},
        {"clipnorm": 0.0}, {"clipnorm": -1.0},
    ]
    if algorithm == "adamw":
        table += [{"weight_decay": None}, {"weight_decay": 0}]
    return table


def _trains(subject: Subject, kwargs: dict, optimizer=None) -> Any:
    """One step on a small variable: the new values, or the exception."""

    def step():
        opt = optimizer if optimizer is not None else subject.make(kwargs)
        variable = subject.variable(np.array([1.0, -2.0, 0.5]), "kernel", "float32")
        opt.build([variable])
        opt.apply([subject.tensor(np.array([0.3, -0.1, 2.0]), "float32")], [variable])
        return subject.read(variable)

    return _attempt(step)


def _construction_disagreement(keras_: Subject, cand: Subject, kwargs: dict) -> str | None:
    """Keras rejects → the same exception type; Keras trains to finite values → the candidate accepts."""
    k = _attempt(lambda: keras_.make(_materialize(kwargs)))
    c = _attempt(lambda: cand.make(_materialize(kwargs)))
    if isinstance(k, _Raised):
        if not isinstance(c, _Raised):
            return f"{kwargs}: Keras raises {k!r}; the candidate accepts it"
        if not isinstance(c.error, type(k.error)):
            return f"{kwargs}: Keras raises {k!r}; the candidate raises {c!r}"
        return None
    if isinstance(c, _Raised):
        trained = _trains(keras_, kwargs, optimizer=k)
        if not isinstance(trained, _Raised) and np.all(np.isfinite(trained)):
            return f"{kwargs}: Keras accepts it and trains; the candidate raises {c!r}"
    return None


def _argument_values(st):
    floats = st.sampled_from([0.0, -1.0, 0.5, 1.0, 2.0, 1e-7, math.nan, math.inf])
    ints = st.sampled_from([-1, 0, 1, 2, 3])
    return st.one_of(floats, ints, st.booleans(), st.none(), st.just("0.1"))


def _random_arguments(algorithm: str):
    from hypothesis import strategies as st

    keys = ["learning_rate", "beta_1", "beta_2", "epsilon", "weight_decay", "clipnorm", "clipvalue", "global_clipnorm",
            "use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps"]
    if algorithm in ("adam", "adamw"):
        keys.append("amsgrad")
    value = _argument_values(st)
    return st.dictionaries(st.sampled_from(keys), value, min_size=1, max_size=4)


def check_invalid_arguments(keras_: Subject, cand: Subject, algorithm: str, examples: int = 60) -> Result:
    from hypothesis import HealthCheck, given, settings

    result = Result("invalid-arguments")
    for kwargs in bad_arguments(algorithm):
        result.cases += 1
        disagreement = _construction_disagreement(keras_, cand, kwargs)
        if disagreement:
            result.problems.append(disagreement)
    found: list[str] = []

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True, print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(_random_arguments(algorithm))
    def property_(kwargs):
        disagreement = _construction_disagreement(keras_, cand, kwargs)
        if disagreement:
            found.append(disagreement)
            raise AssertionError(disagreement)

    try:
        property_()
    except AssertionError:
        result.problems.append(f"hypothesis, smallest example: {found[-1]}")
        result.example = found[-1]
    result.cases += examples
    return result


# -- state -------------------------------------------------------------------------------------------------

STATE_SETS = ("basic", "amsgrad", "ema", "accumulation", "schedule-exponential")


def _state_specs(algorithm: str, features=STATE_SETS, steps: int = 6) -> list[tuple[str, dict]]:
    from optimizer_conformance.conformance.checks import Profile, pipeline_cases

    profile = Profile("api", steps, 0, False)
    cases = {c.label: c for c in pipeline_cases(algorithm, "float32", profile)}
    return [(f, cases[f].spec) for f in features if f in cases]


def _spec_inputs(spec: dict):
    from optimizer_conformance.conformance.trajectory import decode

    variables = [(name, decode(values, shape)) for name, shape, values in spec["variables"]]
    grads = [[None if g is None else decode(g, shape) for g, (_, shape, _) in zip(step, spec["variables"])]
             for step in spec["gradients"]]
    return variables, grads


def _spec_kwargs(spec: dict) -> dict:
    import keras

    kwargs = dict(spec["config"])
    if isinstance(kwargs.get("learning_rate"), dict):
        kwargs["learning_rate"] = keras.optimizers.schedules.deserialize(kwargs["learning_rate"])
    return kwargs


class _Run:
    """An implementation working through a spec: its optimizer, model variables, and recorded states."""

    def __init__(self, subject: Subject, spec: dict, values=None) -> None:
        self.subject, self.spec = subject, spec
        names_values, self.grads = _spec_inputs(spec)
        self.names = [n for n, _ in names_values]
        values = values if values is not None else [v for _, v in names_values]
        self.variables = [subject.variable(v, n, spec["dtype"]) for n, v in zip(self.names, values)]
        self.optimizer = subject.make(_spec_kwargs(spec))
        self.optimizer.build(self.variables)

    def steps(self, ks) -> list[dict]:
        from optimizer_conformance.conformance.trajectory import encode

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


def _numeric(store: dict) -> dict:
    out = {}
    for key, value in store.items():
        v = value.detach().cpu().numpy() if hasattr(value, "detach") else value
        out[key] = np.asarray(v)
    return out


def _judge(result: Result, spec: dict, label: str, what: str, run: Callable[[], list[dict]]) -> None:
    """Run ``run()`` (the candidate's recorded states) and keep the worst difference from the oracle."""
    states = _attempt(run)
    if isinstance(states, _Raised):
        result.problems.append(f"{label}: {what} raised {states!r}")
    else:
        _worst(result, spec, states, label)


def _worst(result: Result, spec: dict, states: list[dict], label: str) -> None:
    from optimizer_conformance.conformance.trajectory import compare, oracle_states

    for finding in compare(oracle_states(spec), states):
        if result.finding is None or finding.ratio > result.finding["ratio"]:
            result.finding = {"quantity": finding.quantity, "step": finding.step, "element": finding.element,
                              "ratio": finding.ratio, "candidate": finding.candidate, "exact": finding.exact,
                              "budget": finding.budget, "case": label}


def keras_layout(optimizer, names: list[str]) -> list[str | None]:
    """What each of a real Keras optimizer's ``variables`` holds, found by identity in its attributes."""
    known: dict[int, str] = {id(optimizer._iterations): "iterations"}
    lr = getattr(optimizer, "_learning_rate", None)
    if lr is not None and hasattr(lr, "assign"):
        known[id(lr)] = "learning_rate"
    for attribute, slot in (("_momentums", "momentum"), ("_velocities", "velocity"),
                            ("_velocity_hats", "velocity_hat"), ("_model_variables_moving_average", "average"),
                            ("_accumulated_gradients", "gradient_accumulator")):
        for name, variable in zip(names, getattr(optimizer, attribute, None) or []):
            if variable is not None:
                known[id(variable)] = f"{slot}/{name}"
    if getattr(optimizer, "_u_product", None) is not None:
        known[id(optimizer._u_product)] = "u_product"
    return [known.get(id(v)) for v in optimizer.variables]


def check_state_layout(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    from optimizer_conformance.conformance.trajectory import oracle_states, worst_finding

    result = Result("state-layout")
    for label, spec in _state_specs(algorithm, steps=3):
        result.cases += 1
        reference = _Run(keras_, spec)
        reference.steps(range(3))
        run = _attempt(lambda: _Run(cand, spec))
        if isinstance(run, _Raised):
            result.problems.append(f"{label}: the candidate cannot be built: {run!r}")
            continue
        done = _attempt(lambda: run.steps(range(3)))
        if isinstance(done, _Raised):
            result.problems.append(f"{label}: the candidate raised {done!r}")
            continue
        layout = keras_layout(reference.optimizer, reference.names)
        n_cand = _attempt(lambda: len(run.optimizer.variables))
        if n_cand != len(layout):
            result.problems.append(f"{label}: the candidate has {n_cand!r} variables, Keras {len(layout)} "
                                   f"({', '.join(str(q) for q in layout)})")
        iterations = [_attempt(lambda r=r: int(np.asarray(r.subject.read(r.optimizer.iterations))))
                      for r in (reference, run)]
        if iterations[0] != iterations[1]:
            result.problems.append(f"{label}: iterations reads {iterations[1]!r}, Keras {iterations[0]!r}")
        want, got = _numeric(reference.store()), _attempt(lambda: _numeric(run.store()))
        if isinstance(got, _Raised):
            result.problems.append(f"{label}: save_own_variables raised {got!r}")
            continue
        if sorted(got) != sorted(want):
            result.problems.append(f"{label}: store keys {sorted(got, key=_key_order)}, Keras "
                                   f"{sorted(want, key=_key_order)}")
            continue
        exact = oracle_states(spec)[2]
        for i, quantity in enumerate(layout):
            entry, keras_entry = got[str(i)], want[str(i)]
            if np.shape(entry) != np.shape(keras_entry):
                result.problems.append(f"{label}: store entry {i} ({quantity}) has shape {np.shape(entry)}, "
                                       f"Keras {np.shape(keras_entry)}")
                continue
            if quantity in ("iterations", None):
                if not np.array_equal(np.asarray(entry, dtype=np.float64), np.asarray(keras_entry, dtype=np.float64)):
                    result.problems.append(f"{label}: store entry {i} ({quantity or 'unknown'}) holds {entry!r}, "
                                           f"Keras {keras_entry!r}")
                continue
            if quantity == "learning_rate":
                if _in_floatx(float(entry)) != _in_floatx(float(keras_entry)):
                    result.problems.append(f"{label}: store entry {i} (learning_rate) holds {float(entry)!r}, "
                                           f"Keras {float(keras_entry)!r}")
                continue
            q = exact[quantity]
            finding = worst_finding(quantity, 3, np.asarray(entry, dtype=np.float64).reshape(-1), q.exact, q.budget)
            if finding.ratio > 1:
                held = _what_it_holds(np.asarray(entry, dtype=np.float64).reshape(-1), exact)
                result.problems.append(f"{label}: store entry {i} should hold {quantity} (Keras's order); it is "
                                       f"{finding.ratio:.3g} budgets from it" + (f" and holds {held}" if held else ""))
    return result


def _key_order(key: str):
    return (0, int(key)) if key.isdigit() else (1, key)


def _what_it_holds(values: np.ndarray, exact: dict) -> str | None:
    from optimizer_conformance.conformance.trajectory import worst_finding

    for name, q in exact.items():
        if len(q.exact) == values.size and worst_finding(name, 0, values, q.exact, q.budget).ratio <= 1:
            return name
    return None


def check_resume(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("resume")
    for label, spec in _state_specs(algorithm):
        for first, second, direction in ((keras_, cand, "Keras → candidate"), (cand, keras_, "candidate → Keras")):
            result.cases += 1
            half = len(spec["gradients"]) // 2

            def resumed():
                before = _Run(first, spec)
                states = before.steps(range(half))
                store = _numeric(before.store())
                after = _Run(second, spec, values=before.values())
                after.optimizer.load_own_variables(store)
                return states + after.steps(range(half, len(spec["gradients"])))

            _judge(result, spec, f"{label}, {direction} after step {half}", "resuming", resumed)
    return result


def _stateless_states(run: _Run, problems: list[str], label: str) -> list[dict]:
    """Every step through ``stateless_apply``, feeding its outputs back; it must leave all variables alone."""
    from optimizer_conformance.conformance.trajectory import encode

    spec = run.spec
    before = [run.subject.read(v) for v in run.optimizer.variables] + run.values()
    # Fresh copies: Keras's torch backend updates the tensors it is given in place, so passing the
    # variables' own storage (``v.value``) would let it write through to them.
    optimizer_values = [run.subject.tensor(b, str(b.dtype)) for b in before[: len(run.optimizer.variables)]]
    model_values = [run.subject.tensor(b, spec["dtype"]) for b in run.values()]
    states = []
    for step in run.grads:
        grads = [None if g is None else run.subject.tensor(g, spec["dtype"]) for g in step]
        model_values, optimizer_values = run.optimizer.stateless_apply(optimizer_values, grads, model_values)
        states.append({f"variables/{n}": encode(run.subject.read(v)) for n, v in zip(run.names, model_values)})
    after = [run.subject.read(v) for v in run.optimizer.variables] + run.values()
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if not np.array_equal(a, b)]
    if changed:
        problems.append(f"{label}: stateless_apply changed variables {changed} "
                        "(the optimizer's first, then the model's)")
    return states


def check_stateless_apply(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("stateless-apply")
    for label, spec in _state_specs(algorithm, ("basic", "ema", "accumulation")):
        run = _Run(cand, spec)
        if not hasattr(run.optimizer, "stateless_apply"):
            result.not_applicable = "the candidate offers no stateless_apply"
            return result
        keras_states = _attempt(lambda: _stateless_states(_Run(keras_, spec), [], label))
        if isinstance(keras_states, _Raised):
            import keras

            result.not_applicable = (f"Keras's own stateless_apply fails on the {keras.backend.backend()} "
                                     f"backend ({keras_states!r})")
            return result
        result.cases += 1
        _judge(result, spec, label, "stateless_apply", lambda: _stateless_states(run, result.problems, label))
    return result


def check_exclude_from_weight_decay(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("exclude-from-weight-decay")
    initial = {"kernel": np.array([1.0, -2.0]), "bias": np.array([0.5, 4.0])}

    def decayed(subject: Subject, how: str) -> Any:
        def go():
            opt = subject.make({"weight_decay": 0.5, "learning_rate": 0.1})
            variables = [subject.variable(v, n, "float32") for n, v in initial.items()]
            if how == "var_list":
                opt.exclude_from_weight_decay(var_list=[variables[0]])
            elif how == "var_names":
                opt.exclude_from_weight_decay(var_names=["bia"])
            opt.build(variables)
            if how == "after build":
                opt.exclude_from_weight_decay(var_list=[variables[1]])
            zeros = [subject.tensor(np.zeros(2), "float32") for _ in range(2)]
            opt.apply(zeros, variables)
            return [name for (name, v0), v in zip(initial.items(), variables)
                    if not np.array_equal(subject.read(v), v0.astype(np.float32))]

        return _attempt(go)

    named = isinstance(getattr(cand.variable(np.ones(1), "kernel", "float32"), "name", None), str)
    for how in ("var_list", "var_names", "after build"):
        if how == "var_names" and not named:
            continue  # plain arrays carry no names to match
        result.cases += 1
        k, c = decayed(keras_, how), decayed(cand, how)
        if repr(k) != repr(c) if isinstance(k, _Raised) or isinstance(c, _Raised) else k != c:
            result.problems.append(f"exclusion by {how}, one step with zero gradients: Keras decays {k!r}, "
                                   f"the candidate {c!r}")
    return result


def check_finalize_variable_values(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("finalize-variable-values")
    for label, spec in _state_specs(algorithm, ("basic", "ema"), steps=3):
        result.cases += 1
        spec = dict(spec, finalize=True)

        def finalized():
            from optimizer_conformance.conformance.trajectory import encode

            run = _Run(cand, spec)
            states = run.steps(range(len(spec["gradients"])))
            run.optimizer.finalize_variable_values(run.variables)
            states.append({f"variables/{n}": encode(run.subject.read(v)) for n, v in zip(run.names, run.variables)})
            return states

        _judge(result, spec, label, "finalize_variable_values(var_list)", finalized)
    return result


def check_learning_rate_setter(keras_: Subject, cand: Subject, algorithm: str) -> Result:
    result = Result("learning-rate-setter")
    cases = [(0.01, 0.05, "a float to a float"), (0.01, 1, "a float to an int"),
             (0.01, "ExponentialDecay", "a float to a schedule"), (0.01, "callable", "a float to a callable"),
             ("ExponentialDecay", 0.05, "a schedule to a float"),
             ("ExponentialDecay", "PiecewiseConstantDecay", "a schedule to a schedule")]

    def outcome(subject: Subject, start, new, built: bool):
        def go():
            opt = subject.make(_materialize({"learning_rate": start}))
            if built:
                opt.build([subject.variable(np.ones(2), "kernel", "float32")])
            opt.learning_rate = _materialize({"learning_rate": new})["learning_rate"]
            config_lr = opt.get_config()["learning_rate"]
            if isinstance(config_lr, float):
                config_lr = _in_floatx(config_lr)
            elif isinstance(config_lr, dict):
                config_lr = config_lr.get("class_name")
            return {"config learning_rate": config_lr, "variables": len(opt.variables) if built else None}

        return _attempt(go)

    for start, new, what in cases:
        for built in (False, True):
            result.cases += 1
            k, c = outcome(keras_, start, new, built), outcome(cand, start, new, built)
            if isinstance(k, _Raised) or isinstance(c, _Raised):
                ok = isinstance(k, _Raised) and isinstance(c, _Raised) and isinstance(c.error, type(k.error))
            else:
                ok = k == c
            if not ok:
                result.problems.append(f"setting {what}{' after build' if built else ''}: Keras {k!r}, "
                                       f"the candidate {c!r}")
    return result


CHECK_FUNCTIONS: dict[str, Callable[..., Result]] = {
    "signature": check_signature,
    "get-config": check_get_config,
    "from-config": check_from_config,
    "config-exchange": check_config_exchange,
    "invalid-arguments": check_invalid_arguments,
    "state-layout": check_state_layout,
    "resume": check_resume,
    "stateless-apply": check_stateless_apply,
    "exclude-from-weight-decay": check_exclude_from_weight_decay,
    "finalize-variable-values": check_finalize_variable_values,
    "learning-rate-setter": check_learning_rate_setter,
}


def run_api_checks(cand: Subject | None, algorithm: str, not_applicable: str | None = None,
                   examples: int = 60, checks: tuple[str, ...] = CHECKS,
                   on_check: Callable[[str], None] = lambda name: None) -> list[dict]:
    """The API checks of one algorithm; a check that raises is reported as a problem, not a crash.

    ``on_check(name)`` is called as each check starts (the worker tells the host, whose deadline restarts).
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"API checks are {', '.join(CHECKS)}; got {unknown}")
    if algorithm not in KERAS_CLASSES:
        not_applicable = not_applicable or "the API checks cover Keras 3's Adam, AdamW and Nadam"
    if cand is None or not_applicable:
        return [Result(name, not_applicable=not_applicable or "no Keras-API class").to_json() for name in checks]
    keras_ = keras_subject(algorithm)
    out = []
    for name in checks:
        on_check(name)
        function = CHECK_FUNCTIONS[name]
        kwargs = {"examples": examples} if name == "invalid-arguments" else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = function(keras_, cand, algorithm, **kwargs)
        except Exception as error:  # noqa: BLE001 - a check that cannot run is a failed check
            import traceback

            result = Result(name, problems=[f"the check could not run: {type(error).__name__}: {error}",
                                            traceback.format_exc()[-1500:]])
        out.append(result.to_json())
    return out
