"""The worker protocol's messages (one JSON object per line): their keys and builders, imported by both sides.

    host → worker   load(...)      {"candidate": {"kind": "keras" | "import", "target": ..., "compile": ...}}
                    run(spec)      {"spec": {...}}                 (a trajectory: conformance.model)
                    api(...)       {"api": {"algorithm": ..., "examples": N, "checks": [...]}}
    worker → host   ready(...)     {"ready": true, "describe": {...}}
                    call(...)      {"call": "apply", "step": 3}    (before each call into the candidate)
                    states(...)    {"states": [{quantity: [hex, ...] or {"$attachment": k}}, ...]}
                    api_outcomes   {"api": [outcome, ...]}
                    not_applicable {"not_applicable": "why"}   (a Keras-based candidate: the Keras release in the
                                                                worker, the reference, refuses the configuration)
                    failed(...)    {"error": "...", "traceback": "..."}
"""

from __future__ import annotations

CANDIDATE, SPEC, API = "candidate", "spec", "api"
READY, DESCRIBE, CALL, STEP, STATES, NOT_APPLICABLE, ERROR, TRACEBACK = (
    "ready", "describe", "call", "step", "states", "not_applicable", "error", "traceback")


def load(kind: str, target: str | None, compile: str) -> dict:
    """Load a candidate (and switch to it, in a worker that already holds one)."""
    return {CANDIDATE: {"kind": kind, "target": target, "compile": compile}}


def run(spec: dict) -> dict:
    return {SPEC: spec}


def api(algorithm: str, examples: int, checks: list[str] | None) -> dict:
    return {API: {"algorithm": algorithm, "examples": examples, "checks": checks}}


def ready(description: dict) -> dict:
    return {READY: True, DESCRIBE: description}


def call(name: str, step: int | None) -> dict:
    return {CALL: name, STEP: step}


def states(values: list[dict]) -> dict:
    return {STATES: values}


def api_outcomes(outcomes: list[dict]) -> dict:
    return {API: outcomes}


def not_applicable(reason: str) -> dict:
    return {NOT_APPLICABLE: reason}


def failed(message: str, traceback: str | None = None) -> dict:
    return {ERROR: message} if traceback is None else {ERROR: message, TRACEBACK: traceback}


def kind_of(request: dict) -> str:
    """What a host's request asks: CANDIDATE, API or SPEC."""
    return next((key for key in (CANDIDATE, API, SPEC) if key in request), SPEC)


__all__ = ["API", "CALL", "CANDIDATE", "DESCRIBE", "ERROR", "NOT_APPLICABLE", "READY", "SPEC", "STATES", "STEP",
           "TRACEBACK", "api", "api_outcomes", "call", "failed", "kind_of", "load", "not_applicable", "ready",
           "run", "states"]
