"""One engine per kind of candidate; :func:`make_engine` picks it from what the candidate is.

An engine describes its candidate (name, algorithms, dtypes, versions), runs a spec on it (announcing each
call into it on the worker's channel) and gives the API checks their :class:`Subject`.
"""

from __future__ import annotations

from optimizer_conformance.conformance.candidates.builtin import builtin_adapter
from optimizer_conformance.conformance.candidates.engines.adapter import AdapterEngine
from optimizer_conformance.conformance.candidates.engines.base import is_legacy, resolve
from optimizer_conformance.conformance.candidates.engines.keras import KerasEngine
from optimizer_conformance.conformance.candidates.engines.keras2 import Keras2Engine, is_keras2
from optimizer_conformance.conformance.candidates.engines.legacy import LegacyEngine
from optimizer_conformance.conformance.candidates.protocol import is_adapter

Engine = KerasEngine | LegacyEngine | Keras2Engine | AdapterEngine


def make_engine(candidate: dict) -> Engine:
    """The engine for a candidate header ``{"kind": "keras" | "import", "target": ..., "compile": ...}``: a real
    library this project knows (torch.optim, optax) through its built-in adapter
    (:mod:`conformance.candidates.builtin`), an adapter, a tf_keras legacy optimizer, a tf_keras Keras 2 optimizer,
    or a Keras-style class."""
    kind, target = candidate.get("kind", "keras"), candidate.get("target")
    if kind == "keras" and not target:
        return KerasEngine(None, candidate.get("compile", "eager"))
    obj = resolve(target)
    builtin = builtin_adapter(obj, target, candidate.get("compile", "eager"))
    if builtin is not None:
        return AdapterEngine(target, builtin)
    if is_adapter(obj):
        return AdapterEngine(target)
    if is_legacy(obj):
        return LegacyEngine(target)
    if is_keras2(obj):  # a Keras 2 class is never run as a Keras 3 class
        return Keras2Engine(target)
    return KerasEngine(target, candidate.get("compile", "eager"))
