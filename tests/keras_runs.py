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
