"""Real Keras run on specs, in a worker process per backend (the agreement and golden tests use it)."""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.client import Candidate, Worker
from optimizer_conformance.conformance.model import NotApplicable


def run_keras(specs: list[dict], backend: str, timeout: float = 600) -> list[dict]:
    """Run real Keras on ``backend`` for each spec; ``[{"states": ..., "keras_version": ..., "backend": ...}]``,
    with ``"not_applicable"`` (the reason) and no states where Keras there is no reference for the spec."""
    modes = {s.get("compile", "eager") for s in specs}
    if len(modes) != 1:
        raise ValueError(f"run_keras: one compile mode per call; got {sorted(modes)}")
    with Worker(Candidate(None, backend, modes.pop()), timeout) as worker:
        version = worker.description["versions"].get("keras", "?")
        out = []
        for spec in specs:
            try:
                out.append({"states": worker.run(spec), "keras_version": version, "backend": backend})
            except NotApplicable as reason:
                out.append({"states": None, "not_applicable": str(reason), "backend": backend})
        return out


def upstream_explanation(spec: dict, result: dict) -> str | None:
    """The id of the catalogued upstream bug of this Keras release and backend that explains a run that fails the
    specification (its deviated oracle holds every reported quantity), or None: the policy of the README's
    "Bugs this tool finds in real releases": a real library is never let through by a wider budget."""
    from optimizer_conformance.conformance.checks.diagnosis import diagnose
    from optimizer_conformance.conformance.checks.upstream import affecting

    described = {"library": "keras", "versions": {"keras": result.get("keras_version", "?")},
                 "backend": result["backend"], "compile": spec.get("compile", "eager")}
    bugs = affecting(described, spec["dtype"])
    found = diagnose(spec, result["states"], bugs) if bugs else None
    return found if found and set(found.split(" + ")) <= {b.id for b in bugs} else None
