"""API check of the candidate's ``LossScaleOptimizer`` beside Keras's: ``loss-scale-optimizer``.

A mixed-precision model saves the wrapper, not the optimizer inside it, so a port's wrapper must match
Keras's as a drop-in: the constructor (``inner_optimizer, initial_scale, dynamic_growth_steps, name``), the
configuration (the inner optimizer serialized beside the two arguments), ``from_config``, the arguments Keras
refuses, the learning rate read and set through the wrapper, and the state: ``variables`` in Keras's order (the
wrapper's own unused counter and learning rate, ``step_counter``, ``dynamic_scale``, then the inner optimizer's),
the ``save_own_variables`` store, ``iterations`` (the inner optimizer's: skipped steps do not count), and a
checkpoint resumed across implementations in both directions, every number judged against the oracle.
"""

from __future__ import annotations

import copy

import numpy as np
from optimizer_conformance.conformance.checks.api.bridge import (
    Raised,
    Run,
    Subject,
    api_outcome,
    attempt,
    expected_states,
    in_floatx,
    judge_run,
    keep_worst_of,
    keras_departure,
    numeric_store,
    spec_kwargs,
    state_specs,
)
from optimizer_conformance.conformance.checks.api.config import config_differences, signature_problems
from optimizer_conformance.conformance.checks.api.state import judge_layout, keras_layout
from optimizer_conformance.conformance.model import Outcome

# Arguments Keras's wrapper refuses: the base optimizer's own (they belong on the inner optimizer), an
# unknown one, and ``dynamic=False`` (a fixed scale is the inner optimizer's ``loss_scale_factor``).
REFUSED = ({"clipnorm": 1.0}, {"use_ema": True}, {"gradient_accumulation_steps": 2}, {"dynamic": False},
           {"not_an_argument": 1})
ACCEPTED = ({}, {"initial_scale": 1024.0, "dynamic_growth_steps": 3}, {"initial_scale": 8}, {"name": "scaled"},
            {"clipnorm": None, "use_ema": False, "dynamic": True})  # the defaults an old saved config carries


def check_loss_scale_optimizer(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    import keras

    result = api_outcome("loss-scale-optimizer", algorithm)
    if cand.loss_scale_optimizer is None:
        result.not_applicable = "the candidate names no LossScaleOptimizer class"
        return result
    if keras.backend.backend() == "jax":
        result.not_applicable = (f"Keras {keras.__version__}'s LossScaleOptimizer is not a fair reference on JAX "
                                 "(its stateful apply leaks tracers out of its cond)")
        return result
    want_cls, got_cls = keras_.loss_scale_optimizer, cand.loss_scale_optimizer
    if got_cls is not want_cls:
        result.cases += 1
        result.problems += [f"constructor: {p}" for p in signature_problems(want_cls, got_cls)]
    for label, spec in state_specs(algorithm, result, ("dynamic-loss-scale",), steps=9):
        _configuration(result, keras_, cand, spec)
        _arguments(result, keras_, cand, spec)
        _learning_rate(result, keras_, cand, spec)
        untracked = _untracked_by_keras(keras_, spec)
        if untracked:
            reason = (f"Keras {keras.__version__} leaves {', '.join(untracked)} out of a wrapped optimizer's "
                      "variables (LossScaleOptimizer.build turns attribute tracking off), so its checkpoint "
                      "cannot carry them: no fair reference")
            result.skip(f"{label}: state layout", reason)
            result.skip(f"{label}: resume", reason)
            result.cases += 1
            steps = len(spec["gradients"])
            judge_run(result, spec, label, "the wrapped trajectory", lambda: Run(cand, spec).steps(range(steps)))
            continue
        _state(result, keras_, cand, spec, label)
        _resume(result, keras_, cand, spec, label)
    return result


def _untracked_by_keras(keras_: Subject, spec: dict) -> list[str]:
    """What the same Keras optimizer lists among its ``variables`` unwrapped but not wrapped (Keras 3.15:
    Nadam's ``u_product``)."""
    plain, wrapped = Run(keras_, {**spec, "loss_scale_optimizer": None}), Run(keras_, spec)
    unwrapped = set(keras_layout(plain.optimizer, plain.names)) - {None}
    return sorted(unwrapped - set(keras_layout(wrapped.optimizer.inner_optimizer, wrapped.names)))


def _wrap(subject: Subject, spec: dict, **kwargs):
    return subject.loss_scale_optimizer(subject.make(spec_kwargs(spec)), **kwargs)


def _configuration(result: Outcome, keras_: Subject, cand: Subject, spec: dict) -> None:
    """``get_config`` as Keras's (the inner optimizer's config inside its serialization) and the round trip."""
    import keras

    for kwargs in ACCEPTED[:4]:
        result.cases += 1
        where = f"get_config with {kwargs}"
        want = _wrap(keras_, spec, **kwargs).get_config()
        got = attempt(lambda: _wrap(cand, spec, **kwargs).get_config())
        if isinstance(got, Raised):
            result.problems.append(f"{where}: the candidate raised {got!r}")
            continue
        inner_want, inner_got = want.pop("inner_optimizer"), got.pop("inner_optimizer", None)
        result.problems += config_differences(want, got, loose_name="name" not in kwargs, where=where)
        if not isinstance(inner_got, dict) or sorted(inner_got) != sorted(inner_want):
            result.problems.append(f"{where}: inner_optimizer is {inner_got!r}; Keras serializes the inner optimizer "
                                   f"with the keys {sorted(inner_want)}")
        else:
            result.problems += config_differences(inner_want["config"], inner_got["config"], loose_name=True,
                                                  where=f"{where}, inner_optimizer")
        original = _wrap(cand, spec, **kwargs)
        inner_cls = type(original.inner_optimizer)
        # A Keras-style class is found by name when Keras deserializes the inner optimizer, as a user's
        # custom_objects would give it.
        with keras.saving.custom_object_scope({inner_cls.__name__: inner_cls}):
            again = attempt(lambda: type(original).from_config(copy.deepcopy(original.get_config())).get_config())
        if isinstance(again, Raised):
            result.problems.append(f"{where}: from_config(get_config()) raised {again!r}")
        else:
            result.problems += config_differences(original.get_config(), again, loose_name=False,
                                                  where=f"{where}, round trip")


def _arguments(result: Outcome, keras_: Subject, cand: Subject, spec: dict) -> None:
    """What Keras's wrapper refuses is refused with the same exception type; what it takes is taken."""
    for kwargs in REFUSED + ACCEPTED[4:]:
        result.cases += 1
        want = attempt(lambda: _wrap(keras_, spec, **kwargs))
        got = attempt(lambda: _wrap(cand, spec, **kwargs))
        if isinstance(want, Raised) != isinstance(got, Raised) or (
                isinstance(want, Raised) and type(want.error) is not type(got.error)):
            result.problems.append(f"arguments {kwargs}: Keras {_outcome(want)}, the candidate {_outcome(got)}")


def _outcome(made) -> str:
    return f"raises {made!r}" if isinstance(made, Raised) else "accepts them"


def _learning_rate(result: Outcome, keras_: Subject, cand: Subject, spec: dict) -> None:
    """The wrapper reads and sets the inner optimizer's learning rate."""
    result.cases += 1
    wrapper = _wrap(cand, spec)
    read = attempt(lambda: float(np.asarray(cand.read(wrapper.learning_rate))))
    inner = float(np.asarray(cand.read(wrapper.inner_optimizer.learning_rate)))
    if isinstance(read, Raised) or in_floatx(read) != in_floatx(inner):
        result.problems.append(f"learning_rate through the wrapper reads {read!r}, the inner optimizer {inner!r}")
    done = attempt(lambda: setattr(wrapper, "learning_rate", 0.0125))
    after = float(np.asarray(cand.read(wrapper.inner_optimizer.learning_rate)))
    if isinstance(done, Raised) or in_floatx(after) != in_floatx(0.0125):
        result.problems.append(f"setting learning_rate 0.0125 on the wrapper leaves the inner optimizer's at {after!r}"
                               + (f" ({done!r})" if isinstance(done, Raised) else ""))


def _state(result: Outcome, keras_: Subject, cand: Subject, spec: dict, label: str) -> None:
    """The trajectory, then ``variables``, ``iterations`` and the store against Keras's wrapper's (one run)."""
    result.cases += 1
    steps = len(spec["gradients"])
    run = attempt(lambda: Run(cand, spec))
    if isinstance(run, Raised):
        result.problems.append(f"{label}: the wrapped candidate cannot be built: {run!r}")
        return
    states = attempt(lambda: run.steps(range(steps)))
    if isinstance(states, Raised):
        result.problems.append(f"{label}: the wrapped trajectory raised {states!r}")
        return
    keep_worst_of(result, spec, states, label)
    reference = Run(keras_, spec)
    reference.steps(range(steps))
    judge_layout(result, f"{label} (wrapped)", reference, run, expected_states(spec), steps)


def _resume(result: Outcome, keras_: Subject, cand: Subject, spec: dict, label: str) -> None:
    """A wrapper's checkpoint mid-trajectory (the scale halved, the counters mid-way) continues in the other
    implementation on the oracle's trajectory."""
    departure = keras_departure(keras_, spec)
    if departure is not None:
        result.skip(f"{label}: resume", f"Keras itself departs from the oracle here ({departure}): resuming from or "
                                        "into it proves nothing")
        return
    steps = len(spec["gradients"])
    half = steps // 2
    for first, second, direction in ((keras_, cand, "Keras → candidate"), (cand, keras_, "candidate → Keras")):
        result.cases += 1

        def resumed(first=first, second=second):
            before = Run(first, spec)
            states = before.steps(range(half))
            store = numeric_store(before.store())
            after = Run(second, spec, values=before.values())
            after.optimizer.load_own_variables(store)
            return states + after.steps(range(half, steps))

        judge_run(result, spec, f"{label}, {direction} after step {half}", "resuming the wrapper", resumed)
