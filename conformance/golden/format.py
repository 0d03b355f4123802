"""The golden-trajectory fixture format (version 1): encode, load and verify a fixture file.

A fixture is one JSON document (schema: ``conformance/schemas/fixture-1.schema.json``;
guide for port authors: ``fixtures/README.md``).  Loading never executes
anything: the file is parsed as JSON, validated against the schema, checked
for internal consistency (lengths against shapes, one gradient per
variable, one state per apply) and for integrity (``sha256`` over the
canonical serialization).  Every rejection is a :class:`FixtureError` naming
the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gmpy2 import mpfr
from optimizer_conformance.conformance import files
from optimizer_conformance.reference.pipeline import budget_ratios

FORMAT = "optimizer-conformance-fixture"
FORMAT_VERSION = 1
EXACT_DIGITS = 34
EXACT_BITS = 128  # holds 34 significant digits (113 bits) with room to spare


class FixtureError(ValueError):
    """A fixture file that cannot be trusted: says which file and which field."""

    def __init__(self, path: str | Path, field: str, problem: str) -> None:
        self.path, self.field, self.problem = str(path), field, problem
        super().__init__(f"{path}: {field}: {problem}")


def schema() -> dict:
    return files.schema("fixture-1")


def canonical_bytes(document: dict) -> bytes:
    body = {k: v for k, v in document.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def content_hash(document: dict) -> str:
    return hashlib.sha256(canonical_bytes(document)).hexdigest()


def dumps(document: dict) -> str:
    """The file's text: deterministic, so regeneration is reproducible byte for byte."""
    return json.dumps(document, indent=1, ensure_ascii=True, allow_nan=False) + "\n"


def encode_values(array) -> dict[str, list[str]]:
    flat = np.asarray(array, dtype=np.float64).reshape(-1).tolist()
    return {"hex": [float(x).hex() for x in flat], "decimal": [repr(float(x)) for x in flat]}


def encode_exact(x: mpfr) -> str:
    return format(x, f".{EXACT_DIGITS - 1}e")


# The stored exact values carry 34 significant digits; each stored budget includes that resolution, so
# that |mine - exact| <= budget holds against the decimal as written (a budget of 0, for a value every
# implementation computes exactly, becomes 1e-33 relative).
DECIMAL_RESOLUTION = 1e-33


def encode_budget(b: float, exact: mpfr) -> float | None:
    if not math.isfinite(float(exact)):
        return 0.0  # NaN or ±Inf: matched by kind (a non-finite candidate agrees), not by a distance
    return None if math.isinf(b) else float(b) + abs(float(exact)) * DECIMAL_RESOLUTION


def _field(path: list) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(document)"


@dataclass(frozen=True)
class Fixture:
    """A loaded, verified fixture."""

    path: str
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return self.document["name"]

    @property
    def algorithm(self) -> str:
        return self.document["algorithm"]

    @property
    def config(self) -> dict[str, Any]:
        return self.document["config"]

    @property
    def budget_dtypes(self) -> list[str]:
        return self.document["budget_dtypes"]

    @property
    def spec_options(self) -> dict[str, Any]:
        """``overwrite_with_gradient`` (indices), ``constraints`` (index → serialized constraint),
        ``loss_scale_optimizer`` (the wrapper's arguments), ``sparse_gradients`` (indices), ``sparse_duplicate_rows``
        and ``variable_dtypes`` (index → dtype), those used."""
        return {key: self.document[key] for key in ("overwrite_with_gradient", "constraints", "loss_scale_optimizer",
                                                    "sparse_gradients", "sparse_duplicate_rows", "variable_dtypes")
                if self.document.get(key)}

    def variables(self) -> list[tuple[str, np.ndarray]]:
        return [(v["name"], _decode(v["initial"], v["shape"])) for v in self.document["variables"]]

    def gradients(self) -> list[list[np.ndarray | None]]:
        shapes = [v["shape"] for v in self.document["variables"]]
        return [[None if g is None else _decode(g, s) for g, s in zip(step, shapes)]
                for step in self.document["gradients"]]

    def exact(self, state: int, quantity: str) -> list[mpfr]:
        # Parsed at EXACT_BITS, not the context's default 53 bits: rounding the stored 34 digits to a float
        # would move the exact value by up to half an ulp of float64 and fail honest float64 candidates.
        return [mpfr(x, EXACT_BITS) for x in self.document["states"][state]["exact"][quantity]]

    def budget(self, state: int, quantity: str, dtype: str) -> np.ndarray:
        values = self.document["states"][state]["budget"][dtype][quantity]
        return np.array([math.inf if b is None else b for b in values])

    def ratios(self, state: int, quantity: str, dtype: str, candidate) -> np.ndarray:
        """``|candidate − exact| / budget`` for one quantity of one state (0 where the budget is unbounded)."""
        exact = self.exact(state, quantity)
        budget = self.budget(state, quantity, dtype)
        flat = np.asarray(candidate, dtype=np.float64).reshape(-1)
        if flat.size != len(exact):
            raise ValueError(f"{quantity}: candidate has {flat.size} elements, the fixture {len(exact)}")
        return budget_ratios(flat, exact, budget)


def _decode(values: dict, shape) -> np.ndarray:
    return np.array([float.fromhex(h) for h in values["hex"]], dtype=np.float64).reshape(shape)


def load(path: str | Path) -> Fixture:
    """Read and verify one fixture file; :class:`FixtureError` on anything untrustworthy."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as error:
        raise FixtureError(path, "(file)", f"not ASCII JSON ({error.reason} at byte {error.start})") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise FixtureError(path, "(file)", f"not valid JSON (truncated or corrupted?): {error}") from None
    except RecursionError:
        raise FixtureError(path, "(file)", "JSON nested too deeply to be a fixture (a fixture nests a few "
                                           "levels)") from None
    try:
        return verify(document, path)
    except RecursionError:
        raise FixtureError(path, "(file)", "JSON nested too deeply to be a fixture") from None


def _reject_constant(name: str):
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def verify(document: Any, path: str | Path = "<document>") -> Fixture:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    # The per-step arrays hold most of a long fixture; the schema validates their shape on a sample and
    # the loops below check every element (a compiled pattern is a hundred times faster than jsonschema).
    errors = sorted(validator.iter_errors(_sampled(document)),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        error = errors[0]
        raise FixtureError(path, _field(list(error.absolute_path)), error.message[:300])
    _check_state_values(document, path)
    _check_consistency(document, path)
    stored, actual = document["sha256"], content_hash(document)
    if stored != actual:
        raise FixtureError(path, "sha256", f"content hash mismatch (stored {stored[:12]}…, content {actual[:12]}…): "
                                           "the file was modified after generation")
    return Fixture(str(path), document)


def _sampled(document: Any) -> Any:
    """The document with its long per-step lists cut to a few entries, for the schema's structural check."""
    if not isinstance(document, dict):
        return document
    out = dict(document)
    for key in ("states", "gradients"):
        if isinstance(out.get(key), list) and len(out[key]) > 4:
            out[key] = out[key][:3] + out[key][-1:]
    if isinstance(out.get("states"), list):
        out["states"] = [_sampled_state(s) for s in out["states"]]
    return out


def _sampled_state(state: Any) -> Any:
    if not (isinstance(state, dict) and isinstance(state.get("exact"), dict) and isinstance(state.get("budget"), dict)):
        return state
    state = dict(state)
    state["exact"] = {q: v[:2] if isinstance(v, list) else v for q, v in state["exact"].items()}
    state["budget"] = {d: {q: v[:2] if isinstance(v, list) else v for q, v in b.items()}
                       if isinstance(b, dict) else b for d, b in state["budget"].items()}
    return state


_EXACT = re.compile(r"-?[0-9]\.[0-9]{33}e[+-][0-9]{2,4}|-?inf|nan")


_STATE_KEYS = {"after", "iterations", "exact", "budget"}
_AFTER = re.compile(r"apply [0-9]+|finalize_variable_values")
_HEX = re.compile(r"-?0x[01]\.[0-9a-f]+p[+-][0-9]+")
# A gradient may be non-finite: IEEE arithmetic carries it (or a LossScaleOptimizer skips its step).
_NON_FINITE = {"inf", "-inf", "nan"}


def _check_state_values(doc: dict, path) -> None:
    for k, state in enumerate(doc["states"]):
        if not isinstance(state, dict) or set(state) != _STATE_KEYS:
            raise FixtureError(path, f"states[{k}]", f"must be an object with exactly the keys {sorted(_STATE_KEYS)}")
        if not isinstance(state["after"], str) or not _AFTER.fullmatch(state["after"]):
            raise FixtureError(path, f"states[{k}].after", f"{state['after']!r} is not 'apply N' or a finalize")
        if isinstance(state["iterations"], bool) or not isinstance(state["iterations"], int) or state["iterations"] < 0:
            raise FixtureError(path, f"states[{k}].iterations", f"{state['iterations']!r} is not a count")
        if not isinstance(state["exact"], dict) or not isinstance(state["budget"], dict):
            raise FixtureError(path, f"states[{k}]", "exact and budget must be objects")
        for q, values in state["exact"].items():
            if not isinstance(values, list):
                raise FixtureError(path, f"states[{k}].exact.{q}", "must be an array")
            for j, x in enumerate(values):
                if not isinstance(x, str) or not _EXACT.fullmatch(x):
                    raise FixtureError(path, f"states[{k}].exact.{q}[{j}]", f"{x!r} is not a 34-digit decimal")
        for dtype, per_quantity in state["budget"].items():
            if not isinstance(per_quantity, dict) or not all(isinstance(v, list) for v in per_quantity.values()):
                raise FixtureError(path, f"states[{k}].budget.{dtype}", "must map quantities to arrays")
            for q, values in per_quantity.items():
                for j, b in enumerate(values):
                    if b is not None and (isinstance(b, bool) or not isinstance(b, (int, float)) or not b >= 0):
                        raise FixtureError(path, f"states[{k}].budget.{dtype}.{q}[{j}]",
                                           f"{b!r} is not a non-negative number or null")


def _check_consistency(doc: dict, path) -> None:
    variables = doc["variables"]
    for i, v in enumerate(variables):
        size = math.prod(v["shape"])
        for key in ("hex", "decimal"):
            if len(v["initial"][key]) != size:
                raise FixtureError(path, f"variables[{i}].initial.{key}",
                                   f"{len(v['initial'][key])} values for shape {v['shape']}")
        _check_hex_decimal(path, f"variables[{i}].initial", v["initial"])
    for k, step in enumerate(doc["gradients"]):
        if not isinstance(step, list) or len(step) != len(variables):
            raise FixtureError(path, f"gradients[{k}]", f"must be an array of {len(variables)} gradients (one per "
                                                        "variable, null for None)")
        for i, g in enumerate(step):
            if g is None:
                continue
            size = math.prod(variables[i]["shape"])
            _check_hex_decimal(path, f"gradients[{k}][{i}]", g, non_finite=True)
            if len(g["hex"]) != size or len(g["decimal"]) != size:
                raise FixtureError(path, f"gradients[{k}][{i}]",
                                   f"wrong number of values for shape {variables[i]['shape']}")
    expected_states = len(doc["gradients"]) + (1 if doc["finalize"] else 0)
    if len(doc["states"]) != expected_states:
        raise FixtureError(path, "states", f"{len(doc['states'])} states for {len(doc['gradients'])} apply calls"
                                           + (" and a finalize" if doc["finalize"] else ""))
    for k, state in enumerate(doc["states"]):
        sizes = {q: len(v) for q, v in state["exact"].items()}
        for dtype in doc["budget_dtypes"]:
            budgets = state["budget"].get(dtype)
            if budgets is None:
                raise FixtureError(path, f"states[{k}].budget.{dtype}", "missing budgets for a declared budget dtype")
            for q, n in sizes.items():
                if len(budgets.get(q, ())) != n:
                    raise FixtureError(path, f"states[{k}].budget.{dtype}.{q}", f"expected {n} budgets")


def _check_hex_decimal(path, field: str, values: dict, non_finite: bool = False) -> None:
    if not isinstance(values, dict) or set(values) != {"hex", "decimal"} or not all(
            isinstance(values[k], list) for k in values):
        raise FixtureError(path, field, "must be an object with 'hex' and 'decimal' arrays")
    for j, (h, d) in enumerate(zip(values["hex"], values["decimal"])):
        if non_finite and h in _NON_FINITE:
            if d != h:
                raise FixtureError(path, f"{field}.decimal[{j}]", f"{d!r} does not match the exact value {h}")
            continue
        if not isinstance(h, str) or not _HEX.fullmatch(h):
            raise FixtureError(path, f"{field}.hex[{j}]", f"{h!r} is not a hex float" + (
                "" if non_finite else " (only gradients may be non-finite)"))
        if not isinstance(d, str):
            raise FixtureError(path, f"{field}.decimal[{j}]", f"{d!r} is not a string")
        try:
            same = float.fromhex(h) == float(d)
        except ValueError:
            same = False
        if not same:
            raise FixtureError(path, f"{field}.decimal[{j}]", f"{d!r} does not match the exact value {h}")
