"""The harness's data model: trajectory specs, findings, outcomes, cases and profiles (a leaf: NumPy only).

Everything above this module speaks in these terms: the candidates' worker receives a *spec* and answers
with *states*; a check judges states into *findings* (``|candidate − exact| / budget`` at one element of
one quantity at one step) and gathers them in an *outcome*, the one result type of every check, numeric
or API, that the runner yields, the report prints and the JSON carries.

A spec is JSON-ready::

    {"algorithm": "adam", "config": {...}, "dtype": "float32",
     "variables": [[name, shape, [hex, ...]], ...], "gradients": [[[hex, ...] or None, ...], ...],
     "exclude": {"var_names": [...], "var_list": [...]}, "compile": "eager", "finalize": false,
     "overwrite_with_gradient": [index, ...], "constraints": {"index": serialized constraint},
     "loss_scale_optimizer": {"initial_scale": s, "dynamic_growth_steps": G}}

The last three are present only when used; the last wraps the optimizer in Keras's ``LossScaleOptimizer``
(the gradients are then the scaled ones, and may be non-finite: ``"inf"``, ``"-inf"``, ``"nan"``).  The other options
(``sparse_gradients``, ``sparse_duplicate_rows``, ``variable_dtypes``, ``floatx``, ``strided_views``) are
described on :class:`Spec`.

Floats travel exactly: as ``float.hex`` strings, or, for an array of :data:`PACKED_ELEMENTS` elements or more, as a
:class:`PackedArray` (its little-endian IEEE float64 bytes; a million elements as hex strings take seconds to write
and read).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Profile:
    """How much a run does: steps per generated trajectory, hypothesis examples, long fixtures, whether each
    pipeline feature runs on every rule in every dtype (``every_combination``) or on every rule and in every dtype
    (pairwise: :func:`conformance.cases.catalogue.pipeline_cases`), and the size of the scale check's tensors."""

    name: str
    steps: int
    explore_examples: int
    long_fixtures: bool
    api_examples: int = 60
    every_combination: bool = False
    scale_elements: int = 0  # the scale check's largest variable (conformance.cases.scale); 0: no scale check


PROFILES = {
    "quick": Profile("quick", 3, 5, False, 20),
    "ci": Profile("ci", 6, 20, False, 60, scale_elements=2**20),
    "deep": Profile("deep", 16, 300, True, 500, every_combination=True, scale_elements=10 * 2**20),
}

def first_line(text: object, width: int = 160) -> str:
    """The first line of ``text``, shortened at a word boundary with an ellipsis when longer than ``width`` (never
    cut mid-word; the JSON keeps what the check recorded in full where it records it)."""
    line = str(text).splitlines()[0] if str(text) else ""
    if len(line) <= width:
        return line
    cut = line[:width - 1]
    if line[width - 1] != " " and " " in cut:  # the cut falls inside a word: end before it
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


# What a port may declare it lacks (``conformance_lacks`` on its class, ``--lacks``, ``optconf_lacks``): the
# configuration's switches, the spec's options, and a learning-rate schedule.  A trajectory that uses one is then
# not applicable to it.
LACKABLE = ("use_ema", "ema_overwrite_frequency", "gradient_accumulation_steps", "clipnorm", "global_clipnorm",
            "clipvalue", "weight_decay", "loss_scale_factor", "amsgrad", "learning_rate_schedule",
            "loss_scale_optimizer", "constraints", "overwrite_with_gradient", "sparse_gradients", "variable_dtypes")


def _uses(spec: dict, feature: str) -> bool:
    if feature == "learning_rate_schedule":
        return isinstance(spec["config"].get("learning_rate"), dict)
    return bool(spec["config"].get(feature) or spec.get(feature))


def lacking(spec: dict, lacks: Mapping[str, str]) -> str | None:
    """Why a port that lacks ``lacks`` (feature -> why) cannot run ``spec``: the first lacked feature it uses."""
    for feature, reason in lacks.items():
        if _uses(spec, feature):
            return f"the candidate declares it lacks {feature}: {reason}"
    return None


# -- the spec ----------------------------------------------------------------------------------------------


# An array of this many elements or more is held packed (see the module's docstring).
PACKED_ELEMENTS = 4096
PACKED = "float64le"


class PackedArray:
    """A large array's exact elements, flat, as float64 (what :func:`encode` gives from :data:`PACKED_ELEMENTS`
    elements on): the worker protocol carries it beside its JSON line as raw bytes
    (:mod:`conformance.candidates.framing`); its JSON form is ``{"float64le": base64}`` (:meth:`to_json`)."""

    __slots__ = ("values",)

    def __init__(self, values: Any) -> None:
        flat = np.array(values, dtype="<f8").reshape(-1)  # a copy: the array it came from may change
        flat.flags.writeable = False
        self.values = flat

    @classmethod
    def from_bytes(cls, raw: bytes) -> PackedArray:
        """Little-endian float64 bytes; ``ValueError`` when they are not a whole number of them."""
        if len(raw) % 8:
            raise ValueError(f"a packed array holds {len(raw)} bytes, not a whole number of float64s")
        packed = cls.__new__(cls)
        packed.values = np.frombuffer(raw, dtype="<f8")
        return packed

    def to_bytes(self) -> bytes:
        return self.values.tobytes()

    def to_json(self) -> dict[str, str]:
        return {PACKED: base64.b64encode(self.to_bytes()).decode("ascii")}

    def digest(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def __len__(self) -> int:
        return self.values.size

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedArray) and self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # its values are an array's

    def __repr__(self) -> str:
        return f"PackedArray({self.values.size} elements, sha256 {self.digest()[:16]})"


def encode(array: Any) -> list[str] | PackedArray:
    """An array's elements, flat and exact: ``float.hex`` strings, or packed from :data:`PACKED_ELEMENTS` on."""
    flat = np.asarray(array, dtype=np.float64).reshape(-1)
    if flat.size >= PACKED_ELEMENTS:
        return PackedArray(flat)
    return [float(x).hex() for x in flat]


def decode(values: list[str] | PackedArray | dict[str, str], shape: Any) -> np.ndarray:
    """:func:`encode`'s forms (and a packed array's JSON form) back to a float64 array of ``shape``; ``ValueError``
    naming what is wrong."""
    if isinstance(values, PackedArray):
        return values.values.astype(np.float64).reshape(shape)
    if isinstance(values, dict):
        if set(values) != {PACKED} or not isinstance(values[PACKED], str):
            raise ValueError(f"a packed array is {{{PACKED!r}: base64 string}}; got keys {sorted(map(str, values))}")
        try:
            raw = binascii.a2b_base64(values[PACKED], strict_mode=True)  # b64decode's validation is 10x slower
        except binascii.Error as error:
            raise ValueError(f"a packed array's {PACKED} is not base64: {error}") from None
        return decode(PackedArray.from_bytes(raw), shape)
    return np.array([float.fromhex(v) for v in values], dtype=np.float64).reshape(shape)


@dataclass(frozen=True)
class Spec:
    """One trajectory to run: what the worker receives (``to_json``) and reads back (``from_json``)."""

    algorithm: str
    config: dict
    dtype: str
    variables: list  # [[name, shape, [hex, ...]], ...]
    gradients: list  # [[[hex, ...] or None, ...], ...] per step
    exclude: dict = field(default_factory=dict)
    compile: str = "eager"
    finalize: bool = False
    overwrite_with_gradient: list = field(default_factory=list)
    constraints: dict = field(default_factory=dict)  # {"index": serialized constraint}
    loss_scale_optimizer: dict | None = None
    sparse_gradients: list = field(default_factory=list)
    floatx: str = "float32"
    variable_dtypes: dict = field(default_factory=dict)  # {"index": dtype}: variables not in ``dtype``
    sparse_duplicate_rows: bool = False  # each touched row of a sparse gradient given twice (see row_slices)
    # Variables and gradients handed over as views with an offset and a stride into larger buffers, where the
    # candidate's array type has views (the adapter protocol's NumPy arrays; Keras variables own their storage).
    strided_views: bool = False

    REQUIRED = ("algorithm", "config", "dtype", "variables", "gradients")

    def to_json(self) -> dict:
        """The JSON form: the options only where used (``floatx`` only when it is not float32)."""
        options = variable_options({"overwrite_with_gradient": list(self.overwrite_with_gradient),
                                    "constraints": dict(self.constraints),
                                    "variable_dtypes": dict(self.variable_dtypes)})
        if self.loss_scale_optimizer:
            options["loss_scale_optimizer"] = dict(self.loss_scale_optimizer)
        if self.sparse_gradients:
            options["sparse_gradients"] = [int(i) for i in self.sparse_gradients]
            if self.sparse_duplicate_rows:
                options["sparse_duplicate_rows"] = True
        if self.floatx != "float32":
            options["floatx"] = self.floatx
        if self.strided_views:
            options["strided_views"] = True
        return {**options, "algorithm": self.algorithm, "config": self.config, "dtype": self.dtype,
                "variables": self.variables, "gradients": self.gradients, "exclude": self.exclude,
                "compile": self.compile, "finalize": self.finalize}

    @classmethod
    def from_json(cls, data: Any) -> Spec:
        """A spec from its JSON form; ``ValueError`` naming what is missing, unknown or of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError(f"a spec is a JSON object; got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        missing = [k for k in cls.REQUIRED if k not in data]
        if unknown or missing:
            parts = ([f"unknown {', '.join(unknown)}"] if unknown else []) + (
                [f"missing {', '.join(missing)}"] if missing else [])
            raise ValueError(f"spec: {'; '.join(parts)}")
        for key, kind in (("algorithm", str), ("config", dict), ("dtype", str), ("variables", list),
                          ("gradients", list), ("exclude", dict), ("constraints", dict), ("floatx", str),
                          ("variable_dtypes", dict), ("sparse_duplicate_rows", bool), ("strided_views", bool)):
            if key in data and not isinstance(data[key], kind):
                raise ValueError(f"spec: {key} must be a {kind.__name__}; got {type(data[key]).__name__}")
        return cls(**{k: v for k, v in data.items() if v is not None or k == "loss_scale_optimizer"})


def make_spec(algorithm: str, config: dict, dtype: str, variables: list[tuple[str, Any]],
              gradients: list[list[Any | None]], *, exclude: dict | None = None, compile: str = "eager",
              finalize: bool = False, overwrite_with_gradient: Any = (), constraints: dict | None = None,
              loss_scale_optimizer: dict | None = None, sparse_gradients: Any = (), floatx: str = "float32",
              variable_dtypes: dict | None = None, sparse_duplicate_rows: bool = False) -> dict:
    """A JSON-ready spec (:class:`Spec`) from ``variables = [(name, array)]`` and ``gradients = [[array or None]]``;
    ``floatx`` (Keras's ``floatx()``, the dtype of its learning-rate variable) appears only when it is not float32;
    ``variable_dtypes`` (index -> dtype) gives a variable a dtype of its own, its gradients held in it too;
    ``sparse_duplicate_rows``: each row of a sparse gradient comes twice (:func:`row_slices`)."""
    return Spec(algorithm, config, dtype, [[name, list(np.shape(a)), encode(a)] for name, a in variables],
                [[None if g is None else encode(g) for g in step] for step in gradients], exclude or {}, compile,
                finalize, list(overwrite_with_gradient), {str(i): c for i, c in (constraints or {}).items()},
                loss_scale_optimizer, list(sparse_gradients), floatx,
                {str(i): d for i, d in (variable_dtypes or {}).items()},
                bool(sparse_duplicate_rows and sparse_gradients)).to_json()


def row_slices(dense: np.ndarray, duplicate: bool = False) -> tuple[list[int], np.ndarray]:
    """A sparse gradient as an embedding lookup delivers it: the indices of its rows that are not all zero and
    those rows' values (``tf.IndexedSlices``, a ``BCOO`` over the first axis).  ``duplicate``: each such row comes
    twice, as a lookup that meets a token twice gives it: first every row's half rounded to the gradient's dtype,
    then every row's rest, ``g − [g/2]``, which that dtype holds exactly (a halving is exact but in the subnormal
    range, where both lie on one grid), so the slices sum to the dense gradient exactly."""
    rows = [r for r in range(dense.shape[0]) if dense[r].any()]
    values = dense[rows]
    if not duplicate:
        return rows, values
    half = (values / 2).astype(values.dtype)
    rest = values - half
    if not np.array_equal(half + rest, values):
        raise ValueError("row_slices: the halves of a row do not sum to it exactly")
    return rows + rows, np.concatenate([half, rest])


def spec_floatx(spec: dict) -> str:
    """The ``floatx`` a spec runs under (float32 unless it says)."""
    return spec.get("floatx", "float32")


def with_floatx(spec: dict, floatx: str) -> dict:
    """``spec`` run under ``floatx``."""
    out = {k: v for k, v in spec.items() if k != "floatx"}
    return out if floatx == "float32" else {**out, "floatx": floatx}


def variable_options(spec: dict) -> dict:
    """A spec's options of its variables as ``ReferenceOptimizer.build`` takes them (only those used)."""
    return {key: spec[key] for key in ("overwrite_with_gradient", "constraints", "variable_dtypes") if spec.get(key)}


def variable_dtype(spec: dict, index: int) -> str:
    """The dtype of variable ``index`` of ``spec`` (and of its gradients): its own, else the spec's."""
    return (spec.get("variable_dtypes") or {}).get(str(index), spec["dtype"])


def spec_inputs(spec: dict) -> tuple[list[tuple[str, np.ndarray]], list[list[np.ndarray | None]]]:
    """A spec's initial variables ``[(name, array)]`` and gradients ``[[array or None]]``, as float64."""
    variables = [(name, decode(values, shape)) for name, shape, values in spec["variables"]]
    gradients = [[None if g is None else decode(g, shape) for g, (_, shape, _) in zip(step, spec["variables"])]
                 for step in spec["gradients"]]
    return variables, gradients


def describe_spec(spec: dict) -> str:
    """A short, reproducible description of a trajectory: its whole configuration, shapes and steps."""
    config = spec["config"]  # complete: a 0.0 or a False is part of the case
    shapes = [tuple(shape) for _, shape, _ in spec["variables"]]
    crc = zlib.crc32(repr(spec).encode()) & 0xFFFF
    missing = [(k + 1, i) for k, step in enumerate(spec["gradients"]) for i, g in enumerate(step) if g is None]
    nones = f", None gradients at (step, variable) {missing}" if missing else ""
    exclude = f", exclude {spec['exclude']}" if spec.get("exclude") else ""
    finalize = ", then finalize" if spec.get("finalize") else ""
    wrapped = {key: spec[key] for key in ("loss_scale_optimizer", "sparse_gradients", "sparse_duplicate_rows",
                                          "strided_views") if spec.get(key)}
    options = "".join(f", {key} {value}" for key, value in {**variable_options(spec), **wrapped}.items())
    return (f"{spec['algorithm']} in {spec['dtype']}, config {config}, variables {shapes}, "
            f"{len(spec['gradients'])} steps{nones}{exclude}{options}{finalize} [#{crc:04x}]")


# -- findings and errors -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The worst element of one quantity at one step: ``ratio = |candidate − exact| / budget``."""

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

    def to_json(self) -> dict:
        return {"quantity": self.quantity, "step": self.step, "element": self.element,
                "candidate": number(self.candidate), "exact": number(self.exact), "budget": number(self.budget),
                "ratio": number(self.ratio)}

    @classmethod
    def from_json(cls, data: dict) -> Finding:
        return cls(data["quantity"], data["step"], data["element"], float(data["ratio"]), float(data["candidate"]),
                   float(data["exact"]), float(data["budget"]))


def number(x: float) -> float | str:
    """JSON has no infinities or NaN: those travel as the strings ``"inf"``, ``"-inf"``, ``"nan"``."""
    return x if np.isfinite(x) else str(float(x))


class JudgeError(ValueError):
    """The candidate's states cannot be judged as reported: what it reported against what was expected."""


class RunError(RuntimeError):
    """The candidate raised, hung or died while running a request: a failed check, with what is known."""

    def __init__(self, message: str, traceback: str = "", call: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback
        self.call = call  # the call into the candidate in progress ("apply", "api/resume", ...)


class CandidateLost(RunError):
    """The candidate hung, killed its worker or broke the protocol: the worker is gone and restarts."""


class NotApplicable(Exception):
    """The case needs what the reference itself lacks (an argument the Keras release under test rejects)."""


# -- cases and outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One trajectory a check runs: a spec, or why it cannot run (a damaged fixture: an error row)."""

    check: str
    algorithm: str
    dtype: str
    spec: dict | None
    label: str
    fixture: Any = None  # the loaded fixture the states are judged against (the fixtures check)
    problem: str | None = None


@dataclass
class Outcome:
    """The verdict of one check (per algorithm, and per dtype for the numeric checks; ``dtype`` None: API)."""

    algorithm: str
    check: str
    dtype: str | None
    cases: int = 0
    worst: Finding | None = None
    worst_case: str = ""
    error: str | None = None
    diagnosis: str | None = None  # the id of the known deviation the failure matches (checks.deviations)
    example: dict | None = None  # the shrunk failing example: summary, spec, others, fixture
    problems: list[str] = field(default_factory=list)  # what an API check found to differ from Keras
    not_applicable: str | None = None
    skipped: list[str] = field(default_factory=list)  # cases left out, each with why (not applicable)
    # The id of a catalogued upstream bug of the library the candidate runs on (checks.upstream) that explains a
    # failing case; ``unexplained``: a failing case it does not explain.  Together: the verdict.
    upstream: str | None = None
    unexplained: bool = False
    duration: float | None = None  # wall seconds the check took (its cases run and judged)
    trace: dict | None = None  # the worst case drawn: each quantity's ratio per step, the worst element's values

    @property
    def judged(self) -> bool:
        """Whether anything was compared: a numeric check needs a finding, an API check a case."""
        return self.worst is not None or (self.dtype is None and self.cases > 0)

    @property
    def passed(self) -> bool:
        """Earned only: applicable, judged, no error or problem, every ratio within budget."""
        return (self.not_applicable is None and self.error is None and not self.problems and self.judged
                and (self.worst is None or self.worst.ratio <= 1.0))

    @property
    def known_upstream_bug(self) -> bool:
        """Failed only where a catalogued bug of the library the candidate runs on, present in its release, says
        it would: an expected failure (``--strict`` makes it a failure)."""
        return (self.not_applicable is None and not self.passed and self.error is None and not self.unexplained
                and self.upstream is not None)

    @property
    def failed(self) -> bool:
        return self.not_applicable is None and not self.passed and not self.known_upstream_bug

    @property
    def verdict(self) -> str:
        if self.passed:
            return "pass"
        if self.known_upstream_bug:
            return "known upstream bug"
        return "fail" if self.failed else "not applicable"

    def explain(self, diagnosis: str | None, upstream: set[str]) -> None:
        """A failing case's diagnosis: the outcome's first one is kept; ``upstream``, the ids of the catalogued
        upstream bugs the candidate has, decides whether it is an expected failure."""
        if self.diagnosis is None:
            self.diagnosis = diagnosis
        if diagnosis is not None and all(part in upstream for part in diagnosis.split(" + ")):
            self.upstream = self.upstream or diagnosis
        else:
            self.unexplained = True

    def close(self) -> Outcome:
        """A check that ran and judged nothing is an error, never a silent pass (or, when every case it had was
        not applicable, not applicable)."""
        if self.not_applicable is None and self.error is None and not self.problems and not self.judged:
            if self.skipped:
                self.not_applicable = self.skipped[0]
            else:
                self.error = "nothing was judged: the candidate's states held nothing to compare"
        return self

    def skip(self, case: str, reason: str) -> None:
        """A case that does not apply (the reference rejects it): left out, with why."""
        self.skipped.append(f"{case}: {reason}")

    def absorb(self, finding: Finding | None, case: str) -> None:
        """One more case judged, and its worst finding kept if it is the worst so far."""
        self.cases += 1
        if finding is not None:
            self.keep_worst(finding, case)

    def keep_worst(self, finding: Finding, case: str) -> None:
        if self.worst is None or finding.ratio > self.worst.ratio:
            self.worst, self.worst_case = finding, case

    def fail(self, case: str, message: str) -> None:
        """A case that could not be judged: the first such message is the outcome's error."""
        self.cases += 1
        self.error = self.error or f"{case}: {message}"

    def to_json(self) -> dict:
        return {"algorithm": self.algorithm, "check": self.check, "dtype": self.dtype, "verdict": self.verdict,
                "cases": self.cases, "worst": None if self.worst is None else self.worst.to_json(),
                "worst_case": self.worst_case, "error": self.error, "diagnosis": self.diagnosis,
                "problems": list(self.problems), "not_applicable": self.not_applicable,
                "skipped": list(self.skipped), "example": self.example,
                "known_upstream_bug": self.upstream if self.known_upstream_bug else None,
                "duration": None if self.duration is None else round(self.duration, 3), "trace": self.trace}

    @classmethod
    def from_json(cls, data: dict) -> Outcome:
        worst = data.get("worst")
        return cls(data["algorithm"], data["check"], data["dtype"], data["cases"],
                   None if worst is None else Finding.from_json(worst), data.get("worst_case", ""), data.get("error"),
                   data.get("diagnosis"), data.get("example"), list(data.get("problems") or []),
                   data.get("not_applicable"), list(data.get("skipped") or []), data.get("known_upstream_bug"),
                   duration=data.get("duration"), trace=data.get("trace"))
