r"""The oracle's element-wise arithmetic on whole arrays: :class:`TrackedArray`, :class:`~reference.tracked.Tracked`
at array speed.

A ``TrackedArray`` holds, for every element, its value as a double-double ``hi + lo`` (two float64 arrays,
``|lo| <= ulp(hi)/2``: 106 significant bits), its budget (a float64 array) and one format.  Every operation of
:mod:`reference.tracked` that a rule's ``update`` uses (``+ − · /``, ``√``, ``|·|``, ``max``, ``min``,
:func:`~reference.tracked.lerp`, :func:`~reference.tracked.decay`, :func:`~reference.tracked.in_either_order`, a cast)
has its array form here, with *the same budget formula*, evaluated in float64: one compiled pass per operation
(numba; without it the same kernels run element by element in Python, slowly) that forms each element's
double-double value and its budget together.  The functions of
:mod:`reference.tracked` hand an array operand to this module, so a rule written once on ``Tracked`` runs unchanged
on a ``TrackedArray``; per-step scalars (β powers, bias corrections, step sizes) stay ``Tracked`` scalars in MPFR
and meet the arrays as constants (each converted once to a double-double, exactly to 106 bits).

**Speed.**  The kernels are written without branches, so that LLVM vectorizes them (special values and rare cases
in a second pass that runs only where a first one met any).  An element-wise step (a rule's update, each of the
pipeline's element-wise stages) runs :data:`CHUNK` elements at a time (:func:`in_chunks`), so that its dozen or two
intermediate arrays stay in cache instead of each costing a pass through memory; the chunks' results are written in
place by the kernels that make them, and every large result array comes from a per-thread pool of arrays nothing
else holds (:class:`Buffers`), since a fresh array's pages cost the system's zeroing.  None of this changes a value
or a budget: ``tests/test_arrays.py`` asks chunked and pooled runs to agree bit for bit with whole arrays.

**Accuracy of the values.**  The double-double algorithms are the classical ones (Dekker 1971; Bailey's QD; the
quotient is Joldes, Muller and Popescu's DWDivDW2, 2017): ``two_sum`` and ``two_prod`` are error-free (the product's
error term is one fused multiply-add, IEEE 754's ``fma``, exact on every machine; without numba, Veltkamp's split),
so the sum, product, quotient and root of double-doubles carry a relative error of at most ``γ = 2⁻¹⁰⁰`` of the
operands' scale: ``|ε| <= γ (|a| + |b|)`` for ``a ± b``, ``γ |a b|``, ``γ |a / b|``, ``γ √a`` (the bounds are
``5·2⁻¹⁰⁶`` of the operands' scale for the sum, see :func:`_dd_add`, and the published ``7·2⁻¹⁰⁶`` for the
product, ``15·2⁻¹⁰⁶ + 56·2⁻¹⁵⁹`` for the quotient; ``2⁻¹⁰⁰`` covers each with room).  A rule's update of one step
is at most a few dozen operations, and each operand's own error is carried into the next step as part of
its value, so after ``T`` steps an element's value is within ``T · k · γ · M`` of the MPFR value, with ``k`` the
operations per step (< 64) and ``M`` the largest magnitude met on the way (``|θ|``, ``|m|``, ``√v``, the step).
Every budget an element is judged with is at least ``u · M`` for a quantity of that magnitude (each rounding adds
``u |z|``) with ``u >= 2⁻⁵³`` (float64), so for ``T <= 2¹⁰`` steps the values' error is below
``2¹⁰ · 2⁶ · 2⁻¹⁰⁰ / 2⁻⁵³ = 2⁻³¹`` of a budget: far below the 1/1000 asked of it.  Where a result falls below
``2⁻⁹⁶⁹`` its low word underflows; the error there is absolute, at most a few ``2⁻¹⁰⁷⁴``, inside the underflow
allowance ``2⁻¹⁰²²`` (or larger) that every rounding of the budget adds; by a divisor below ``2⁻⁹⁶⁹`` (a float64
subnormal) the products that correct the quotient underflow alike, and its error, a few ``2⁻¹⁰⁷⁴`` relative to the
divisor, is far below the quotient's rounding term ``2u |a / b|``.  A division goes through the divisor's
reciprocal (to 106 bits, formed once and kept: Nadam divides by its denominator three times) where the reciprocal's
low word is a normal double; the quotient is formed directly elsewhere.  Exact results stay exact: an operation on
exact inputs whose result the format holds is computed exactly by the error-free transformations, so the budget's
test "exact operands, representable result" sees what MPFR sees (whether a double is a number of the format is
read from Veltkamp's rounding to its precision and from its subnormal grid, with no cast to a narrower type).

**Accuracy of the budgets.**  A budget is a sum of a handful of non-negative float64 products per operation;
float64 rounds each by at most ``2⁻⁵³`` relatively, so a budget of ``T`` steps of ``k`` operations is within a
factor ``1 ± T·k·2⁻⁵²`` of the MPFR path's (itself computed in Python floats), and both are compared with
candidates whose ratios a check reads to two digits.  ``|value|`` is read as ``|hi|``, the double nearest the
double-double, as :class:`~reference.tracked.Tracked` reads ``abs(float(value))``.

**Special values** (NaN, ±Inf) are carried in ``hi`` with ``lo = 0``, by the plain float64 operation, which IEEE
754 defines as MPFR does; their budget is 0, as in :func:`reference.tracked._unbounded`.

Imports: NumPy, gmpy2, numba where installed, and the oracle's formats and number type.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import gmpy2
import numpy as np
from gmpy2 import mpfr
from optimizer_conformance.reference.formats import FloatFormat, numpy_dtype

_SPLIT = 134217729.0  # 2**27 + 1: Veltkamp's split of a double into two 26-bit halves
_RECIPROCAL_LOW, _RECIPROCAL_HIGH = 2.0**-900, 2.0**900  # where a reciprocal's low word is a normal double
_INF = np.inf
_TWO_52 = 2.0**52


def _at(x: Any, i: int) -> float:
    """Element ``i`` of an operand: an array's, or a constant's (a per-step scalar passed as a float)."""
    return x[i] if isinstance(x, np.ndarray) else x


try:  # the kernels below, compiled: one pass over the arrays per operation
    import numba
    from numba import types
    from numba.extending import intrinsic, overload

    _compiled = numba.njit(cache=True, inline="always", error_model="numpy")
    _loop = numba.njit(cache=True, error_model="numpy")
    COMPILED = True

    @overload(_at, inline="always")
    def _at_compiled(x, i):
        # Each kernel is compiled for its operands' kinds: a constant passed as a float keeps the loop over
        # contiguous arrays, which LLVM vectorizes (a stride-0 broadcast array would not be).
        if isinstance(x, types.Array):
            return lambda x, i: x[i]
        return lambda x, i: x

    @intrinsic
    def _fma(typingctx, a, b, c):
        """``a·b + c`` rounded once (IEEE 754's fusedMultiplyAdd: LLVM's ``llvm.fma``, the FMA instruction or the C
        library's correctly rounded ``fma``): the same result on every machine."""
        def codegen(context, builder, signature, args):
            return builder.fma(*args)
        return types.float64(types.float64, types.float64, types.float64), codegen

    @_compiled
    def _product_error(a, b, p):
        """``a·b − p`` exactly (``p`` the rounded product), in one fused multiply-add."""
        return _fma(a, b, -p)
except ImportError:  # the same kernels, element by element in Python: slow, never different
    def _compiled(fn):
        return fn

    _loop = _compiled
    COMPILED = False

    def _product_error(a, b, p):
        """``a·b − p`` exactly (``p`` the rounded product), by Veltkamp's split (Dekker)."""
        ah, al = _split(a)
        bh, bl = _split(b)
        return ((ah * bh - p) + ah * bl + al * bh) + al * bl


# -- double-double arithmetic on scalars (the error-free transformations and their compositions) -------------------


@_compiled
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@_compiled
def _quick_two_sum(a, b):
    s = a + b
    return s, b - (s - a)


@_compiled
def _split(a):
    t = _SPLIT * a
    hi = t - (t - a)
    return hi, a - hi


@_compiled
def _two_prod(a, b):
    p = a * b
    return p, _product_error(a, b, p)


@_compiled
def _dd_add(ah, al, bh, bl):
    """A double-double sum (Dekker's, QD's "sloppy" add): the high words' exact sum, the low words added to its
    error.  Its error is at most ``5·2⁻¹⁰⁶ (|a| + |b|)``: ``3u²`` from the two roundings of the low parts, at most
    ``2u²`` more where the final normalization's precondition fails (its error is then at most ``u`` times its
    second operand, itself within ``2u`` of the operands' scale).  Relative to the operands, not to the sum (under
    cancellation), which is all the bound of this module uses: the accurate add's two more error-free sums would buy
    a bound relative to the sum that nothing needs.  Exact operands (low words 0) give their exact sum."""
    s, e = _two_sum(ah, bh)
    return _quick_two_sum(s, e + (al + bl))


@_compiled
def _dd_mul(ah, al, bh, bl):
    p, e = _two_prod(ah, bh)
    return _quick_two_sum(p, e + (ah * bl + al * bh))


@_compiled
def _dd_times_double(ah, al, b):
    """A double-double times a double (Joldes, Muller, Popescu 2017, DWTimesFP1: relative error ``<= 1.5u² + 4u³``)."""
    ch, cl1 = _two_prod(ah, b)
    th, tl1 = _quick_two_sum(ch, al * b)
    return _quick_two_sum(th, tl1 + cl1)


@_compiled
def _dd_div(ah, al, bh, bl):
    """A double-double quotient (Joldes, Muller, Popescu 2017, DWDivDW2: relative error ``<= 15u² + 56u³``): the
    first quotient of the high words, corrected once by the remainder, which Sterbenz's lemma makes exact."""
    th = ah / bh
    rh, rl = _dd_times_double(bh, bl, th)
    remainder = (ah - rh) + (al - rl)
    return _quick_two_sum(th, remainder / bh)


@_compiled
def _dd_sqrt(ah, al):
    """The root of a positive finite double-double: ``√ah`` corrected once by the exact remainder."""
    x = math.sqrt(ah)
    ph, pl = _two_prod(x, x)
    rh, _ = _dd_add(ah, al, -ph, -pl)
    return _quick_two_sum(x, rh / (2 * x))


# -- what every kernel shares: the format's facts, special values, the budget's guard --------------------------------
# Every function from here on is written without branches: each alternative is computed and one chosen by a
# conditional expression of plain values (each test a 0/1 value, combined with & and |), so that a loop of them
# compiles to selects and vectorizes.  (A branch that holds a call, or returns early, keeps the loop scalar: three
# times slower.)


@_compiled
def _settled(h, lo, plain, special):
    """The double-double, or the plain double result where it or an operand is NaN or ±Inf (IEEE, as MPFR)."""
    plain_wins = special | (not math.isfinite(plain))
    return (plain if plain_wins else h), (0.0 if plain_wins | (not math.isfinite(lo)) else lo)


@_compiled
def _held(h, lo, rounding, grid, underflow, largest):
    """Whether ``h + lo`` is a number of the format, normal where the format may flush (or zero): ``rounding`` is
    Veltkamp's constant ``2^(53−p) + 1`` (``h`` rounded to ``p`` bits is ``c − (c − h)``, ``c = rounding·h``),
    ``grid`` ``2^(p−1−emin)`` (a subnormal is a multiple of ``1/grid``; 0: every double is)."""
    size = abs(h)
    c = rounding * h
    scaled = abs(h * grid)
    # A double at least 2⁵² is an integer; below, x is one iff adding and removing 2⁵² leaves it (round to nearest).
    on_grid = (grid == 0.0) | (scaled >= _TWO_52) | ((scaled + _TWO_52) - _TWO_52 == scaled)
    in_range = (underflow <= size) & (size <= largest) & (c - (c - h) == h) & on_grid
    return (lo == 0.0) & ((h == 0.0) | in_range)


@_compiled
def _guard(h, e, largest):
    """A budget that may take the result past the format's largest finite number constrains nothing (``inf``); an
    exact NaN or ±Inf has budget 0 (:func:`reference.tracked._unbounded`)."""
    unbounded = math.inf if math.isfinite(h) else 0.0
    return e if abs(h) + e <= largest else unbounded


# -- each operation on one element: the double-double value and the budget of reference.tracked ------------------


@_compiled
def _e_sum(a, al, ae, b, bl, be, u, f, rounding, grid, underflow, largest, test_exact):
    h, lo = _dd_add(a, al, b, bl)
    h, lo = _settled(h, lo, a + b, not (math.isfinite(a) & math.isfinite(b)))
    exact = test_exact & (ae == 0.0) & (be == 0.0) & _held(h, lo, rounding, grid, underflow, largest)
    budget = _guard(h, ae + be + u * abs(h) + f, largest)
    return h, lo, 0.0 if exact else budget


@_compiled
def _e_mul(a, al, ae, b, bl, be, u, f, rounding, grid, underflow, largest, test_exact):
    h, lo = _dd_mul(a, al, b, bl)
    h, lo = _settled(h, lo, a * b, not (math.isfinite(a) & math.isfinite(b)))
    exact = test_exact & (ae == 0.0) & (be == 0.0) & _held(h, lo, rounding, grid, underflow, largest)
    budget = _guard(h, abs(b) * ae + abs(a) * be + ae * be + u * abs(h) + f, largest)
    return h, lo, 0.0 if exact else budget


@_compiled
def _e_div(a, al, ae, b, bl, be, u, f, largest):
    """The quotient itself, its special values written out: where a reciprocal cannot serve (:func:`_k_div_by`)."""
    if math.isfinite(a) and math.isfinite(b) and b != 0.0:
        h, lo = _dd_div(a, al, b, bl)
        h, lo = _settled(h, lo, a / b, False)
    else:  # IEEE: x/±0 is ±Inf with the signs' product, 0/0 NaN (written out: Python raises on a zero divisor)
        h = a / b if b != 0.0 else (math.nan if a == 0.0 or a != a
                                     else math.copysign(math.inf, a) * math.copysign(1.0, b))
        h, lo = _settled(h, 0.0, h, True)
    return _quotient_budget(h, lo, ae, b, be, u, f, largest)


@_compiled
def _e_reciprocal(b, bl):
    """``1 / b`` to 106 bits where ``b`` is finite and not zero (else 0: no reciprocal)."""
    regular = math.isfinite(b) & (b != 0.0)
    h, lo = _dd_div(1.0, 0.0, b if regular else 1.0, bl if regular else 0.0)
    return (h if regular else 0.0), (lo if regular else 0.0)


@_compiled
def _quotient_budget(h, lo, ae, b, be, u, f, largest):
    """:meth:`Tracked.__truediv__`'s budget of a quotient ``h + lo`` of an operand with budget ``ae`` by ``b``."""
    margin = abs(b) - be
    positive = margin > 0
    exact_zero = (h == 0.0) & (lo == 0.0) & (ae == 0.0) & (be == 0.0)
    bound = (ae + abs(h) * be) / (margin if positive else 1.0) + u * 2 * abs(h) + f
    budget = _guard(h, bound if positive else math.inf, largest)
    return h, lo, 0.0 if exact_zero else budget


@_compiled
def _e_sqrt(a, al, ae, u, f, largest):
    regular = math.isfinite(a) & (a > 0)
    h, lo = _dd_sqrt(a if regular else 1.0, al if regular else 0.0)  # its leading word is √a rounded
    plain = math.sqrt(a if a >= 0 else math.nan)  # ±0, +Inf, or NaN below zero (IEEE, as MPFR)
    h, lo = (h if regular else plain), (lo if regular else 0.0)
    size = abs(h)
    root = math.sqrt(ae)
    positive = size > 0
    # |√x − √a| <= e / (√a + √(a − e)) where the value is not 0: tighter than √e
    tighter = ae / ((size + math.sqrt(max(abs(a) - ae, 0.0))) if positive else 1.0)
    bound = min(root, tighter) if positive else root
    return h, lo, _guard(h, bound + u * size + f, largest)


@_compiled
def _e_decay(a, al, ae, fh, fl, keep, rate_error, lam_eta, u, uf, f, largest):
    h, lo = _dd_mul(a, al, fh, fl)
    h, lo = _settled(h, lo, a * fh, not math.isfinite(a))
    size = abs(a)
    propagated = keep * ae + (size + ae) * rate_error
    forms = max(2 * u * size * lam_eta + 2 * f, uf * size * (2 * lam_eta + keep))
    return h, lo, _guard(h, propagated + forms + u * abs(h) + f, largest)


@_compiled
def _e_lerp(a, al, ae, b, bl, be, w, wl, we, u, f, largest):
    dh, dl = _dd_add(b, bl, -a, -al)
    ph, pl = _dd_mul(dh, dl, w, wl)
    h, lo = _dd_add(a, al, ph, pl)
    finite = math.isfinite(a) & math.isfinite(b) & math.isfinite(w)
    h, lo = _settled(h, lo, a + (b - a) * w, not finite)
    wf = abs(w)
    keep = abs(1.0 - wf)
    diff = abs(dh) if finite else math.nan
    propagated = keep * ae + wf * be + (diff + ae + be) * we
    first, second = 2 * diff * wf, 2 * (abs(a) * keep + abs(b) * wf)
    forms = second if second > first else first  # max(first, second), as a select
    return h, lo, _guard(h, propagated + u * (forms + abs(h)) + 3 * f, largest)


@_compiled
def _e_extreme(a, al, ae, b, bl, be, larger):
    """``max``/``min``: exact, the larger budget; NaN if either is (:func:`reference.tracked.maximum`)."""
    a_larger = (a > b) | ((a == b) & (al >= bl))
    a_smaller = (a < b) | ((a == b) & (al <= bl))
    a_wins = a_larger if larger else a_smaller
    nan = (a != a) | (b != b)
    return (math.nan if nan else a if a_wins else b), (0.0 if nan else al if a_wins else bl), \
        (0.0 if nan else max(ae, be))


# -- one pass per operation over whole arrays (each operand an array, or a constant passed as a float) ----------------
# Each returns how many of its budgets are zero (an upper bound): where none is, a later sum or product of the result
# cannot be exact and skips the test (TrackedArray.exact_somewhere).


@_loop
def _k_sum(ah, al, ae, bh, bl, be, sign, u, f, rounding, grid, underflow, largest, test_exact, oh, ol, oe):
    zeros = 0
    if test_exact:  # two loops: without the test, its arithmetic folds away
        for i in range(oh.size):
            oh[i], ol[i], oe[i] = _e_sum(_at(ah, i), _at(al, i), _at(ae, i), sign * _at(bh, i), sign * _at(bl, i),
                                         _at(be, i), u, f, rounding, grid, underflow, largest, True)
            zeros += oe[i] == 0.0
    else:
        for i in range(oh.size):
            oh[i], ol[i], oe[i] = _e_sum(_at(ah, i), _at(al, i), _at(ae, i), sign * _at(bh, i), sign * _at(bl, i),
                                         _at(be, i), u, f, rounding, grid, underflow, largest, False)
            zeros += oe[i] == 0.0
    return zeros


@_loop
def _k_mul(ah, al, ae, bh, bl, be, u, f, rounding, grid, underflow, largest, test_exact, oh, ol, oe):
    zeros = 0
    if test_exact:
        for i in range(oh.size):
            oh[i], ol[i], oe[i] = _e_mul(_at(ah, i), _at(al, i), _at(ae, i), _at(bh, i), _at(bl, i), _at(be, i),
                                         u, f, rounding, grid, underflow, largest, True)
            zeros += oe[i] == 0.0
    else:
        for i in range(oh.size):
            oh[i], ol[i], oe[i] = _e_mul(_at(ah, i), _at(al, i), _at(ae, i), _at(bh, i), _at(bl, i), _at(be, i),
                                         u, f, rounding, grid, underflow, largest, False)
            zeros += oe[i] == 0.0
    return zeros


@_loop
def _k_div_by(ah, al, ae, bh, bl, be, rh, rl, u, f, largest, oh, ol, oe):
    """``a / b`` as ``a`` times ``b``'s reciprocal ``rh + rl`` (to 106 bits: relative error ``<= 15·2⁻¹⁰⁶`` computed,
    ``2⁻¹⁰⁶`` from MPFR), so that the product's error keeps the quotient within ``γ``, in one pass without
    branches; then, where the reciprocal is out of the range in which its low word keeps 53 bits (or ``a`` is NaN
    or ±Inf), the quotient itself.  The budget is the quotient's."""
    direct = zeros = 0
    for i in range(oh.size):
        a, r = _at(ah, i), _at(rh, i)
        h, lo = _dd_mul(a, _at(al, i), r, _at(rl, i))
        h, lo = _settled(h, lo, h, False)
        oh[i], ol[i], oe[i] = _quotient_budget(h, lo, _at(ae, i), _at(bh, i), _at(be, i), u, f, largest)
        usable = math.isfinite(a) & (_RECIPROCAL_LOW < abs(r)) & (abs(r) < _RECIPROCAL_HIGH)
        direct += 0 if usable else 1
        zeros += oe[i] == 0.0
    if direct:
        for i in range(oh.size):
            a, r = _at(ah, i), _at(rh, i)
            if not (math.isfinite(a) and _RECIPROCAL_LOW < abs(r) < _RECIPROCAL_HIGH):
                oh[i], ol[i], oe[i] = _e_div(a, _at(al, i), _at(ae, i), _at(bh, i), _at(bl, i), _at(be, i), u, f,
                                             largest)
    return zeros + direct


@_loop
def _k_reciprocal(bh, bl, rh, rl):
    for i in range(bh.size):
        rh[i], rl[i] = _e_reciprocal(bh[i], bl[i])


@_loop
def _k_sqrt(ah, al, ae, u, f, largest, oh, ol, oe):
    zeros = 0
    for i in range(oh.size):
        oh[i], ol[i], oe[i] = _e_sqrt(_at(ah, i), _at(al, i), _at(ae, i), u, f, largest)
        zeros += oe[i] == 0.0
    return zeros


@_loop
def _k_decay(ah, al, ae, fh, fl, keep, rate_error, lam_eta, u, uf, f, largest, oh, ol, oe):
    zeros = 0
    for i in range(oh.size):
        oh[i], ol[i], oe[i] = _e_decay(_at(ah, i), _at(al, i), _at(ae, i), fh, fl, keep, rate_error, lam_eta, u,
                                       uf, f, largest)
        zeros += oe[i] == 0.0
    return zeros


@_loop
def _k_lerp(ah, al, ae, bh, bl, be, wh, wl, we, u, f, largest, oh, ol, oe):
    zeros = 0
    for i in range(oh.size):
        oh[i], ol[i], oe[i] = _e_lerp(_at(ah, i), _at(al, i), _at(ae, i), _at(bh, i), _at(bl, i), _at(be, i),
                                      _at(wh, i), _at(wl, i), _at(we, i), u, f, largest)
        zeros += oe[i] == 0.0
    return zeros


@_loop
def _k_elements(x, narrow, hi, lo, error):
    """Input elements held in float64 (``narrow``: in float32): the value, and as budget the rounding error
    ``|[x] − x|`` (exact, by Sterbenz's lemma; 0 for NaN and ±Inf)."""
    zeros = 0
    for i in range(x.size):
        v = np.float64(x[i])
        held = np.float64(np.float32(v)) if narrow else v
        e = abs(held - v) if math.isfinite(v) else 0.0
        hi[i], lo[i], error[i] = v, 0.0, e
        zeros += e == 0.0
    return zeros


@_loop
def _k_squares(ah, al, ae):
    """``Σ x²`` in double-double, and ``Σ (2|x|e + e²)``, the budgets' first- and second-order share.  Four running
    sums of every fourth term, added at the end: the same bound (the terms are non-negative), four chains of
    dependent additions instead of one."""
    h0, l0, h1, l1, h2, l2, h3, l3 = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    e0, e1, e2, e3 = 0.0, 0.0, 0.0, 0.0
    n = ah.size
    whole = n - n % 4
    for i in range(0, whole, 4):
        p0, q0 = _dd_mul(ah[i], al[i], ah[i], al[i])
        p1, q1 = _dd_mul(ah[i + 1], al[i + 1], ah[i + 1], al[i + 1])
        p2, q2 = _dd_mul(ah[i + 2], al[i + 2], ah[i + 2], al[i + 2])
        p3, q3 = _dd_mul(ah[i + 3], al[i + 3], ah[i + 3], al[i + 3])
        h0, l0 = _dd_add(h0, l0, p0, q0)
        h1, l1 = _dd_add(h1, l1, p1, q1)
        h2, l2 = _dd_add(h2, l2, p2, q2)
        h3, l3 = _dd_add(h3, l3, p3, q3)
        e0 += 2 * abs(ah[i]) * ae[i] + ae[i] * ae[i]
        e1 += 2 * abs(ah[i + 1]) * ae[i + 1] + ae[i + 1] * ae[i + 1]
        e2 += 2 * abs(ah[i + 2]) * ae[i + 2] + ae[i + 2] * ae[i + 2]
        e3 += 2 * abs(ah[i + 3]) * ae[i + 3] + ae[i + 3] * ae[i + 3]
    for i in range(whole, n):
        p0, q0 = _dd_mul(ah[i], al[i], ah[i], al[i])
        h0, l0 = _dd_add(h0, l0, p0, q0)
        e0 += 2 * abs(ah[i]) * ae[i] + ae[i] * ae[i]
    propagated = (e0 + e1) + (e2 + e3)
    h0, l0 = _dd_add(h0, l0, h1, l1)
    h2, l2 = _dd_add(h2, l2, h3, l3)
    high, low = _dd_add(h0, l0, h2, l2)
    return high, low, propagated


@_loop
def _k_extreme(ah, al, ae, bh, bl, be, larger, oh, ol, oe):
    zeros = 0
    for i in range(oh.size):
        oh[i], ol[i], oe[i] = _e_extreme(_at(ah, i), _at(al, i), _at(ae, i), _at(bh, i), _at(bl, i), _at(be, i),
                                         larger)
        zeros += oe[i] == 0.0
    return zeros


class Buffers:
    """Float64 arrays for the kernels' results, each reused once nothing but this pool holds it (its reference count
    says so): a fresh array of a million elements costs the operating system's zeroing of its pages, as much as a
    rule's product, and a step makes dozens.  One pool per thread (:func:`_empty`), keeping at most :attr:`KEPT`
    bytes of arrays nothing else holds when it allocates and when trimmed (:func:`trim_pool`)."""

    SMALLEST = 1 << 15  # below, an array comes from the allocator's own free lists
    KEPT = 1 << 28

    def __init__(self) -> None:
        self._arrays: dict[int, list[np.ndarray]] = {}  # by size

    def empty(self, n: int) -> np.ndarray:
        arrays = self._arrays.setdefault(n, [])
        for x in arrays:
            if sys.getrefcount(x) <= 3:  # held by the list, this loop and the call alone
                return x
        self.trim(8 * n)
        x = np.empty(n)
        arrays.append(x)
        return x

    def trim(self, coming: int = 0) -> None:
        """Let go of free arrays, largest first, until those kept and ``coming`` bytes more fit :attr:`KEPT`."""
        free = []
        for n, arrays in self._arrays.items():
            for i in range(len(arrays)):
                if sys.getrefcount(arrays[i]) <= 2:  # held by the list and the call alone
                    free.append((8 * n, n, i))
        kept = sum(size for size, _, _ in free)
        for size, n, i in sorted(free, reverse=True):  # indices in decreasing order: each deletion leaves the rest
            if kept + coming <= self.KEPT:
                break
            del self._arrays[n][i]
            kept -= size


# This thread's Buffers (.buffers), and while it evaluates in chunks (in_chunks): where their allocations go
# (.placement) and the per-step scalars converted to constants (.constants).
_pool = threading.local()


def _empty(n: int) -> np.ndarray:
    """An uninitialized float64 array of ``n`` elements: where a chunk's result goes (:func:`in_chunks`), or from
    this thread's pool where it is large."""
    placement = getattr(_pool, "placement", None)
    if placement is None:
        return _allocated(n)
    x = placement.take(n)
    return x if x is not None else placement.noted(_allocated(n))


def trim_pool() -> None:
    """Let this thread's pool keep at most :attr:`Buffers.KEPT` bytes of free arrays (an optimizer trims it after
    each step, so that arrays freed at the end of a large trajectory are not kept for good)."""
    buffers = getattr(_pool, "buffers", None)
    if buffers is not None:
        buffers.trim()


def _allocated(n: int) -> np.ndarray:
    if n < Buffers.SMALLEST:
        return np.empty(n)
    buffers = getattr(_pool, "buffers", None)
    if buffers is None:
        buffers = _pool.buffers = Buffers()
    return buffers.empty(n)


class TrackedArray:
    """Exact values (double-double) of a whole array, with the budget of each element for computing it in ``fmt``."""

    __slots__ = ("hi", "lo", "error", "fmt", "inverse", "exact_somewhere")
    __array_ufunc__ = None  # NumPy hands ``scalar * TrackedArray`` to TrackedArray.__rmul__

    def __init__(self, hi: np.ndarray, lo: np.ndarray, error: np.ndarray, fmt: FloatFormat,
                 exact_somewhere: bool = True) -> None:
        self.hi = hi
        self.lo = lo
        self.error = error
        self.fmt = fmt
        # Whether some element may have budget 0 (True unless known otherwise): a sum or product can be exact only
        # where both operands are, so without one it skips the test of its result's exactness.
        self.exact_somewhere = exact_somewhere
        # The reciprocal (rh, rl), once a division asked for it.
        self.inverse: tuple[Any, ...] | None = None

    @property
    def size(self) -> np.ndarray:
        """``|value|`` to double precision (``|hi|``), as :attr:`Tracked.size`."""
        return np.abs(self.hi)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def elements(cls, array: Any, fmt: FloatFormat) -> TrackedArray:
        """Input elements as held in ``fmt``: float64 values, budget the actual rounding error ``|[x]_fmt − x|``
        (zero for the ``fmt``-valued inputs a candidate is given)."""
        source = np.asarray(array).reshape(-1)
        n = source.size
        hi, lo, error = _empty(n), _empty(n), _empty(n)
        if fmt.name in ("float32", "float64"):  # one pass, the rounding to float32 by the machine's conversion
            wide = source.dtype in (np.float32, np.float64)  # read as they are: no float64 copy first
            x = np.ascontiguousarray(source if wide else source.astype(np.float64))
            zeros = _k_elements(x, fmt.name == "float32", hi, lo, error)
            return cls(hi, lo, error, fmt, zeros > 0)
        hi[:] = source
        lo.fill(0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            np.subtract(hi.astype(numpy_dtype(fmt)), hi, out=error)  # Sterbenz: the difference is exact
            np.abs(error, out=error)
            np.fmax(error, 0.0, out=error)  # NaN (x is NaN or ±Inf) to 0; a finite x beyond the format is off by inf
        return cls(hi, lo, error, fmt)

    @classmethod
    def zeros(cls, n: int, fmt: FloatFormat) -> TrackedArray:
        z = np.zeros(n)
        return cls(z, z.copy(), z.copy(), fmt)

    @classmethod
    def constant(cls, x: Any) -> TrackedArray:
        """A ``Tracked`` scalar as a 0-d array that broadcasts against the others, its value to 106 bits."""
        hi = float(x.value)
        lo = float(x.value - mpfr(hi)) if gmpy2.is_finite(x.value) else 0.0
        return cls(np.asarray(hi), np.asarray(lo), np.asarray(float(x.error)), x.fmt, x.error == 0)

    def __len__(self) -> int:
        return self.hi.size

    def scalar(self, index: int) -> Any:
        """Element ``index`` as a ``Tracked`` number (a restored scalar state)."""
        from optimizer_conformance.reference.tracked import Tracked

        return Tracked(DoubleDoubles(self.hi, self.lo)[index], float(self.error[index]), self.fmt)

    # -- helpers ----------------------------------------------------------------------
    def _operand(self, other: Any) -> TrackedArray | None:
        """``other`` as an array of this one's length: a TrackedArray, a Tracked scalar, or an exact literal."""
        if isinstance(other, TrackedArray):
            return other
        from optimizer_conformance.reference.tracked import Tracked

        cache = getattr(_pool, "constants", None)
        if cache is not None:  # in chunks: each scalar converted once for all of them
            key = id(other) if isinstance(other, Tracked) else (type(other), other, self.fmt)
            hit = cache.get(key)
            if hit is not None and (hit[0] is other or not isinstance(other, Tracked)):
                return hit[1]
        scalar = other
        if not isinstance(scalar, Tracked):
            scalar = Tracked.exact(0, self.fmt)._coerce(other)  # a literal the format does not hold: TypeError
            if scalar is NotImplemented:
                return None
        constant = TrackedArray.constant(scalar)
        if cache is not None:
            cache[key] = (other, constant)  # holds ``other``, so that its id names it while the cache lives
        return constant

    def _run(self, kernel: Any, operands: tuple[TrackedArray, ...], *parameters: Any) -> TrackedArray:
        """One kernel over the operands (a constant is a 0-d array), writing the result's three arrays."""
        flat: list[Any] = []
        n = 1
        for operand in operands:
            for x in (operand.hi, operand.lo, operand.error):
                if x.ndim:  # every array is one contiguous run of n elements
                    n = x.size
                    flat.append(x if x.flags.c_contiguous and x.ndim == 1 else np.ascontiguousarray(x).reshape(n))
                else:  # a constant goes in as a float
                    flat.append(float(x))
        out = _empty(n), _empty(n), _empty(n)
        zeros = kernel(*flat, *parameters, *out)
        return TrackedArray(*out, self.fmt, exact_somewhere=zeros > 0)

    def _format(self) -> tuple[float, float, float, float, float, float]:
        """The format as the kernels take it: u, the underflow allowance, Veltkamp's constant for its precision,
        its subnormal grid (0 for float64: every double is on it), the smallest size held exactly, the largest."""
        fmt = self.fmt
        grid = 0.0 if fmt.precision == 53 else 2.0 ** (fmt.precision - 1 - fmt.emin)
        return (fmt.unit_roundoff, fmt.underflow, 2.0 ** (53 - fmt.precision) + 1, grid, fmt.underflow,
                fmt.largest)

    # -- arithmetic -------------------------------------------------------------------
    def _sum(self, other: TrackedArray, sign: float) -> TrackedArray:
        test_exact = self.exact_somewhere and other.exact_somewhere
        return self._run(_k_sum, (self, other), sign, *self._format(), test_exact)

    def __add__(self, other):
        other = self._operand(other)
        return NotImplemented if other is None else self._sum(other, 1.0)

    __radd__ = __add__

    def __sub__(self, other):
        other = self._operand(other)
        return NotImplemented if other is None else self._sum(other, -1.0)

    def __rsub__(self, other):
        other = self._operand(other)
        return NotImplemented if other is None else other._sum(self, -1.0)

    def __mul__(self, other):
        other = self._operand(other)
        if other is None:
            return NotImplemented
        return self._run(_k_mul, (self, other), *self._format(), self.exact_somewhere and other.exact_somewhere)

    __rmul__ = __mul__

    def _divide(self, other: TrackedArray) -> TrackedArray:
        """``self / other`` as ``self`` times ``other``'s reciprocal (formed once and kept; a per-step scalar's from
        MPFR), element by element the quotient where the reciprocal cannot serve.  Even a single division is
        faster so: a reciprocal and a product cost less than the branch-free quotient."""
        u, f, *_, largest = self._format()
        return self._run(_k_div_by, (self, other), *other._reciprocal(), u, f, largest)

    def _reciprocal(self) -> tuple[Any, Any]:
        """The reciprocal to 106 bits (0 where there is none), formed once: a per-step scalar's from MPFR."""
        if not self.inverse:
            if self.hi.ndim:
                rh, rl = _empty(self.hi.size), _empty(self.hi.size)
                _k_reciprocal(self.hi.reshape(-1), self.lo.reshape(-1), rh, rl)
                self.inverse = (rh, rl)
            elif not math.isfinite(float(self.hi)) or float(self.hi) == 0.0:
                self.inverse = (0.0, 0.0)
            else:
                with gmpy2.context(gmpy2.get_context(), precision=160):
                    reciprocal = 1 / (mpfr(float(self.hi)) + float(self.lo))
                    self.inverse = (float(reciprocal), float(reciprocal - float(reciprocal)))
        return self.inverse

    def __truediv__(self, other):
        other = self._operand(other)
        return NotImplemented if other is None else self._divide(other)

    def __rtruediv__(self, other):
        other = self._operand(other)
        return NotImplemented if other is None else other._divide(self)

    def __neg__(self) -> TrackedArray:
        return TrackedArray(-self.hi, -self.lo, self.error, self.fmt, self.exact_somewhere)

    def __abs__(self) -> TrackedArray:
        negative = self.hi < 0
        return TrackedArray(np.where(negative, -self.hi, self.hi), np.where(negative, -self.lo, self.lo),
                            self.error, self.fmt, self.exact_somewhere)

    def to(self, fmt: FloatFormat) -> TrackedArray:
        """Cast to another format (one rounding unless it widens), as :meth:`Tracked.to`."""
        if fmt == self.fmt:
            return self
        widens = fmt.precision >= self.fmt.precision and fmt.emin <= self.fmt.emin
        extra = 0.0 if widens else fmt.unit_roundoff * self.size + fmt.underflow
        return TrackedArray(self.hi, self.lo, self.error + extra, fmt)

    def __repr__(self) -> str:
        return f"TrackedArray({self.hi.size} elements in {self.fmt})"

    # -- the functions of reference.tracked ------------------------------------------
    def sqrt(self) -> TrackedArray:
        if np.any(self.hi < 0):
            raise ValueError(f"square root of a negative value in {self!r}")
        u, f, *_, largest = self._format()
        return self._run(_k_sqrt, (self,), u, f, largest)

    def extreme(self, other: Any, larger: bool) -> TrackedArray:
        """``max(a, b)`` or ``min(a, b)``: exact, the larger budget; NaN if either is."""
        return self._run(_k_extreme, (self, self._operand(other)), larger)

    def lerp(self, b: Any, weight: Any) -> TrackedArray:
        """``a + (b − a)·w``: :func:`reference.tracked.lerp`'s value and budget, element-wise."""
        u, f, *_, largest = self._format()
        return self._run(_k_lerp, (self, self._operand(b), self._operand(weight)), u, f, largest)

    def decay(self, rate: Any, learning_rate: Any, factor_fmt: FloatFormat) -> TrackedArray:
        """``θ·(1 − λη)``: :func:`reference.tracked.decay` element-wise (``rate``, ``learning_rate``: scalars)."""
        factor = 1 - rate.value * learning_rate.value
        factor_hi = float(factor)
        lam_f, eta_f = rate.size, learning_rate.size
        rate_error = eta_f * rate.error + lam_f * learning_rate.error + rate.error * learning_rate.error
        u, f, *_, largest = self._format()
        return self._run(_k_decay, (self,), factor_hi, float(factor - factor_hi), abs(1.0 - lam_f * eta_f),
                         rate_error, lam_f * eta_f, u, max(u, factor_fmt.unit_roundoff), f, largest)

    def sum_of_squares(self) -> Any:
        """``Σ x²`` as a ``Tracked`` scalar with :func:`reference.tracked.sum_of_squares`'s budget; its value summed
        in double-double (the terms are non-negative: relative error at most ``n·2⁻¹⁰⁴``, ``2⁻²¹`` of the budget's
        ``n·u·Σx²`` for ``n <= 2³⁰``), or by MPFR where an element is NaN or ±Inf (IEEE: Inf, or NaN)."""
        from optimizer_conformance.reference.tracked import Tracked, _guard

        fmt = self.fmt
        if np.all(np.isfinite(self.hi)):
            high, low, propagated = _k_squares(self.hi, self.lo, self.error)
            with gmpy2.context(gmpy2.get_context(), precision=128):
                total = mpfr(high) + low
        else:
            with np.errstate(all="ignore"):
                total = gmpy2.fsum((self.hi * self.hi).tolist())
            propagated = math.inf
        out = Tracked(total, 0.0, fmt)
        n = self.hi.size
        out.error = propagated + n * fmt.unit_roundoff * out.size + n * fmt.underflow
        return _guard(out)

    def either(self, *others: TrackedArray) -> TrackedArray:
        """The first form's value, the worst form's budget (:func:`reference.tracked.in_either_order`)."""
        error = self.error
        for other in others:
            error = np.maximum(error, other.error, out=_empty(error.size) if error.ndim else None)
        # a worst budget is zero only where every form's is
        return TrackedArray(self.hi, self.lo, error, self.fmt,
                            self.exact_somewhere and all(other.exact_somewhere for other in others))


class DoubleDoubles(Sequence):
    """The exact values of an array quantity as the oracle reports them: held as double-doubles, read as MPFR
    numbers one at a time when asked (the fixtures' 34 digits, a finding's element), judged without them."""

    def __init__(self, hi: np.ndarray, lo: np.ndarray) -> None:
        self.hi, self.lo = hi, lo

    def __len__(self) -> int:
        return self.hi.size

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        with gmpy2.context(gmpy2.get_context(), precision=128):  # hi + lo exactly, unless far apart
            return mpfr(float(self.hi[index])) + float(self.lo[index])

    def as_float64(self) -> np.ndarray:
        return self.hi.copy()  # the double nearest hi + lo (|lo| <= ulp(hi)/2)

    def ratios(self, candidate: np.ndarray, budget: np.ndarray) -> np.ndarray:
        """:func:`reference.pipeline.budget_ratios`, element-wise in float64: ``|c − hi − lo|`` is formed as
        ``|(c − hi) − lo|``, where ``c − hi`` is exact when they are close (Sterbenz) and otherwise far larger than
        any budget it is divided by."""
        c = np.asarray(candidate, dtype=np.float64).reshape(-1)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            difference = np.abs((c - self.hi) - self.lo)
            ratio = np.where(budget > 0, difference / budget, np.where(difference == 0, 0.0, np.inf))
            ratio = np.where(np.isnan(c), np.inf, ratio)
            ratio = np.where(budget == np.inf, 0.0, ratio)
            special = ~np.isfinite(self.hi)
            return np.where(special, np.where(np.isfinite(c), np.inf, 0.0), ratio)


# -- one pipeline for both containers: a variable's elements as a list of Tracked, or one TrackedArray ----------------


CHUNK = 1 << 15  # elements per chunk: an element-wise step's intermediates stay in the core's caches


class _Placement:
    """The arrays a chunk's step allocates (:func:`_empty`), counted: in the first chunk their identities are
    recorded; in the others, the allocations that made the first chunk's results are handed the results' own
    slices, so that the kernels write there and nothing is copied."""

    __slots__ = ("calls", "record", "targets")

    def __init__(self, targets: dict[int, np.ndarray] | None = None) -> None:
        self.calls = 0
        self.record: list[int] | None = [] if targets is None else None
        self.targets = targets or {}

    def take(self, n: int) -> np.ndarray | None:
        index = self.calls
        self.calls += 1
        target = self.targets.get(index)
        return target if target is not None and target.size == n else None

    def noted(self, x: np.ndarray) -> np.ndarray:
        if self.record is not None:
            self.record.append(id(x))
        return x


def in_chunks(fn: Any, *columns: TrackedArray) -> Any:
    """``fn`` of whole ``TrackedArray`` columns (element-wise: element ``i`` of its results depends on element ``i``
    of the columns alone), evaluated :data:`CHUNK` elements at a time: the same values and budgets, each
    intermediate array small enough to stay in cache instead of a pass through memory per operation (which costs as
    much as its arithmetic), and each per-step scalar converted once.  The results (arrays, in tuples, lists and
    dicts) are whole arrays: the first chunk's copied in, the others' written there by the kernels that make them
    (where a chunk's step allocates as the first one did, which an element-wise step does; else copied)."""
    n = len(columns[0])
    if n <= CHUNK:
        return fn(*columns)

    def chunk(start: int) -> list[TrackedArray]:
        return [TrackedArray(c.hi[start:start + CHUNK], c.lo[start:start + CHUNK], c.error[start:start + CHUNK],
                             c.fmt, c.exact_somewhere) for c in columns]

    outer_constants, outer_placement = getattr(_pool, "constants", None), getattr(_pool, "placement", None)
    if outer_constants is None:
        _pool.constants = {}
    try:
        first_placement = _pool.placement = _Placement()
        part = fn(*chunk(0))
        _pool.placement = None
        whole = _like(part, n)
        leaves = list(_arrays_of(whole))
        allocated = {identity: j for j, identity in enumerate(first_placement.record)}  # the last one that made it
        made_by = [allocated.get(id(x)) for x in _arrays_of(part)]
        for start in range(0, n, CHUNK):
            slices = [x[start:start + CHUNK] for x in leaves]
            if start:
                _pool.placement = _Placement({j: piece for j, piece in zip(made_by, slices) if j is not None})
                part = fn(*chunk(start))
                _pool.placement = None
            for x, piece in zip(_arrays_of(part), slices):
                if x is not piece:  # made elsewhere (every array of the first chunk): copied
                    piece[:] = x
            _flag(part, whole)
    finally:
        _pool.constants, _pool.placement = outer_constants, outer_placement
    return whole


def _like(part: Any, n: int) -> Any:
    """Results of ``n`` elements shaped as a chunk's results ``part`` (arrays of their own, not yet written)."""
    if isinstance(part, TrackedArray):
        return TrackedArray(_empty(n), _empty(n), _empty(n), part.fmt, exact_somewhere=False)
    if isinstance(part, dict):
        return {key: _like(value, n) for key, value in part.items()}
    if isinstance(part, (tuple, list)):
        return type(part)(_like(value, n) for value in part)
    raise TypeError(f"an element-wise function returned {type(part).__name__}, not arrays")


def _arrays_of(results: Any) -> Iterator[np.ndarray]:
    """The arrays of results (each TrackedArray's three), in one order for results of one shape."""
    if isinstance(results, TrackedArray):
        yield from (results.hi, results.lo, results.error)
    else:
        for value in (results.values() if isinstance(results, dict) else results):
            yield from _arrays_of(value)


def _flag(part: Any, whole: Any) -> None:
    """Whole results may have a zero budget where a chunk's do."""
    if isinstance(part, TrackedArray):
        whole.exact_somewhere = whole.exact_somewhere or part.exact_somewhere
    else:
        pairs = ((part[key], whole[key]) for key in part) if isinstance(part, dict) else zip(part, whole)
        for p, w in pairs:
            _flag(p, w)


def each(fn: Any, *columns: Any) -> Any:
    """``fn`` applied element-wise: to each element of lists of ``Tracked`` (the MPFR path), or to whole
    ``TrackedArray`` columns, chunk by chunk (:func:`in_chunks`; ``fn`` is written with the operators and functions
    of :mod:`reference.tracked`, which work on both)."""
    if isinstance(columns[0], TrackedArray):
        return in_chunks(fn, *columns)
    return [fn(*xs) for xs in zip(*columns)]


def zeros_like(elements: Any, fmt: FloatFormat | None = None) -> Any:
    """Exact zeros, as many as ``elements`` has, in ``fmt`` (default: theirs)."""
    from optimizer_conformance.reference.tracked import Tracked

    fmt = fmt or format_of(elements)
    if isinstance(elements, TrackedArray):
        return TrackedArray.zeros(len(elements), fmt)
    return [Tracked.exact(0, fmt) for _ in elements]


def copy(elements: Any) -> Any:
    """The same values and budgets, apart from ``elements`` (a TrackedArray is never changed in place)."""
    if isinstance(elements, TrackedArray):
        return elements
    from optimizer_conformance.reference.tracked import Tracked

    return [Tracked(x.value, x.error, x.fmt) for x in elements]


def first(elements: Any) -> Any:
    """The first element, as a ``Tracked`` number."""
    return elements.scalar(0) if isinstance(elements, TrackedArray) else elements[0]


def gather(elements: Any, indices: list[int]) -> Any:
    """The elements at ``indices`` (a slice a norm is taken over)."""
    if isinstance(elements, TrackedArray):
        return TrackedArray(elements.hi[indices], elements.lo[indices], elements.error[indices], elements.fmt)
    return [elements[j] for j in indices]


def scattered(elements: Any, groups: list[list[int]], parts: list[Any]) -> Any:
    """``elements`` with each group of indices replaced by its part (the groups cover every index once)."""
    if isinstance(elements, TrackedArray):
        hi, lo, error = np.empty_like(elements.hi), np.empty_like(elements.lo), np.empty_like(elements.error)
        for group, part in zip(groups, parts):
            hi[group], lo[group], error[group] = part.hi, part.lo, part.error
        return TrackedArray(hi, lo, error, elements.fmt)
    out = list(elements)
    for group, part in zip(groups, parts):
        for j, x in zip(group, part):
            out[j] = x
    return out


def format_of(elements: Any) -> FloatFormat:
    return elements.fmt if isinstance(elements, TrackedArray) else elements[0].fmt


def exact_values(elements: Any) -> Sequence:
    """The exact values: MPFR numbers, or a TrackedArray's :class:`DoubleDoubles`."""
    if isinstance(elements, TrackedArray):
        return DoubleDoubles(elements.hi.copy(), elements.lo.copy())
    return [x.value for x in elements]


def budgets(elements: Any) -> np.ndarray:
    return elements.error.copy() if isinstance(elements, TrackedArray) else np.array([x.error for x in elements])
