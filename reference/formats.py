"""Binary floating-point formats that a candidate may compute in.

A format is described by its precision ``p`` (significand bits, hidden bit
included) and its exponent range.  From these the oracle derives:

* ``unit_roundoff`` ``u = 2**-p``: one round-to-nearest in the normal range
  changes a value by at most ``u * |x|``;
* ``underflow`` ``2**emin``, the smallest normal number: a rounding that
  lands in the subnormal range, or an implementation that flushes subnormals
  to zero (CPU kernels often do for float32), moves a value by at most this
  much in absolute terms.  float16 is computed through float32 on CPUs and
  keeps its subnormals, and its smallest normal (6.1e-5) is too coarse to
  give away: there the allowance is half the smallest subnormal, ``2**(emin - p)``.

``round`` rounds an exact value to the format exactly as IEEE 754
round-to-nearest-even does, subnormals included (MPFR through gmpy2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2
from gmpy2 import mpfr


@dataclass(frozen=True)
class FloatFormat:
    name: str
    precision: int
    emin: int
    emax: int
    hyperparameters_via: FloatFormat | None = None
    gradual_underflow_only: bool = False
    _context: gmpy2.context = field(init=False, repr=False, compare=False)
    # unit_roundoff, underflow, largest and largest_exact_integer are plain attributes (set in
    # __post_init__): the oracle reads them in every operation.
    unit_roundoff: float = field(init=False, repr=False, compare=False)
    underflow: float = field(init=False, repr=False, compare=False)
    largest: float = field(init=False, repr=False, compare=False)
    largest_exact_integer: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # MPFR writes x = m * 2**e with 1/2 <= m < 1, one more than IEEE's exponent;
        # the smallest subnormal is 2**(emin - precision + 1).
        context = gmpy2.context(
            precision=self.precision,
            emin=self.emin - self.precision + 2,
            emax=self.emax + 1,
            subnormalize=True,
        )
        object.__setattr__(self, "_context", context)
        object.__setattr__(self, "unit_roundoff", 2.0**-self.precision)
        underflow = 2.0 ** (self.emin - self.precision) if self.gradual_underflow_only else 2.0**self.emin
        object.__setattr__(self, "underflow", underflow)
        object.__setattr__(self, "largest", float((2 - 2.0 ** (1 - self.precision)) * 2.0**self.emax))
        object.__setattr__(self, "largest_exact_integer", 2**self.precision)

    def hyperparameters_through(self, floatx: FloatFormat) -> FloatFormat:
        """This format, for an implementation that may hold Python-float hyperparameters in ``floatx`` first.

        Keras's TensorFlow and torch backends turn a Python float into a
        ``floatx`` tensor before casting it (``ops.cast(self.beta_1, float64)``
        sees ``float32(0.9)``), so a float64 variable may meet float32-rounded
        hyperparameters.  Only a narrower ``floatx`` changes anything.
        """
        if floatx.precision >= self.precision:
            return self
        return FloatFormat(self.name, self.precision, self.emin, self.emax, hyperparameters_via=floatx,
                           gradual_underflow_only=self.gradual_underflow_only)

    def round(self, x) -> mpfr:
        """``x`` rounded to this format (round to nearest, ties to even)."""
        return self._context.plus(x)

    def rounding_error(self, x) -> float:
        """``|round(x) - x|`` exactly, as an upward-rounded float."""
        return _float_up(abs(self.round(x) - x))

    def is_exact(self, x) -> bool:
        return self.round(x) == x

    def __str__(self) -> str:
        if self.hyperparameters_via is not None:
            return f"{self.name} (hyperparameters through {self.hyperparameters_via.name})"
        return self.name


def _float_up(x: mpfr) -> float:
    f = float(x)
    return f if f >= x else float(gmpy2.next_above(mpfr(f, 53)))


FLOAT64 = FloatFormat("float64", 53, -1022, 1023)
FLOAT32 = FloatFormat("float32", 24, -126, 127)
FLOAT16 = FloatFormat("float16", 11, -14, 15, gradual_underflow_only=True)
BFLOAT16 = FloatFormat("bfloat16", 8, -126, 127)

FORMATS: dict[str, FloatFormat] = {f.name: f for f in (FLOAT64, FLOAT32, FLOAT16, BFLOAT16)}


def numpy_dtype(fmt: str | FloatFormat):
    """The NumPy dtype holding ``fmt`` (bfloat16 through ``ml_dtypes``)."""
    import numpy as np

    name = get_format(fmt).name
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def get_format(name: str | FloatFormat) -> FloatFormat:
    """The format called ``name`` (float64, float32, float16 or bfloat16)."""
    if isinstance(name, FloatFormat):
        return name
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"dtype must be one of {sorted(FORMATS)}; got {name!r}"
        ) from None
