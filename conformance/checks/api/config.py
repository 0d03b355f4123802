"""API checks of the constructor and the configuration: ``signature``, ``get-config``, ``from-config``,
``config-exchange``."""

from __future__ import annotations

import copy
import inspect
import math
import re
from typing import Any

from optimizer_conformance.conformance.checks.api.bridge import (
    KERAS_CLASSES,
    Raised,
    Subject,
    accepted_argument_sets,
    api_outcome,
    argument_sets,
    attempt,
    floatx,
    in_floatx,
    materialize,
)
from optimizer_conformance.conformance.model import Outcome


def config_differences(want: dict, got: dict, *, loose_name: bool, where: str) -> list[str]:
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
            if in_floatx(a) != in_floatx(b):
                problems.append(f"{where}: learning_rate is {b!r}, Keras {a!r} (compared in {floatx()})")
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


def _parameter_names(cls: type) -> list[str]:
    return [n for n, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def signature_problems(keras_cls: type, cand_cls: type) -> list[str]:
    """How the candidate's constructor differs from Keras's: parameter names, order, defaults, ``**kwargs``."""
    problems: list[str] = []
    want = inspect.signature(keras_cls.__init__).parameters
    got = inspect.signature(cand_cls.__init__).parameters
    want_names, got_names = _parameter_names(keras_cls), _parameter_names(cand_cls)
    if got_names != want_names:
        missing = [n for n in want_names if n not in got_names]
        extra = [n for n in got_names if n not in want_names]
        detail = (f"missing {missing}" if missing else "") + ("; " if missing and extra else "") + (
            f"not in Keras {extra}" if extra else "")
        problems.append(f"parameters {got_names[1:]} differ from Keras's {want_names[1:]}"
                        + (f" ({detail})" if detail else " (order)"))
    for name in want_names:
        if name in got and want[name].default is not inspect.Parameter.empty:
            a, b = want[name].default, got[name].default
            if b is inspect.Parameter.empty:
                problems.append(f"default of {name}: Keras has {a!r}, the candidate requires the argument")
            elif not _same(a, b):
                problems.append(f"default of {name}: Keras {a!r} ({type(a).__name__}), "
                                f"the candidate {b!r} ({type(b).__name__})")
    if any(p.kind == p.VAR_KEYWORD for p in want.values()) and not any(p.kind == p.VAR_KEYWORD for p in got.values()):
        problems.append("Keras takes **kwargs (it rejects unknown ones with ValueError); the candidate does not")
    return problems


def check_signature(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("signature", algorithm)
    if cand.cls is None:
        result.not_applicable = "the candidate is a factory: there is no constructor to compare"
        return result
    result.cases = len(_parameter_names(keras_.cls))
    result.problems += signature_problems(keras_.cls, cand.cls)
    for kwargs, what in (({}, "the default name"), ({"name": None}, "name=None"), ({"name": "opt_x"}, "name='opt_x'")):
        k = attempt(lambda: _name_rule(keras_.make(dict(kwargs)), kwargs))
        c = attempt(lambda: _name_rule(cand.make(dict(kwargs)), kwargs))
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


def check_get_config(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("get-config", algorithm)
    for label, kwargs in argument_sets(algorithm) + [("callable learning rate", {"learning_rate": "callable"})]:
        result.cases += 1
        want = attempt(lambda: keras_.make(materialize(kwargs)).get_config())
        got = attempt(lambda: cand.make(materialize(kwargs)).get_config())
        if isinstance(want, Raised) or isinstance(got, Raised):
            if isinstance(want, Raised) != isinstance(got, Raised):
                result.problems.append(f"{label} {kwargs}: Keras gives {want!r}, the candidate {got!r}")
            continue
        result.problems += config_differences(want, got, loose_name="name" not in kwargs, where=label)
    return result


def check_from_config(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("from-config", algorithm)
    for label, kwargs in accepted_argument_sets(algorithm, result):
        result.cases += 1
        original = attempt(lambda: cand.make(materialize(kwargs)))
        if isinstance(original, Raised):
            result.problems.append(f"{label}: the candidate cannot be made: {original!r}")
            continue
        config = original.get_config()
        again = attempt(lambda: type(original).from_config(copy.deepcopy(config)).get_config())
        if isinstance(again, Raised):
            result.problems.append(f"{label}: from_config(get_config()) raised {again!r}")
            continue
        result.problems += config_differences(config, again, loose_name=False, where=f"{label} round trip")
    return result


def check_config_exchange(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    import keras

    result = api_outcome("config-exchange", algorithm)
    from_config = (cand.cls or type(cand.make({}))).from_config
    for label, kwargs in accepted_argument_sets(algorithm, result):
        result.cases += 1
        keras_config = keras_.make(materialize(kwargs)).get_config()
        loaded = attempt(lambda: from_config(copy.deepcopy(keras_config)).get_config())
        if isinstance(loaded, Raised):
            result.problems.append(f"{label}: Keras's config does not load into the candidate: {loaded!r}")
        else:
            result.problems += config_differences(keras_config, loaded, loose_name=False,
                                                   where=f"{label}, Keras config loaded into the candidate")
        cand_config = attempt(lambda: cand.make(materialize(kwargs)).get_config())
        if isinstance(cand_config, Raised):
            result.problems.append(f"{label}: the candidate cannot be made: {cand_config!r}")
            continue
        def deserialized(config: dict) -> Any:
            serialized = {"module": "keras.optimizers", "class_name": KERAS_CLASSES[algorithm],
                          "config": copy.deepcopy(config), "registered_name": None}
            return attempt(lambda: keras.optimizers.deserialize(serialized).get_config())

        own = deserialized(keras_config)
        if isinstance(own, Raised):
            # Keras 3.15's deserialize does not know Lamb (it is missing from its table of optimizers).
            result.skip(f"{label}, candidate config loaded into Keras",
                        f"keras.optimizers.deserialize rejects Keras's own {KERAS_CLASSES[algorithm]} config "
                        f"({own!r})")
            continue
        in_keras = deserialized(cand_config)
        if isinstance(in_keras, Raised):
            result.problems.append(f"{label}: keras.optimizers.deserialize rejects the candidate's config: "
                                   f"{in_keras!r}")
            continue
        result.problems += config_differences(in_keras, cand_config, loose_name=False,
                                               where=f"{label}, candidate config loaded into Keras")
    return result
