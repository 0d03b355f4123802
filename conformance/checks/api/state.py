"""API checks of the optimizer's state: ``state-layout``, ``resume``, ``stateless-apply``,
``finalize-variable-values``; every number judged against the oracle within budget."""

from __future__ import annotations

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
    keras_departure,
    numeric_store,
    state_specs,
)
from optimizer_conformance.conformance.checks.compare import worst_finding
from optimizer_conformance.conformance.model import Outcome, encode
from optimizer_conformance.reference.rules import KERAS_SCALARS, KERAS_SLOTS


def keras_layout(optimizer, names: list[str]) -> list[str | None]:
    """What each of a real Keras optimizer's ``variables`` holds, found by identity in its attributes.

    A ``LossScaleOptimizer``'s own variables come first: an unused counter and learning rate of its own
    (``wrapper/iterations``, ``wrapper/learning_rate``), ``step_counter`` and ``dynamic_scale``."""
    inner = getattr(optimizer, "inner_optimizer", None)
    if inner is not None:
        # Found by attribute where the release has it (3.0.0's wrapper names its own counter differently); an
        # entry left unnamed is compared with Keras's as it is.
        own = {id(getattr(optimizer, attribute, None)): name for attribute, name in (
            ("_iterations", "wrapper/iterations"), ("step_counter", "step_counter"),
            ("dynamic_scale", "dynamic_scale"), ("_learning_rate", "wrapper/learning_rate"))
            if hasattr(getattr(optimizer, attribute, None), "assign")}
        return [own.get(id(v)) for v in optimizer._variables] + keras_layout(inner, names)
    known: dict[int, str] = {id(optimizer.iterations): "iterations"}
    lr = getattr(optimizer, "_learning_rate", None)
    if lr is not None and hasattr(lr, "assign"):
        known[id(lr)] = "learning_rate"
    for attribute, slot, _ in KERAS_SLOTS:
        for name, variable in zip(names, getattr(optimizer, attribute, None) or []):
            if variable is not None:
                known[id(variable)] = f"{slot}/{name}"
    for attribute, name in KERAS_SCALARS.items():
        if getattr(optimizer, attribute, None) is not None:
            known[id(getattr(optimizer, attribute))] = name
    return [known.get(id(v)) for v in optimizer.variables]


def check_state_layout(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("state-layout", algorithm)
    for label, spec in state_specs(algorithm, result, steps=3):
        result.cases += 1
        reference = Run(keras_, spec)
        reference.steps(range(3))
        run = attempt(lambda: Run(cand, spec))
        if isinstance(run, Raised):
            result.problems.append(f"{label}: the candidate cannot be built: {run!r}")
            continue
        done = attempt(lambda: run.steps(range(3)))
        if isinstance(done, Raised):
            result.problems.append(f"{label}: the candidate raised {done!r}")
            continue
        judge_layout(result, label, reference, run, expected_states(spec), 3)
    return result


def judge_layout(result: Outcome, label: str, reference: Run, run: Run, states: list[dict], steps: int) -> None:
    """The candidate's ``variables`` count, ``iterations`` and ``save_own_variables`` store against Keras's
    after both ran ``steps`` steps: each entry holds, in Keras's order, what Keras's does (numbers judged
    against the oracle's ``states``)."""
    exact = states[steps - 1]
    layout = keras_layout(reference.optimizer, reference.names)
    n_cand = attempt(lambda: len(run.optimizer.variables))
    if n_cand != len(layout):
        result.problems.append(f"{label}: the candidate has {n_cand!r} variables, Keras {len(layout)} "
                               f"({', '.join(str(q) for q in layout)})")
    iterations = [attempt(lambda r=r: int(np.asarray(r.subject.read(r.optimizer.iterations))))
                  for r in (reference, run)]
    if iterations[0] != iterations[1]:
        result.problems.append(f"{label}: iterations reads {iterations[1]!r}, Keras {iterations[0]!r}")
    want, got = numeric_store(reference.store()), attempt(lambda: numeric_store(run.store()))
    if isinstance(got, Raised):
        result.problems.append(f"{label}: save_own_variables raised {got!r}")
        return
    if sorted(got) != sorted(want):
        result.problems.append(f"{label}: store keys {sorted(got, key=_key_order)}, Keras "
                               f"{sorted(want, key=_key_order)}")
        return
    for i, quantity in enumerate(layout):
        entry, keras_entry = got[str(i)], want[str(i)]
        if np.shape(entry) != np.shape(keras_entry):
            result.problems.append(f"{label}: store entry {i} ({quantity}) has shape {np.shape(entry)}, "
                                   f"Keras {np.shape(keras_entry)}")
        elif quantity in ("learning_rate", "wrapper/learning_rate"):
            if in_floatx(float(entry)) != in_floatx(float(keras_entry)):
                result.problems.append(f"{label}: store entry {i} ({quantity}) holds {float(entry)!r}, "
                                       f"Keras {float(keras_entry)!r}")
        elif quantity not in exact or quantity == "iterations":
            if not np.array_equal(np.asarray(entry, dtype=np.float64), np.asarray(keras_entry, dtype=np.float64)):
                result.problems.append(f"{label}: store entry {i} ({quantity or 'unknown'}) holds {entry!r}, "
                                       f"Keras {keras_entry!r}")
        else:
            q = exact[quantity]
            values = np.asarray(entry, dtype=np.float64).reshape(-1)
            finding = worst_finding(quantity, steps, values, q.exact, q.budget)
            if finding.ratio > 1:
                held = _what_it_holds(values, exact)
                result.problems.append(f"{label}: store entry {i} should hold {quantity} (Keras's order); it is "
                                       f"{finding.ratio:.3g} budgets from it" + (f" and holds {held}" if held else ""))


def _key_order(key: str):
    return (0, int(key)) if key.isdigit() else (1, key)


def _what_it_holds(values: np.ndarray, exact: dict) -> str | None:
    for name, q in exact.items():
        if len(q.exact) == values.size and worst_finding(name, 0, values, q.exact, q.budget).ratio <= 1:
            return name
    return None


def check_resume(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("resume", algorithm)
    for label, spec in state_specs(algorithm, result):
        departure = keras_departure(keras_, spec)
        if departure is not None:
            result.skip(label, f"Keras itself departs from the oracle here ({departure}): resuming from or into it "
                               "proves nothing")
            continue
        directions = ((keras_, cand, "Keras → candidate"), (cand, keras_, "candidate → Keras"))
        # Keras checked against itself: the two directions are one.
        for first, second, direction in directions[:1] if cand.same_as(keras_) else directions:
            result.cases += 1
            half = len(spec["gradients"]) // 2

            def resumed():
                before = Run(first, spec)
                states = before.steps(range(half))
                store = numeric_store(before.store())
                after = Run(second, spec, values=before.values())
                after.optimizer.load_own_variables(store)
                return states + after.steps(range(half, len(spec["gradients"])))

            judge_run(result, spec, f"{label}, {direction} after step {half}", "resuming", resumed)
    return result


def _stateless_states(run: Run, problems: list[str], label: str) -> list[dict]:
    """Every step through ``stateless_apply``, feeding its outputs back; it must leave all variables alone."""
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


def check_stateless_apply(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("stateless-apply", algorithm)
    for label, spec in state_specs(algorithm, result, ("basic", "ema", "accumulation")):
        run = Run(cand, spec)
        if not hasattr(run.optimizer, "stateless_apply"):
            result.not_applicable = "the candidate offers no stateless_apply"
            return result
        keras_states = attempt(lambda: _stateless_states(Run(keras_, spec), [], label))
        if isinstance(keras_states, Raised):
            import keras

            result.not_applicable = (f"Keras's own stateless_apply fails on the {keras.backend.backend()} "
                                     f"backend ({keras_states!r})")
            return result
        result.cases += 1
        judge_run(result, spec, label, "stateless_apply", lambda: _stateless_states(run, result.problems, label))
    return result


def check_finalize_variable_values(keras_: Subject, cand: Subject, algorithm: str) -> Outcome:
    result = api_outcome("finalize-variable-values", algorithm)
    for label, spec in state_specs(algorithm, result, ("basic", "ema"), steps=3):
        result.cases += 1
        spec = dict(spec, finalize=True)

        def finalized():
            run = Run(cand, spec)
            states = run.steps(range(len(spec["gradients"])))
            run.optimizer.finalize_variable_values(run.variables)
            states.append({f"variables/{n}": encode(run.subject.read(v)) for n, v in zip(run.names, run.variables)})
            return states

        judge_run(result, spec, label, "finalize_variable_values(var_list)", finalized)
    return result
