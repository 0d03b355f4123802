"""The catalogue of known bugs of released libraries, beside the porting bugs and in the same form.

The oracle is the specification: its budgets model honest rounding in the candidate's dtype, and never absorb a
library that computes a quantity in a lower precision, in another order that is not honest rounding, or with
another formula.  Where a real library disagrees with the oracle and the library is wrong, the disagreement is
catalogued here: a stable id, the library, the releases, backends, dtypes (and compile modes) it affects, its
upstream references, the check that catches it, the smallest case that shows it (``reproduction``, which
``optconf upstream`` runs on the installed libraries) and a deviated oracle that computes what the library
computes, so that a diagnosis names the bug only where that oracle matches every reported quantity.

A candidate that runs on the affected library (Keras itself, or a Keras-style class that inherits Keras's
pipeline) and fails only where an entry matches, in a release the entry says is affected, gets the verdict
``known upstream bug`` (:mod:`conformance.runner`); any other candidate that computes the same fails with the
diagnosis: a port should compute what the library intends.

Imports: the catalogue of porting bugs (the deviated oracles), the data model and the oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from optimizer_conformance.conformance.checks.deviations import (
    DEVIATIONS,
    Deviated,
    Deviation,
    EmaNotMaintained,
    Upstream,
    _for,
    _ScheduleFreeXFromUpdatedZRule,
    _when,
    _with_rule,
)
from optimizer_conformance.conformance.model import make_spec, row_slices
from optimizer_conformance.reference import ReferenceOptimizer, Tracked
from optimizer_conformance.reference.formats import FLOAT32, FloatFormat, numpy_dtype
from optimizer_conformance.reference.pipeline import in_format
from optimizer_conformance.reference.rules import RULES
from optimizer_conformance.reference.tracked import DEMOTED_TO
from optimizer_conformance.reference.weight_decay import apply_weight_decay

KERAS = "keras-team/keras"

# -- the deviated oracles of upstream bugs -------------------------------------------------------------------


class TorchFloat64Demotion(ReferenceOptimizer):
    """Keras on torch: ``ops.minimum``/``ops.maximum`` of a float64 tensor with a Python float (or another float64
    tensor) return float32, because ``dtypes.result_type`` maps float64 to float32 there; so the clipping scale of
    ``global_clipnorm``, the denominator of ``clipnorm``, ``NonNeg``'s ``max(θ, 0)``, schedule-free AdamW's warmup
    factor and the accumulated maximum of an ``overwrite_with_gradient`` variable carry float32 rounding
    (:func:`reference.tracked.through_floatx` marks each place)."""

    def apply(self, grads) -> None:
        token = DEMOTED_TO.set(FLOAT32)
        try:
            super().apply(grads)
        finally:
            DEMOTED_TO.reset(token)


class HyperparametersThroughFloat32(ReferenceOptimizer):
    """Keras on TensorFlow: ``ops.cast(self.beta_1, "float64")`` turns the Python float into a float32 tensor first
    (``tf.convert_to_tensor`` of a Python float is float32); on torch, an op given a Python float
    (``ops.multiply(d, 1 - self.beta_1)`` in Lamb, the bounds of ``ops.clip``) converts it to a ``floatx`` tensor.
    Either way a float64 variable meets float32-rounded hyperparameters (β₁, β₂, ε, λ, the clipping
    thresholds)."""

    def value_format(self, fmt: FloatFormat) -> FloatFormat:
        return fmt.hyperparameters_through(self.floatx)


class WeightDecayFactorInFloatx(ReferenceOptimizer):
    """Keras on torch: ``_apply_weight_decay`` multiplies the variables by ``1 − η·λ`` formed next to the learning
    rate variable, in ``floatx``: float32 for a float64 variable."""

    def weight_decay_factor_format(self, fmt: FloatFormat | None = None) -> FloatFormat:
        return self.floatx


class CoefficientsInVariableDtype(ReferenceOptimizer):
    """Keras casts β₁, β₂, the step count and the learning rate to the variable's dtype and forms the bias
    corrections and step sizes there: in bfloat16 β₂ = 0.999 is 1, so Adam's ``1 − β₂ᵗ`` is 0 and the step is
    zero; in float16 β₂ is 0.99902, so ``1 − β₂`` is 2% off."""

    def coefficient_format(self, fmt: FloatFormat | None = None) -> FloatFormat:
        return fmt or self.fmt


class ParallelUpdateInFirstDtype(ReferenceOptimizer):
    """Keras on torch: ``_parallel_update_step`` (Adam, AdamW, Adamax, Nadam) forms the learning rate, the β powers
    and the bias corrections once, in the first variable's dtype, and applies them to every variable: a float32
    variable beside a float16 first one steps with float16-rounded scalars."""

    def variable_coefficients(self, fmt: FloatFormat, step: int, scalars: dict, first: Any) -> Any:
        return in_format(first, fmt)


class AccumulatorsResetByMultiplying(ReferenceOptimizer):
    """Keras's torch backend (``TorchParallelOptimizer``: Adam, AdamW, Adamax, Nadam) resets the gradient
    accumulators with ``torch._foreach_mul_(acc, 0.0)``: an accumulator holding Inf or NaN stays NaN (∞·0), where
    the base optimizer (TensorFlow, JAX) assigns zeros."""

    def reset_accumulators(self) -> None:
        acc = self.slots["gradient_accumulator"]
        for i in range(len(acc)):
            acc[i] = [a * Tracked.exact(0, a.fmt) for a in acc[i]]


def _torch_accumulator_reset(spec: dict) -> Deviated | None:
    """Where a rule Keras's torch backend updates in parallel accumulates gradients."""
    parallel = RULES[spec["algorithm"]].keras_torch_parallel
    return (spec, AccumulatorsResetByMultiplying) if parallel and spec["config"].get("gradient_accumulation_steps") \
        else None


class SquaredApart(Tracked):
    """An element of a row a sparse gradient names more than once, carrying the pieces it was delivered in: a
    product with a scalar scales each piece (``ops.multiply`` keeps ``tf.IndexedSlices``), its square is the sum
    of the pieces' squares (``ops.square`` squares each slice, the sum comes after), and subtracted from a dense value
    it is subtracted piece by piece (a scatter).  Any other operation meets a dense tensor and sees the sum, as
    :class:`Tracked`."""

    __slots__ = ("pieces",)

    def __init__(self, whole: Tracked, pieces: tuple[Tracked, ...]) -> None:
        super().__init__(whole.value, whole.error, whole.fmt)
        self.pieces = pieces

    def __mul__(self, other):
        if other is self:
            squares = [p * p for p in self.pieces]
            return sum(squares[1:], squares[0])
        whole = Tracked.__mul__(self, other)
        return whole if whole is NotImplemented else SquaredApart(whole, tuple(p * other for p in self.pieces))

    __rmul__ = __mul__

    def __truediv__(self, other):
        whole = Tracked.__truediv__(self, other)
        return whole if whole is NotImplemented else SquaredApart(whole, tuple(p / other for p in self.pieces))

    def to(self, fmt: FloatFormat) -> Tracked:
        return self if fmt == self.fmt else SquaredApart(Tracked.to(self, fmt), tuple(p.to(fmt) for p in self.pieces))

    def __rsub__(self, other):
        """``x − slices``: ``assign_sub`` scatters the slices, subtracting one after the other (schedule-free AdamW's
        ``z``), each subtraction rounding."""
        if not isinstance(other, Tracked):
            return Tracked.__rsub__(self, other)
        for piece in self.pieces:
            other = other - piece
        return other


class DuplicateRowsSquaredApart(ReferenceOptimizer):
    """Keras 3 on TensorFlow: the element-wise unary ops (``sparse.elementwise_unary``: ``ops.square`` among them)
    map a ``tf.IndexedSlices`` gradient's values slice by slice, so a row named twice is squared in its pieces and
    summed after: Adam's velocity gets ``h₁² + h₂²`` where the dense gradient gives ``(h₁ + h₂)²`` (half of it for
    two halves).  ``sparse``: the variables given row slices, each row twice (:func:`conformance.model.row_slices`)."""

    sparse: tuple[int, ...] = ()

    def gradient_elements(self, i: int, gradient) -> list[Tracked]:
        elements = super().gradient_elements(i, gradient)
        if i not in self.sparse:
            return elements
        fmt = self.fmts[i]
        dense = np.asarray(gradient, dtype=np.float64).astype(numpy_dtype(fmt))
        rows, slices = row_slices(dense, duplicate=True)
        width = dense[0].size
        pieces: dict[int, list[Tracked]] = {}
        for row, values in zip(rows, slices):
            for j, x in enumerate(values.reshape(-1).astype(np.float64).tolist()):
                pieces.setdefault(row * width + j, []).append(Tracked.exact(x, fmt))
        return [SquaredApart(x, tuple(pieces[k])) if k in pieces else x for k, x in enumerate(elements)]


def _duplicate_rows_squared_apart(spec: dict) -> Deviated | None:
    """Where rows come twice and no clipping follows (how clipping meets the slices is not modelled here)."""
    clipping = any(spec["config"].get(k) for k in ("clipnorm", "global_clipnorm", "clipvalue"))
    if not spec.get("sparse_duplicate_rows") or clipping:
        return None
    return spec, type("DuplicateRowsSquaredApart", (DuplicateRowsSquaredApart,),
                      {"sparse": tuple(spec["sparse_gradients"])})


class EmaCopiesEveryStep(ReferenceOptimizer):
    """Keras 3.0.1's EMA under ``tf.function``: the first-step test is a Python flag read while tracing, so the
    traced step copies the weights into the average on every call and never blends."""

    def ema_blend_weight(self, fmt: FloatFormat | None = None) -> Tracked | None:
        return None


class ClipsAndDecaysEveryMicroStep(ReferenceOptimizer):
    """Keras 3.0.2–3.4.1 under gradient accumulation: ``apply`` clips each micro-gradient and decays the weights
    on every call, and every call counts as an iteration (the rule's ``t``, the schedules, the EMA and the public
    ``iterations`` see calls); only an update call applies the rule, to the mean of the clipped micro-gradients."""

    @property
    def iterations(self) -> int:
        return self.raw_iterations

    def update_variables(self, active: list[int], g: dict[int, list[Tracked]]) -> None:
        scale = self.config.get("loss_scale_factor")
        if scale is not None:
            s = Tracked.rounded(scale, self.fmt)
            g = {i: [x / s for x in g[i]] for i in active}
        g = dict(zip(active, self.clip_gradients([g[i] for i in active])))
        lr_floatx, lr = self.learning_rate()
        if self.config.get("weight_decay") is not None:
            for i in active:
                if not self.exclusions.excludes(i, self.names[i]):
                    self.theta[i] = apply_weight_decay(self.theta[i], self.config["weight_decay"], lr_floatx,
                                                       self.weight_decay_factor_format(self.fmts[i]))
        acc = self.slots["gradient_accumulator"]
        if (self.raw_iterations + 1) % self.accumulation_steps != 0:
            for i in active:
                acc[i] = [a + x for a, x in zip(acc[i], g[i])]
        else:
            self.update_rule(active, {i: self.accumulated_gradient(g[i], acc[i]) for i in active}, lr)
            for i in range(len(acc)):
                acc[i] = [Tracked.exact(0, self.fmt) for _ in acc[i]]
        self.update_moving_average()


def _parallel_in_first_dtype(spec: dict) -> Deviated | None:
    """Where variables of several dtypes meet a rule Keras's torch backend updates in parallel."""
    parallel = RULES[spec["algorithm"]].keras_torch_parallel
    return (spec, ParallelUpdateInFirstDtype) if parallel and spec.get("variable_dtypes") else None


def _in(dtypes: tuple[str, ...], oracle: type[ReferenceOptimizer]):
    """The spec as it is, with ``oracle``, where it holds a variable in one of ``dtypes`` (its own dtype, or one a
    variable has of its own: a float16 bias in a float32 run)."""
    def deviate(spec: dict) -> Deviated | None:
        held = {spec["dtype"], *(spec.get("variable_dtypes") or {}).values()}
        return (spec, oracle) if held & set(dtypes) else None
    return deviate


# -- the smallest case that shows each ----------------------------------------------------------------------

_THETA = [1.0, -2.0, 0.5]
_GRADS = [[0.3, -0.2, 0.1], [-0.1, 0.4, 0.2], [0.25, 0.05, -0.3], [0.2, -0.1, 0.15]]


def _case(algorithm: str, config: dict, dtype: str, steps: int = 3, compile: str = "eager") -> dict:
    return make_spec(algorithm, config, dtype, [("kernel", _THETA)], [[g] for g in _GRADS[:steps]], compile=compile)


# -- the catalogue ---------------------------------------------------------------------------------------------

UPSTREAM_BUGS: tuple[Deviation, ...] = (
    Deviation("torch-float64-demotion", "Keras's torch backend computes float64 minimum and maximum in float32 "
              "(dtypes.result_type maps float64 to float32): the clipping scale of a float64 gradient, NonNeg's "
              "max(θ, 0) and schedule-free AdamW's warmup factor carry float32 rounding",
              _in(("float64",), TorchFloat64Demotion),
              upstream=Upstream("keras", "3.15.0", None, ("torch",), ("float64",),
                                (f"{KERAS} #23223", f"{KERAS} #23704"), "pipeline/global-clipnorm [float64]")),
    Deviation("float64-hyperparameters-via-float32", "a Python-float hyperparameter reaches a float64 variable "
              "through a float32 tensor (TensorFlow: every ops.cast of one; torch: an op given one, as Lamb's "
              "moments and ε and the bounds of clipvalue): β₁, β₂, ε, λ and the clipping thresholds are "
              "float32-rounded", _in(("float64",), HyperparametersThroughFloat32),
              upstream=Upstream("keras", "3.0.0", None, ("tensorflow", "torch"), ("float64",),
                                ("tensorflow/tensorflow #35938", f"{KERAS} #23704"), "pipeline/basic [float64]")),
    Deviation("tf-keras-float64-constants-via-float32", "tf_keras's legacy Nadam casts Python floats to float64 "
              "through a float32 tensor (tf.cast(0.96, var_dtype), β₁, β₂, ε): a float64 variable's momentum "
              "schedule uses float32-rounded constants", _in(("float64",), HyperparametersThroughFloat32),
              upstream=Upstream("tf_keras", "2.21.0", None, ("tf_keras",), ("float64",),
                                ("tensorflow/tensorflow #35938",), "pipeline/large-hyperparameters [float64]",
                                candidate="tf_keras.optimizers.legacy:Nadam")),
    Deviation("torch-float64-weight-decay-factor-in-float32", "Keras's torch backend forms the weight-decay factor "
              "1 − η·λ in floatx (float32) for a float64 variable", _in(("float64",), WeightDecayFactorInFloatx),
              upstream=Upstream("keras", "3.0.0", None, ("torch",), ("float64",), ("not yet reported",),
                                "pipeline/weight-decay [float64]")),
    Deviation("low-precision-coefficients-in-variable-dtype", "Keras forms the per-step scalars (β powers, bias "
              "corrections, step sizes) in a float16 or bfloat16 variable's own dtype: in bfloat16 β₂ = 0.999 rounds "
              "to 1, 1 − β₂ᵗ is 0 and Adam's step is zero (the weights never move)",
              _in(("float16", "bfloat16"), CoefficientsInVariableDtype),
              upstream=Upstream("keras", "3.0.0", None, ("tensorflow", "jax", "torch"), ("float16", "bfloat16"),
                                ("keras-team/keras-hub #2629", "tensorflow/tensorflow #58138",
                                 f"{KERAS} #21238 (a fix proposed and closed)"), "pipeline/basic [bfloat16]")),
    Deviation("torch-parallel-update-in-first-dtype", "Keras's torch backend forms Adam's, AdamW's and Adamax's "
              "per-step scalars (learning rate, β powers, bias corrections) once, in the first variable's dtype, "
              "for every variable (_parallel_update_step): beside a float16 or bfloat16 first variable, a float32 "
              "one steps with float16- or bfloat16-rounded scalars (bfloat16 first: it does not move)",
              _parallel_in_first_dtype,
              upstream=Upstream("keras", "3.0.0", None, ("torch",), ("float16", "bfloat16"), ("not yet reported",),
                                "pipeline/mixed-dtypes [float16]")),
    Deviation("torch-accumulator-reset-by-multiplying", "Keras's torch backend resets the gradient accumulators of "
              "Adam, AdamW, Adamax and Nadam by multiplying them by 0 (torch._foreach_mul_): after a window with an "
              "Inf or NaN micro-gradient the accumulator is NaN instead of zero, and stays NaN for every later "
              "window (TensorFlow and JAX assign zeros)", _torch_accumulator_reset,
              upstream=Upstream("keras", "3.0.2", None, ("torch",), None,
                                (f"{KERAS} #18951 (the pull request that added it; not yet reported)",), "explore")),
    Deviation("tf-sparse-duplicate-rows-squared-apart", "Keras's TensorFlow backend squares a tf.IndexedSlices "
              "gradient slice by slice (ops.square through sparse.elementwise_unary), before the slices of a row named "
              "twice are summed: where an embedding lookup meets a token twice, the velocity gets h₁² + h₂² instead "
              "of (h₁ + h₂)², half of it for two equal halves, and Adam's first step on that row is √2 times the "
              "learning rate", _duplicate_rows_squared_apart,
              upstream=Upstream("keras", "3.0.0", None, ("tensorflow",), None,
                                (f"{KERAS} #18633 and #18692 (the pull requests that added it; not yet reported)",),
                                "pipeline/sparse-duplicate-rows")),
    Deviation("schedule-free-x-from-updated-z", "schedule-free AdamW's x recovered from the updated z instead of "
              "the old one (momentum.value is the live variable on TensorFlow and torch, read after assign_sub)",
              _for("schedule-free-adamw", _with_rule(_ScheduleFreeXFromUpdatedZRule)),
              upstream=Upstream("keras", "3.15.0", None, ("tensorflow", "torch"), None,
                                (f"{KERAS} #22113 (the pull request that added it; not yet reported)",),
                                "pipeline/basic")),
    Deviation("ema-not-maintained", "use_ema accepted but apply() never updates the moving average, which stays at "
              "its zero init", _when("use_ema", lambda s: s, EmaNotMaintained),
              upstream=Upstream("keras", "3.0.0", "3.0.2", ("jax", "torch"), None, (f"{KERAS} #18949",),
                                "pipeline/ema", last_affected="3.0.1")),
    Deviation("ema-copies-under-tf-function", "the EMA's first-step test read once while tracing: under tf.function "
              "the average copies the weights on every step", _when("use_ema", lambda s: s, EmaCopiesEveryStep),
              upstream=Upstream("keras", "3.0.0", "3.0.2", ("tensorflow",), None, (f"{KERAS} #18972",),
                                "pipeline/ema --compile function", last_affected="3.0.1", compile=("function",))),
    Deviation("accumulation-clips-and-decays-micro-steps", "gradient accumulation clips every micro-gradient and "
              "decays the weights on every call, and counts every call as an iteration",
              _when("gradient_accumulation_steps", lambda s: s, ClipsAndDecaysEveryMicroStep),
              upstream=Upstream("keras", "3.0.2", "3.5.0", ("tensorflow", "jax", "torch"), None,
                                (f"{KERAS} #19990", f"{KERAS} #19998"), "pipeline/accumulation-clipping",
                                last_affected="3.4.1")),
)

# The smallest case that shows each entry (``optconf upstream``): it fails the specification where the bug is there.
REPRODUCTIONS: dict[str, dict] = {
    "torch-float64-demotion": _case("adamax", {"learning_rate": 0.01, "global_clipnorm": 0.2}, "float64", 1),
    "torch-parallel-update-in-first-dtype": make_spec(
        "adam", {"learning_rate": 0.01}, "float16", [("kernel", _THETA), ("bias", [0.1, -0.3])],
        [[g, g[:2]] for g in _GRADS[:2]], variable_dtypes={1: "float32"}),
    "schedule-free-x-from-updated-z": _case("schedule-free-adamw", {"learning_rate": 0.01}, "float64"),
    "torch-accumulator-reset-by-multiplying": make_spec(
        "adam", {"learning_rate": 0.01, "gradient_accumulation_steps": 2}, "float32", [("kernel", _THETA)],
        [[[float("inf"), 0.4, 0.2]], [_GRADS[1]]]),
    "tf-sparse-duplicate-rows-squared-apart": make_spec(
        "adam", {"learning_rate": 0.01}, "float32", [("embedding", [[0.5, -0.25], [0.75, 1.0]])],
        [[[[0.25, -0.5], [0.0, 0.0]]]], sparse_gradients=(0,), sparse_duplicate_rows=True),
    "float64-hyperparameters-via-float32": _case("lamb", {"learning_rate": 0.01}, "float64", 1),
    "torch-float64-weight-decay-factor-in-float32": _case(
        # β, ε and λ exact in float32 (the other float64 bugs leave them alone); 1 − ηλ is not
        "adamw", {"learning_rate": 0.01, "weight_decay": 0.25, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 2.0**-20},
        "float64", 1),
    "tf-keras-float64-constants-via-float32": _case("nadam-legacy", {"learning_rate": 0.01, "beta_1": 0.5,
                                                                     "beta_2": 0.75, "epsilon": 2.0**-20}, "float64"),
    "low-precision-coefficients-in-variable-dtype": _case("adam", {"learning_rate": 0.01}, "bfloat16"),
    "ema-not-maintained": _case("adam", {"use_ema": True, "ema_momentum": 0.5}, "float32", 2),
    "ema-copies-under-tf-function": _case("adam", {"use_ema": True, "ema_momentum": 0.5}, "float32", 2,
                                          compile="function"),
    "accumulation-clips-and-decays-micro-steps": _case(
        "adam", {"learning_rate": 0.01, "gradient_accumulation_steps": 2, "clipnorm": 0.1, "weight_decay": 0.1},
        "float32", 4),
}

KNOWN: tuple[Deviation, ...] = DEVIATIONS + UPSTREAM_BUGS
BY_ID: dict[str, Deviation] = {d.id: d for d in KNOWN}
assert len(BY_ID) == len(KNOWN), "duplicate deviation ids"
assert set(REPRODUCTIONS) == {d.id for d in UPSTREAM_BUGS}, "every upstream bug has its reproduction"


def affecting(description: dict, dtype: str | None = None) -> tuple[Deviation, ...]:
    """The upstream bugs a candidate has by what it runs on (``describe()``: library, versions, backend,
    compile mode), and in ``dtype`` where given."""
    library = description.get("library")
    version = (description.get("versions") or {}).get(library or "")
    found = []
    for bug in UPSTREAM_BUGS:
        up = bug.upstream
        if up.affects(library, version, description.get("backend", ""), description.get("compile", "eager")) and (
                dtype is None or up.dtypes is None or dtype in up.dtypes):
            found.append(bug)
    return tuple(found)


def is_upstream(deviation_id: str) -> bool:
    """Whether an id (or ``"a + b"``, two at once) names upstream bugs only."""
    return all(part in BY_ID and BY_ID[part].upstream is not None for part in deviation_id.split(" + "))


def is_other_dialect(deviation_id: str) -> bool:
    """Whether an id names another library's rule (Keras's, for torch.optim's), not a bug."""
    return deviation_id in BY_ID and BY_ID[deviation_id].restate is not None


def describe(deviation_id: str) -> str:
    """``[id] description``, with the releases and references of an upstream bug (``"a + b"``: each)."""
    if " + " in deviation_id:
        return "; and ".join(describe(part) for part in deviation_id.split(" + "))
    d = BY_ID[deviation_id]
    text = f"[{deviation_id}] {d.description}"
    if d.upstream is not None:
        refs = ", ".join(d.upstream.references)
        text += f" ({d.upstream.library} {d.upstream.releases()}" + (f"; {refs})" if refs else ")")
    return text
