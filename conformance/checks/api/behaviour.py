"""API checks of Keras's rules around the update: ``exclude-from-weight-decay`` and ``learning-rate-setter``."""

from __future__ import annotations

from typing import Any

import numpy as np
from optimizer_conformance.conformance.checks.api.bridge import (
    Raised,
    Subject,
    api_outcome,
    attempt,
    in_floatx,
    materialize,
)
from optimizer_conformance.conformance.model import Outcome


def check_exclude_from_weight_decay(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("exclude-from-weight-decay", algorithm)
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

        return attempt(go)

    named = isinstance(getattr(cand.variable(np.ones(1), "kernel", "float32"), "name", None), str)
    for how in ("var_list", "var_names", "after build"):
        if how == "var_names" and not named:
            continue  # plain arrays carry no names to match
        result.cases += 1
        k, c = decayed(keras_, how), decayed(cand, how)
        if repr(k) != repr(c) if isinstance(k, Raised) or isinstance(c, Raised) else k != c:
            result.problems.append(f"exclusion by {how}, one step with zero gradients: Keras decays {k!r}, "
                                   f"the candidate {c!r}")
    return result


def check_learning_rate_setter(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("learning-rate-setter", algorithm)
    cases = [(0.01, 0.05, "a float to a float"), (0.01, 1, "a float to an int"),
             (0.01, "ExponentialDecay", "a float to a schedule"), (0.01, "callable", "a float to a callable"),
             ("ExponentialDecay", 0.05, "a schedule to a float"),
             ("ExponentialDecay", "PiecewiseConstantDecay", "a schedule to a schedule")]

    def outcome(subject: Subject, start, new, built: bool):
        def go():
            opt = subject.make(materialize({"learning_rate": start}))
            if built:
                opt.build([subject.variable(np.ones(2), "kernel", "float32")])
            opt.learning_rate = materialize({"learning_rate": new})["learning_rate"]
            config_lr = opt.get_config()["learning_rate"]
            if isinstance(config_lr, float):
                config_lr = in_floatx(config_lr)
            elif isinstance(config_lr, dict):
                config_lr = config_lr.get("class_name")
            return {"config learning_rate": config_lr, "variables": len(opt.variables) if built else None}

        return attempt(go)

    for start, new, what in cases:
        for built in (False, True):
            result.cases += 1
            k, c = outcome(keras_, start, new, built), outcome(cand, start, new, built)
            if isinstance(k, Raised) or isinstance(c, Raised):
                ok = isinstance(k, Raised) and isinstance(c, Raised) and isinstance(c.error, type(k.error))
            else:
                ok = k == c
            if not ok:
                result.problems.append(f"setting {what}{' after build' if built else ''}: Keras {k!r}, "
                                       f"the candidate {c!r}")
    return result
