"""API check ``invalid-arguments``: every argument set Keras rejects is rejected alike, every one it trains
with is accepted (a table of known bad inputs, then hypothesis)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optimizer_conformance.conformance.checks.api.bridge import Raised, Subject, api_outcome, attempt, materialize
from optimizer_conformance.conformance.model import Outcome
from optimizer_conformance.reference.rules import RULES


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
    if RULES[algorithm].weight_decay_required:
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

    return attempt(step)


def _construction_disagreement(keras_: Subject, cand: Subject, kwargs: dict) -> str | None:
    """Keras rejects → the same exception type; Keras trains to finite values → the candidate accepts."""
    k = attempt(lambda: keras_.make(materialize(kwargs)))
    c = attempt(lambda: cand.make(materialize(kwargs)))
    if isinstance(k, Raised):
        if not isinstance(c, Raised):
            return f"{kwargs}: Keras raises {k!r}; the candidate accepts it"
        if not isinstance(c.error, type(k.error)):
            return f"{kwargs}: Keras raises {k!r}; the candidate raises {c!r}"
        return None
    if isinstance(c, Raised):
        trained = _trains(keras_, kwargs, optimizer=k)
        if not isinstance(trained, Raised) and np.all(np.isfinite(trained)):
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
    if "amsgrad" in RULES[algorithm].capabilities:
        keys.append("amsgrad")
    value = _argument_values(st)
    return st.dictionaries(st.sampled_from(keys), value, min_size=1, max_size=4)


def check_invalid_arguments(keras_: Subject, cand: Subject, algorithm: str, examples: int = 60) -> Outcome:
    from hypothesis import HealthCheck, given, settings

    result = api_outcome("invalid-arguments", algorithm)
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
        result.example = {"summary": found[-1]}
    result.cases += examples
    return result
