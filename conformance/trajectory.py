"""Replay a trajectory spec through the oracle and compare a candidate's recorded states with it.

A spec (see :mod:`conformance.worker`) fixes the algorithm, the
configuration, the dtype, the initial variables and the gradient sequence.
:func:`oracle_states` runs :mod:`reference` on it; :func:`compare` turns a
candidate's states into one :class:`Finding` per quantity and step: the worst
``|candidate − exact| / budget`` and where it occurred.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from optimizer_conformance.reference import Quantity, ReferenceOptimizer
from optimizer_conformance.reference.pipeline import budget_ratios


def encode(array) -> list[str]:
    return [float(x).hex() for x in np.asarray(array, dtype=np.float64).reshape(-1)]


def decode(values: list[str], shape) -> np.ndarray:
    return np.array([float.fromhex(v) for v in values], dtype=np.float64).reshape(shape)


def make_spec(algorithm, config, dtype, variables, gradients, *, exclude=None, compile="eager", finalize=False):
    """A JSON-ready spec from ``variables = [(name, array)]`` and ``gradients = [[array or None]]``."""
    return {
        "algorithm": algorithm,
        "config": config,
        "dtype": dtype,
        "variables": [[name, list(np.shape(a)), encode(a)] for name, a in variables],
        "gradients": [[None if g is None else encode(g) for g in step] for step in gradients],
        "exclude": exclude or {},
        "compile": compile,
        "finalize": finalize,
    }


def oracle_states(spec: dict, precision: int = 113, variants: dict | None = None) -> list[dict[str, Quantity]]:
    opt = ReferenceOptimizer(spec["algorithm"], spec["config"], dtype=spec["dtype"], precision=precision)
    opt.variants = dict(variants or {})
    variables = [(name, decode(values, shape)) for name, shape, values in spec["variables"]]
    opt.build(variables)
    if spec.get("exclude"):
        opt.exclude_from_weight_decay(**spec["exclude"])
    states = []
    for step in spec["gradients"]:
        opt.apply([None if g is None else decode(g, shape) for g, (_, shape, _) in zip(step, spec["variables"])])
        states.append(opt.state())
    if spec.get("finalize"):
        opt.finalize_variable_values()
        states.append(opt.state())
    return states


@dataclass(frozen=True)
class Finding:
    quantity: str
    step: int
    element: int
    ratio: float
    candidate: float
    exact: float
    budget: float

    def __str__(self) -> str:
        return (
            f"{self.quantity} at step {self.step}, element {self.element}: candidate {self.candidate!r}, "
            f"exact {self.exact!r}, |diff| {abs(self.candidate - self.exact):.3g}, budget {self.budget:.3g}, "
            f"ratio {self.ratio:.3g}"
        )


class JudgeError(ValueError):
    """The candidate's states cannot be judged as reported: what it reported against what was expected."""


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
    """The worst ratio of every quantity the candidate reports, at every step."""
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


def run_keras(specs: list[dict], backend: str, timeout: float = 600) -> list[dict]:
    """Run real Keras on ``backend`` in a worker process for each spec; ``[{"states": ...}]``."""
    from optimizer_conformance.conformance.candidates import Candidate, Worker

    modes = {s.get("compile", "eager") for s in specs}
    if len(modes) != 1:
        raise ValueError(f"run_keras: one compile mode per call; got {sorted(modes)}")
    with Worker(Candidate(None, backend, modes.pop()), timeout) as worker:
        version = worker.description["versions"].get("keras", "?")
        return [{"states": worker.run(s), "keras_version": version, "backend": backend} for s in specs]
