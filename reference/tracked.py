"""A number that carries its exact value and the error budget of an honest implementation.

``Tracked(value, error, fmt)`` says: the exact result is ``value`` (an MPFR
number at the working precision, far beyond ``fmt``), and an implementation
that evaluates the same expression in the floating-point format ``fmt``, from
the same inputs, lands within ``error`` of it.

The budget is a first-order *running error analysis*: each operation
propagates the operands' budgets through its exact partial derivatives and
adds its own rounding,

    a ± b :  e_a + e_b                         + u|z| + f
    a · b :  |b| e_a + |a| e_b + e_a e_b       + u|z| + f
    a / b :  (e_a + |z| e_b) / (|b| − e_b)     + 2u|z| + f   (b may be applied as a · (1/b))
    √a    :  min(e_a / (√a + √(a − e_a)), √e_a) + u|z| + f
    max   :  max(e_a, e_b)                     (no rounding)

with ``u`` the unit roundoff of ``fmt`` and ``f`` its underflow allowance
(:mod:`reference.formats`).  An addition, subtraction or multiplication of
exact operands whose result the format holds (as a normal number, where
flushing is allowed) is exact: IEEE 754 rounds a representable result to
itself.  So is a zero quotient.  A result that may exceed the format's largest
finite number gets an infinite budget: an implementation may overflow there,
and the format cannot carry the computation.  A multiply-add contracted into one FMA rounds
once instead of twice, so it is covered by the separate-operation bound.

A few compound operations (:func:`lerp`, :func:`power`, :func:`decay`) are
analysed as a whole, with the exact derivative of the compound: an operand
used twice inside them (``m`` in ``m + (g − m)·c``) would otherwise have its
error counted twice, and a budget that grows like ``(1 + c)**t`` instead of
``(1 − c)**t`` over ``t`` steps would be worthless.  Their rounding terms
cover every evaluation order that real implementations use (documented on
each).

Budgets are floats (they need a few correct digits, not a hundred); values
are exact to the working precision.
"""

from __future__ import annotations

import math
from contextvars import ContextVar

import gmpy2
from gmpy2 import mpfr
from optimizer_conformance.reference.formats import FloatFormat

_INF = math.inf
_MPFR = type(mpfr(0))


class Tracked:
    """An exact value with the error budget for computing it in ``fmt``."""

    __slots__ = ("value", "error", "fmt", "size")

    def __init__(self, value: mpfr, error: float, fmt: FloatFormat) -> None:
        self.value = value
        self.error = error
        self.fmt = fmt
        self.size = abs(float(value))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def exact(cls, x, fmt: FloatFormat) -> Tracked:
        """A value every implementation holds exactly (``0``, ``1``, an integer ``t``)."""
        return cls(mpfr(x), 0.0, fmt)

    @classmethod
    def element(cls, x, fmt: FloatFormat) -> Tracked:
        """An input element (a variable's or a gradient's) as held in ``fmt``.

        The budget is the actual rounding error ``|[x]_fmt − x|``: zero for the
        ``fmt``-valued inputs a candidate is given.
        """
        exact = mpfr(x)
        return cls(exact, _float_up(abs(fmt.round(exact) - exact)), fmt)

    @classmethod
    def rounded(cls, x, fmt: FloatFormat, via: FloatFormat | None = None) -> Tracked:
        """The exact hyperparameter ``x`` as held in ``fmt``.

        The budget is the actual rounding error ``|[x]_fmt − x|``, zero when ``x``
        is representable.  ``via`` is a format the implementation stores ``x`` in
        first; the format's own ``hyperparameters_via`` (an upstream bug's deviated oracle: TensorFlow turns a
        Python float into a float32 tensor before casting it) is allowed as well.
        """
        exact = mpfr(x)
        error = abs(fmt.round(exact if via is None else via.round(exact)) - exact)
        if fmt.hyperparameters_via is not None:
            error = max(error, abs(fmt.round(fmt.hyperparameters_via.round(exact)) - exact))
        return cls(exact, _float_up(error), fmt)

    @classmethod
    def count(cls, t: int, fmt: FloatFormat) -> Tracked:
        """An integer step count cast to ``fmt``: exact up to ``2**p``, rounded past it."""
        return cls.element(t, fmt)

    def to(self, fmt: FloatFormat) -> Tracked:
        """This value cast to another format (one rounding unless it widens)."""
        if fmt == self.fmt:
            return self
        widens = fmt.precision >= self.fmt.precision and fmt.emin <= self.fmt.emin
        extra = 0.0 if widens else fmt.unit_roundoff * self.size + fmt.underflow
        return Tracked(self.value, self.error + extra, fmt)

    # -- helpers ----------------------------------------------------------------------
    def _coerce(self, other) -> Tracked:
        if isinstance(other, Tracked):
            return other
        if isinstance(other, bool) or not isinstance(other, (int, float, _MPFR)):
            return NotImplemented
        if isinstance(other, float) and not self.fmt.is_exact(mpfr(other)):
            # A literal the format cannot hold is a hyperparameter: its rounding
            # must be budgeted, so it has to come in through Tracked.rounded.
            raise TypeError(
                f"the literal {other!r} is not exact in {self.fmt}; wrap it with "
                "Tracked.rounded so its rounding is budgeted"
            )
        return Tracked(mpfr(other), 0.0, self.fmt)

    def _rounding(self, size: float) -> float:
        fmt = self.fmt
        return fmt.unit_roundoff * size + fmt.underflow

    # -- arithmetic -------------------------------------------------------------------
    def __add__(self, other) -> Tracked:
        if other.__class__ is not Tracked:
            other = self._coerce(other)
            if other is NotImplemented:
                return other
        return self._sum(other, self.value + other.value)

    __radd__ = __add__

    def __sub__(self, other) -> Tracked:
        if other.__class__ is not Tracked:
            other = self._coerce(other)
            if other is NotImplemented:
                return other
        return self._sum(other, self.value - other.value)

    def _sum(self, other: Tracked, z: mpfr) -> Tracked:
        """The budget of ``z = self ± other``."""
        out = Tracked(z, 0.0, self.fmt)
        fmt = self.fmt
        ea, eb = self.error, other.error
        if ea == 0 and eb == 0 and (out.size >= fmt.underflow or z == 0) and fmt.round(z) == z:
            return out  # exact operands, representable result: IEEE arithmetic returns it exactly
        out.error = e = ea + eb + fmt.unit_roundoff * out.size + fmt.underflow
        if not out.size + e <= fmt.largest:  # overflow possible, or a non-finite result
            out.error = _unbounded(out)
        return out

    def __rsub__(self, other) -> Tracked:
        if other.__class__ is not Tracked:
            other = self._coerce(other)
            if other is NotImplemented:
                return other
        return other.__sub__(self)

    def __mul__(self, other) -> Tracked:
        if other.__class__ is not Tracked:
            other = self._coerce(other)
            if other is NotImplemented:
                return other
        z = self.value * other.value
        out = Tracked(z, 0.0, self.fmt)
        ea, eb = self.error, other.error
        fmt = self.fmt
        if ea == 0 and eb == 0 and (out.size >= fmt.underflow or z == 0) and fmt.round(z) == z:
            return out  # exact operands, representable result: IEEE arithmetic returns it exactly
        out.error = e = other.size * ea + self.size * eb + ea * eb + fmt.unit_roundoff * out.size + fmt.underflow
        if not out.size + e <= fmt.largest:  # overflow possible, or a non-finite result
            out.error = _unbounded(out)
        return out

    __rmul__ = __mul__

    def __truediv__(self, other) -> Tracked:
        if other.__class__ is not Tracked:
            other = self._coerce(other)
            if other is NotImplemented:
                return other
        z = self.value / other.value
        out = Tracked(z, 0.0, self.fmt)
        margin = other.size - other.error
        if z == 0 and self.error == 0 and other.error == 0:
            return out  # 0 / y and 0 · (1/y) are exactly 0
        if not margin > 0:
            out.error = _unbounded(out)
        else:
            out.error = (self.error + out.size * other.error) / margin + self._rounding(
                2 * out.size
            )
        return _guard(out)

    def __rtruediv__(self, other) -> Tracked:
        if other.__class__ is not Tracked:
            other = self._coerce(other)
            if other is NotImplemented:
                return other
        return other.__truediv__(self)

    def __neg__(self) -> Tracked:
        return Tracked(-self.value, self.error, self.fmt)

    def __abs__(self) -> Tracked:
        return Tracked(abs(self.value), self.error, self.fmt)

    def __repr__(self) -> str:
        return f"Tracked({self.value:.20g} ± {self.error:.3g} in {self.fmt})"

    def __float__(self) -> float:
        return float(self.value)


def sqrt(x: Tracked) -> Tracked:
    if not isinstance(x, Tracked):  # a TrackedArray (reference.arrays)
        return x.sqrt()
    if x.value < 0:
        raise ValueError(f"square root of a negative value {x!r}")
    z = gmpy2.sqrt(x.value)
    out = Tracked(z, 0.0, x.fmt)
    e = x.error
    bound = math.sqrt(e)
    if out.size > 0:
        # |√x̃ − √x| = |x̃ − x| / (√x̃ + √x), and x̃ >= x − e.
        bound = min(bound, e / (out.size + math.sqrt(max(x.size - e, 0.0))))
    out.error = bound + x._rounding(out.size)
    return _guard(out)


def absolute(x: Tracked) -> Tracked:
    """``|x|``: 1-Lipschitz, exact in floating point."""
    if not isinstance(x, Tracked):
        return abs(x)
    return Tracked(abs(x.value), x.error, x.fmt)


def maximum(a: Tracked, b: Tracked) -> Tracked:
    """``max(a, b)``: 1-Lipschitz, exact in floating point; NaN if either is (as ``ops.maximum``)."""
    if not (isinstance(a, Tracked) and isinstance(b, Tracked)):
        return b.extreme(a, True) if isinstance(a, Tracked) else a.extreme(b, True)
    if gmpy2.is_nan(a.value) or gmpy2.is_nan(b.value):
        return Tracked(mpfr("nan"), 0.0, a.fmt)
    chosen = a if a.value >= b.value else b
    return Tracked(chosen.value, max(a.error, b.error), chosen.fmt)


def minimum(a: Tracked, b: Tracked) -> Tracked:
    """``min(a, b)``: as :func:`maximum`."""
    if not (isinstance(a, Tracked) and isinstance(b, Tracked)):
        return b.extreme(a, False) if isinstance(a, Tracked) else a.extreme(b, False)
    if gmpy2.is_nan(a.value) or gmpy2.is_nan(b.value):
        return Tracked(mpfr("nan"), 0.0, a.fmt)
    chosen = a if a.value <= b.value else b
    return Tracked(chosen.value, max(a.error, b.error), chosen.fmt)


def through_floatx(x: Tracked) -> Tracked:
    """``x``, at a place where Keras's torch backend returns a float64 result in ``floatx``: ``ops.minimum`` or
    ``ops.maximum`` of a float64 tensor with a Python float (or of two float64 tensors) is float32 there
    (keras-team/keras #23223, #23704).  That is an upstream bug, not the specification: here ``x`` is returned
    as it is, unless the deviated oracle of that bug (``conformance.checks.upstream``) runs with
    :data:`DEMOTED_TO` set, when ``x`` is rounded to that format and its rounding budgeted."""
    to = DEMOTED_TO.get()
    if to is None or x.fmt.precision <= to.precision or is_special(x.value):
        return x
    return Tracked(to.round(x.value), x.error + to.unit_roundoff * x.size + to.underflow, x.fmt)


# The narrower format an upstream bug's deviated oracle demotes :func:`through_floatx`'s results to; None in the
# specification.  A context variable, so that a diagnosis never leaks into the oracle that judges.
DEMOTED_TO: ContextVar[FloatFormat | None] = ContextVar("DEMOTED_TO", default=None)


def sum_of_squares(values: list[Tracked]) -> Tracked:
    """``Σ x²`` over ``n`` elements, in any summation order.

    Exact derivatives: ``∂/∂x = 2x``, plus the second-order ``e²``.  Rounding: each square and each
    of the ``n − 1`` additions rounds once, ``n·u·Σ x²`` in all for a recursive, pairwise or
    blocked sum.
    """
    if hasattr(values, "sum_of_squares"):  # a TrackedArray (reference.arrays)
        return values.sum_of_squares()
    fmt = values[0].fmt
    total = mpfr(0)
    propagated = 0.0
    for x in values:
        total += x.value * x.value
        propagated += 2 * x.size * x.error + x.error * x.error
    out = Tracked(total, 0.0, fmt)
    n = len(values)
    out.error = propagated + n * fmt.unit_roundoff * out.size + n * fmt.underflow
    return _guard(out)


def root_of(squares: Tracked) -> Tracked:
    """``√s`` of a sum of squares, exactly zero when the sum is (every implementation gets that 0)."""
    return sqrt(squares) if squares.value > 0 else squares


def norm(values: list[Tracked]) -> Tracked:
    """``‖x‖₂ = √Σ x²``, zero exactly when every element is."""
    return root_of(sum_of_squares(values))


def in_either_order(*forms: Tracked) -> Tracked:
    """One quantity evaluated in several legitimate orders (the same exact value): the first form's value, budgeted
    for the worst of them, so that an implementation may use any (Keras's association, or torch.optim's update
    applied in two subtractions)."""
    first = forms[0]
    if not isinstance(first, Tracked):
        return first.either(*forms[1:])
    return Tracked(first.value, max(f.error for f in forms), first.fmt)


def lerp(a: Tracked, b: Tracked, weight: Tracked) -> Tracked:
    """``a + (b − a)·w``: a moving-average update (moments, EMA).

    Exact derivatives: ``∂/∂a = 1 − w``, ``∂/∂b = w``, ``∂/∂w = b − a``, plus the
    second-order term of a rounded weight (a float32-rounded ``β`` in a float64
    computation is far larger than float64 rounding).
    Rounding covers both forms in use, whichever is larger:

    * ``a ⊕ ((b ⊖ a) ⊗ w)`` (Keras generic, TF kernels, PyTorch ``lerp``);
    * ``(a ⊗ [1 − w]) ⊕ ([w] ⊗ b)`` with ``1 − w`` and ``w`` rounded to the
      format independently (Keras torch backend, optax).
    """
    if not isinstance(a, Tracked):
        return a.lerp(b, weight)
    if not isinstance(b, Tracked):
        return b._operand(a).lerp(b, weight)
    fmt = a.fmt
    u = fmt.unit_roundoff
    difference = b.value - a.value
    out = Tracked(a.value + difference * weight.value, 0.0, fmt)
    wf = weight.size
    keep = abs(1.0 - wf)
    diff = abs(float(difference))
    # Exact: z̃ − z = δa(1 − w) + δb·w + (b − a)·δw + (δb − δa)·δw.
    propagated = keep * a.error + wf * b.error + (diff + a.error + b.error) * weight.error
    difference_form = 2 * diff * wf
    weighted_form = 2 * (a.size * keep + b.size * wf)
    out.error = e = (
        propagated
        + u * ((difference_form if difference_form > weighted_form else weighted_form) + out.size)
        + 3 * fmt.underflow
    )
    if not out.size + e <= fmt.largest:  # overflow possible, or a non-finite result
        out.error = _unbounded(out)
    return out


def power(base: Tracked, exponent: Tracked) -> Tracked:
    """``base ** exponent`` for a positive base (bias corrections, momentum schedules).

    Exact derivatives: ``∂/∂base = y·z/base``, ``∂/∂y = z·ln(base)``.  The
    rounding allowance ``(2 + 2|y ln base|) u |z|`` covers a correctly rounded
    ``pow``, one computed in float64 and rounded, and ``exp(y·log(base))`` as
    XLA evaluates it, whose error grows with ``|y ln base|``.
    """
    fmt = base.fmt
    z = base.value**exponent.value
    out = Tracked(z, 0.0, fmt)
    if base.value == 0:
        # β = 0: 0^t = 0 for t > 0, and |b̃^t| <= e_b^t for a perturbed base.
        out.error = base.error ** exponent.size + fmt.underflow
        return _guard(out)
    log_base = abs(float(gmpy2.log(base.value)))
    y = exponent.size
    propagated = y * out.size / base.size * base.error + out.size * log_base * exponent.error
    out.error = propagated + fmt.unit_roundoff * (2 + 2 * y * log_base) * out.size + fmt.underflow
    return _guard(out)


def decay(theta: Tracked, rate: Tracked, learning_rate: Tracked, factor_fmt: FloatFormat) -> Tracked:
    """Decoupled weight decay ``θ·(1 − λη)``.

    Exact derivatives: ``∂/∂θ = 1 − λη``, ``∂/∂λ = −θη``, ``∂/∂η = −θλ``.
    Rounding covers:

    * ``θ ⊖ ((θ ⊗ λ) ⊗ η)`` in the variable's format (Keras generic, TF, JAX);
    * ``θ ⊗ [1 − λη]`` with the factor formed in ``factor_fmt``: the variable's format in the specification
      (Keras's torch backend forms it in ``floatx``, float32 for a float64 variable: an upstream bug whose
      deviated oracle passes ``floatx`` here).
    """
    if not isinstance(theta, Tracked):
        return theta.decay(rate, learning_rate, factor_fmt)
    fmt = theta.fmt
    u = fmt.unit_roundoff
    lam, eta = rate.value, learning_rate.value
    z = theta.value * (1 - lam * eta)
    out = Tracked(z, 0.0, fmt)
    lam_f, eta_f = rate.size, learning_rate.size
    keep = abs(1.0 - lam_f * eta_f)
    rate_error = eta_f * rate.error + lam_f * learning_rate.error + rate.error * learning_rate.error
    propagated = keep * theta.error + (theta.size + theta.error) * rate_error
    subtract_form = 2 * u * theta.size * lam_f * eta_f + 2 * fmt.underflow
    uf = max(u, factor_fmt.unit_roundoff)
    factor_form = uf * theta.size * (2 * lam_f * eta_f + keep)
    out.error = propagated + max(subtract_form, factor_form) + u * out.size + fmt.underflow
    return _guard(out)


def _guard(out: Tracked) -> Tracked:
    """A result the format may not be able to hold (overflow to ±inf) constrains nothing."""
    if not out.size + out.error <= out.fmt.largest:  # overflow possible, or a non-finite result
        out.error = _unbounded(out)
    return out


def _unbounded(out: Tracked) -> float:
    """The budget of a result past the format's range: none (``inf``) for a finite exact value that may
    overflow; ``0`` for an exact NaN or ±Inf, which IEEE arithmetic produces from a non-finite input in
    every evaluation order (a candidate must be non-finite there too; see :func:`is_special`)."""
    return 0.0 if is_special(out.value) else _INF


def is_special(x: mpfr) -> bool:
    """NaN or ±Inf.  The oracle follows IEEE 754 through them (MPFR does), and ``max``/``min`` propagate NaN
    as ``ops.maximum`` does on every Keras backend.  Where the exact value is special, evaluation orders may
    differ in which special they give (``m + (g − m)·w`` is NaN where ``m·(1 − w) + w·g`` is Inf), so a
    candidate agrees there when it is non-finite too."""
    return not gmpy2.is_finite(x)


def _float_up(x: mpfr) -> float:
    f = float(x)
    return f if f >= x else float(gmpy2.next_above(mpfr(f, 53)))
