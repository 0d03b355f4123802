"""The oracle run on a spec, and a candidate's states compared with it element by element.

:func:`oracle_states` runs :mod:`reference` on a spec; :func:`compare` turns a candidate's states into one
:class:`Finding` per quantity and step: the worst ``|candidate − exact| / budget`` and where it occurred.
"""

from __future__ import annotations

import difflib
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np
from optimizer_conformance.conformance.model import (
    Finding,
    JudgeError,
    PackedArray,
    decode,
    spec_inputs,
    variable_options,
)
from optimizer_conformance.reference import Quantity, ReferenceOptimizer
from optimizer_conformance.reference.arrays import COMPILED
from optimizer_conformance.reference.pipeline import budget_ratios

# A spec with this many elements or more is run by the specification on whole arrays (reference.arrays: the same
# values within 2⁻³¹ of a budget, one compiled pass per operation), where numba compiles them; a deviated oracle (a
# diagnosis) runs on MPFR numbers.
ARRAY_ELEMENTS = 4096


# From this many elements a deviated oracle (a diagnosis) runs on whole arrays too: MPFR would take minutes.
LARGE_ELEMENTS = 65536


def elements_of(spec: dict) -> int:
    """How many elements the variables of ``spec`` hold."""
    return sum(int(np.prod(shape)) for _, shape, _ in spec["variables"])


def on_arrays(spec: dict, oracle: Callable[..., ReferenceOptimizer] = ReferenceOptimizer) -> bool:
    """Whether the oracle of ``spec`` runs on the array path."""
    threshold = ARRAY_ELEMENTS if oracle is ReferenceOptimizer else LARGE_ELEMENTS
    return COMPILED and elements_of(spec) >= threshold


def built_oracle(spec: dict, precision: int = 113,
                 oracle: Callable[..., ReferenceOptimizer] = ReferenceOptimizer) -> ReferenceOptimizer:
    """The oracle configured and built as ``spec`` says, before its first step."""
    opt = oracle(spec["algorithm"], spec["config"], dtype=spec["dtype"], precision=precision,
                 loss_scale_optimizer=spec.get("loss_scale_optimizer"), floatx=spec.get("floatx", "float32"),
                 **({"arrays": True} if on_arrays(spec, oracle) else {}))
    variables, _ = spec_inputs(spec)
    opt.build(variables, **variable_options(spec))
    if spec.get("exclude"):
        opt.exclude_from_weight_decay(**spec["exclude"])
    return opt


# The specification's states of the last few specs: the runner computes them while the candidate runs the same spec
# in its worker (two cores), and the judgement, the one-step check and the diagnosis then read them here.  Of the
# large ones (a scale trajectory's states hold hundreds of megabytes) only the last few are kept.
_RECENT: OrderedDict[tuple[str, int], list[dict[str, Quantity]]] = OrderedDict()
RECENT_SPECS, RECENT_LARGE_SPECS = 16, 2
_LARGE: list[tuple[str, int]] = []  # the keys of the large ones kept, oldest first


def spec_key(spec: dict, precision: int) -> tuple[str, int] | None:
    """What identifies ``spec`` among those kept: its JSON, each packed array by its SHA-256; None for a spec
    holding a Python object (a callable learning rate: not kept)."""
    def digest(value):
        return value.digest() if isinstance(value, PackedArray) else value

    light = {**spec, "variables": [[name, shape, digest(values)] for name, shape, values in spec["variables"]],
             "gradients": [[digest(g) for g in step] for step in spec["gradients"]]}
    try:
        return json.dumps(light, sort_keys=True), precision
    except (TypeError, ValueError):
        return None


def oracle_states(spec: dict, precision: int = 113,
                  oracle: Callable[..., ReferenceOptimizer] = ReferenceOptimizer) -> list[dict[str, Quantity]]:
    """The oracle's state after every step of ``spec`` (and after ``finalize``, when the spec asks for it).

    The specification's (``oracle`` ReferenceOptimizer) are kept for the last :data:`RECENT_SPECS` specs."""
    key = None if oracle is not ReferenceOptimizer else spec_key(spec, precision)
    if key is None:
        return _computed(spec, precision, oracle)
    if key in _RECENT:
        _RECENT.move_to_end(key)
        return _RECENT[key]
    states = _RECENT[key] = _computed(spec, precision, oracle)
    if elements_of(spec) >= LARGE_ELEMENTS:
        _LARGE.append(key)
        while len(_LARGE) > RECENT_LARGE_SPECS:
            _RECENT.pop(_LARGE.pop(0), None)
    while len(_RECENT) > RECENT_SPECS:
        oldest, _ = _RECENT.popitem(last=False)
        if oldest in _LARGE:
            _LARGE.remove(oldest)
    return states


def _computed(spec: dict, precision: int, oracle: Callable[..., ReferenceOptimizer]) -> list[dict[str, Quantity]]:
    opt = built_oracle(spec, precision, oracle)
    _, gradients = spec_inputs(spec)
    states = []
    for grads in gradients:
        opt.apply(grads)
        states.append(opt.state())
    if spec.get("finalize"):
        opt.finalize_variable_values()
        states.append(opt.state())
    return states


def check_coverage(reported: Iterable[str], known: Iterable[str], step: int) -> None:
    """Every quantity reported is one the oracle knows, and every variable is among them.

    A check passes only on what it judged: a misspelt name is never skipped, and a candidate that does not
    report its variables has not been judged.
    """
    reported, known = list(reported), set(known)
    unknown = [q for q in reported if q not in known]
    if unknown:
        hints = []
        for q in unknown:
            close = difflib.get_close_matches(q, sorted(known), n=1, cutoff=0.6)
            hints.append(f"{q!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise JudgeError(f"after step {step} the candidate reported {', '.join(hints)}, which the oracle does not "
                         f"know; it knows {', '.join(sorted(known))}")
    variables = sorted(q for q in known if q.startswith("variables/"))
    missing = [q for q in variables if q not in reported]
    if missing:
        raise JudgeError(f"after step {step} the candidate reported {', '.join(sorted(reported)) or 'nothing'}; "
                         f"every variable must be reported to be judged, and {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} missing")


def compare(oracle: list[dict[str, Quantity]], candidate: list[dict[str, list[str]]]) -> list[Finding]:
    """The worst ratio of every quantity the candidate reports, at every step (``iterations`` aside)."""
    if len(oracle) != len(candidate):
        raise JudgeError(f"the candidate recorded {len(candidate)} states, the oracle {len(oracle)}")
    findings = []
    for step, (exact_state, cand_state) in enumerate(zip(oracle, candidate), start=1):
        check_coverage(cand_state, exact_state, step)
        for name, values in cand_state.items():
            if name == "iterations":
                continue
            q = exact_state[name]
            findings.append(worst_finding(name, step, decode(values, (-1,)), q.exact, q.budget))
    return findings


def worst_finding(quantity: str, step: int, candidate: np.ndarray, exact, budget) -> Finding:
    """The element of one quantity at one step with the largest ``|candidate − exact| / budget``."""
    budget = np.asarray(budget).reshape(-1)
    if candidate.size != len(exact):
        raise JudgeError(f"{quantity} after step {step}: the candidate reported {candidate.size} elements, "
                         f"expected {len(exact)}")
    ratios = budget_ratios(candidate, exact, budget)
    i = int(np.argmax(ratios))
    return Finding(quantity, step, i, float(ratios[i]), float(candidate[i]), float(exact[i]), float(budget[i]))


def iterations_finding(step: int, values: list[str], expected: int) -> Finding:
    """``iterations`` is an integer and must be exact: ratio 0 when it is, infinite when not."""
    got = decode(values, (-1,))
    if got.size != 1:
        raise JudgeError(f"iterations after step {step}: {got.size} values, expected one")
    return Finding("iterations", step, 0, 0.0 if got[0] == expected else float("inf"), float(got[0]),
                   float(expected), 0.0)
