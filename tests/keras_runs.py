"""Real Keras run on specs, in a worker process per backend (the agreement and golden tests use it)."""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.client import Candidate, Worker


def run_keras(specs: list[dict], backend: str, timeout: float = 600) -> list[dict]:
    """Run real Keras on ``backend`` for each spec; ``[{"states": ..., "keras_version": ..., "backend": ...}]``."""
    modes = {s.get("compile", "eager") for s in specs}
    if len(modes) != 1:
        raise ValueError(f"run_keras: one compile mode per call; got {sorted(modes)}")
    with Worker(Candidate(None, backend, modes.pop()), timeout) as worker:
        version = worker.description["versions"].get("keras", "?")
        return [{"states": worker.run(s), "keras_version": version, "backend": backend} for s in specs]
