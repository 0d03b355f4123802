"""What every engine shares: resolving an import path, what a candidate claims, the worker's array codec."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np
from optimizer_conformance.conformance.model import LACKABLE, decode, lacking
from optimizer_conformance.reference.formats import numpy_dtype
from optimizer_conformance.reference.rules import ALL

ALL_DTYPES = ("float32", "float64", "float16", "bfloat16")


def resolve(target: str) -> Any:
    """``package.module:Name`` (or ``package.module.Name``) to the object it names."""
    module_name, sep, attr = target.partition(":")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"candidate {target!r}: expected 'package.module:Name'")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def decode_in(values: list[str], shape: Any, dtype: str) -> np.ndarray:
    """Spec values as an array of the candidate's dtype (they are exactly representable in it)."""
    return decode(values, shape).astype(numpy_dtype(dtype))


def as_float64(quantity: str, value: Any) -> np.ndarray:
    """A reported quantity as float64 (bfloat16 arrays included); anything that is not numbers is an error."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" and array.dtype != np.dtype(numpy_dtype("bfloat16")):
        raise TypeError(f"state()[{quantity!r}] is not an array of numbers (dtype {array.dtype})")
    return array.astype(np.float64)


def is_legacy(obj: Any) -> bool:
    """A ``tf_keras.optimizers.legacy`` (OptimizerV2) class or a subclass of one."""
    mro = getattr(obj, "__mro__", None) or getattr(type(obj), "__mro__", ())
    return any((c.__module__ or "").startswith("tf_keras") and ".legacy" in c.__module__ for c in mro)


def claimed_algorithms(obj: Any) -> tuple[str, ...]:
    """What a candidate implements: what it says (``conformance_algorithms``), else what its class or name shows.

    A subclass of a rule's Keras class claims that rule (the most derived one: a subclass of ``AdamW`` is AdamW,
    not Adam); otherwise the longest rule name or class name its name contains."""
    claimed = getattr(obj, "conformance_algorithms", None) or getattr(obj, "algorithms", None)
    if claimed:
        return tuple(claimed)
    if is_legacy(obj):
        legacy = _named_in(obj, [rule for rule in ALL if rule.dialect.name == "tf-legacy"])
        if legacy:
            return legacy
    keras3 = [rule for rule in ALL if rule.dialect.name == "keras3"]
    if isinstance(obj, type):
        try:
            import keras

            classes = [(rule.name, getattr(keras.optimizers, rule.keras_class or "", None)) for rule in keras3]
            bases = [(name, cls) for name, cls in classes if isinstance(cls, type) and issubclass(obj, cls)]
            if bases:
                return (max(bases, key=lambda pair: len(pair[1].__mro__))[0],)
        except ImportError:
            pass
    return _named_in(obj, keras3)


def _named_in(obj: Any, rules: list) -> tuple[str, ...]:
    """The rule whose name or class name is the longest found in ``obj``'s name."""
    name = getattr(obj, "__name__", "").lower().replace("_", "")
    found = [(len(key), rule.name) for rule in rules
             for key in {rule.name.replace("-", ""), (rule.keras_class or "").lower()} if key and key in name]
    return (max(found)[1],) if found else ()


def declared_lacks(obj: Any) -> dict[str, str]:
    """The features ``obj`` declares it lacks, with why; a name outside :data:`LACKABLE` is an error."""
    lacks = getattr(obj, "conformance_lacks", None) or {}
    if not isinstance(lacks, dict) or not all(isinstance(v, str) for v in lacks.values()):
        raise ValueError("conformance_lacks must be a dict of feature name to reason (a string)")
    unknown = [k for k in lacks if k not in LACKABLE]
    if unknown:
        raise ValueError(f"conformance_lacks names {', '.join(map(repr, unknown))}: the features are "
                         f"{', '.join(LACKABLE)}")
    return dict(lacks)


def declared_lack(obj: Any, spec: dict) -> str | None:
    """Why the candidate says it cannot run ``spec``: the first feature it uses that the candidate lacks."""
    return lacking(spec, declared_lacks(obj))


def versions() -> dict[str, str]:
    """The versions of Python and of the frameworks the worker has imported."""
    out = {"python": sys.version.split()[0]}
    for name in ("keras", "tensorflow", "jax", "torch", "tf_keras", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            out[name] = getattr(module, "__version__", "?")
    return out


class StridedViews:
    """Arrays handed to a candidate as views into larger buffers (a spec's ``strided_views``), and a watch on what
    lies between them.

    Each view starts one element into its buffer and takes every other element along every axis: an offset and a
    stride on every axis, so that neither the view nor its flattening is contiguous (a kernel that flattens with a
    copy loses its in-place update; one that assumes contiguity reads the gaps).  The gaps hold a signalling
    pattern, and :meth:`check` says when a candidate wrote into one of a variable's."""

    def __init__(self) -> None:
        self._watched: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # name, buffer, gaps, pristine

    @staticmethod
    def _placed(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[slice, ...]]:
        if array.ndim == 0:
            array = array.reshape(1)
        where = tuple(slice(1, 1 + 2 * n, 2) for n in array.shape)
        buffer = np.empty(tuple(2 * n + 1 for n in array.shape), dtype=array.dtype)
        buffer.view(np.uint8)[...] = 0xA5  # bytes no update leaves there: -2.9e-16 in float32, -0.022 in float16
        buffer[where] = array
        return buffer, buffer[where].reshape(array.shape if array.ndim else ()), where

    def variable(self, name: str, array: np.ndarray) -> np.ndarray:
        """``array`` copied into a strided view whose gaps are watched."""
        buffer, view, where = self._placed(array)
        gaps = np.ones(buffer.shape, dtype=bool)
        gaps[where] = False
        self._watched.append((name, buffer, gaps, buffer[gaps].copy()))
        return view

    def gradient(self, array: np.ndarray | None) -> np.ndarray | None:
        """``array`` copied into a strided view."""
        return None if array is None else self._placed(array)[1]

    def check(self, during: str) -> None:
        """``RuntimeError`` naming the first variable whose buffer changed outside its view."""
        for name, buffer, gaps, pristine in self._watched:
            now = buffer[gaps]
            if now.tobytes() != pristine.tobytes():
                width = now.itemsize
                changed = int((now.view(np.uint8).reshape(-1, width) != pristine.view(np.uint8).reshape(-1, width))
                              .any(axis=1).sum())
                raise RuntimeError(f"the candidate wrote outside variable {name!r}'s strided view during {during} "
                                   f"({changed} elements between its elements changed): out of bounds")
