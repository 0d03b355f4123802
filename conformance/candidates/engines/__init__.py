"""One engine per kind of candidate; :func:`make_engine` picks it from what the candidate is.

An engine describes its candidate (name, algorithms, dtypes, versions), runs a spec on it (announcing each
call into it on the worker's channel) and gives the API checks their :class:`Subject`.
"""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.engines.adapter import AdapterEngine
from optimizer_conformance.conformance.candidates.engines.base import is_legacy, resolve
from optimizer_conformance.conformance.candidates.engines.keras import KerasEngine
from optimizer_conformance.conformance.candidates.engines.legacy import LegacyEngine
from optimizer_conformance.conformance.candidates.protocol import is_adapter

Engine = KerasEngine | LegacyEngine | AdapterEngine


def make_engine(candidate: dict) -> Engine:
    """The engine for a candidate header ``{"kind": "keras" | "import", "target": ..., "compile": ...}``."""
    kind, target = candidate.get("kind", "keras"), candidate.get("target")
    if kind == "keras" and not target:
        return KerasEngine(None, candidate.get("compile", "eager"))
    obj = resolve(target)
    if is_adapter(obj):
        return AdapterEngine(target)
    if is_legacy(obj):
        return LegacyEngine(target)
    return KerasEngine(target, candidate.get("compile", "eager"))
