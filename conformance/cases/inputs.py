"""The one input generator: variables and gradients built from exact operations only.

Every input of every fixture and generated trajectory comes from integers drawn from a seeded generator
(PCG64's integer stream is the same on every machine) turned into floats by exact operations: an integer
mantissa scaled by a power of two (``ldexp``), products of such numbers that fit in 53 bits, and a
correctly rounded conversion to the input dtype.  Never ``pow``, ``exp``, ``log`` or normal sampling:
their results depend on the CPU's libm and SIMD paths (NumPy's float64 ``pow``/``exp``/``log`` take AVX-512
paths on some machines), and the corpus must be identical byte for byte on every machine.

Magnitudes are given as binary exponents: ``(-13, 3)`` spreads values over ``[2**-13, 2**3)``.

Imports: NumPy and the oracle's formats only.
"""

from __future__ import annotations

import zlib

import numpy as np
from optimizer_conformance.reference.formats import numpy_dtype

CENTERED_BITS = 22  # each of the four summed integers lies in [-2**22, 2**22]: the sum fits in 25 bits
MANTISSA_BITS = 24  # a mantissa in [2**23, 2**24): exactly representable in float32

# Gradient magnitudes of each dtype, as binary exponents: gradients inside these stay clear of overflow in
# every computation of the pipeline (in float16 a sum of squares of a dozen gradients of 2**4 is 2**11.6,
# far below 65504; NaN and Inf are not modelled).
MAGNITUDES = {"float16": (-10, 3), "bfloat16": (-13, 3), "float32": (-13, 3), "float64": (-13, 3)}

# Binary exponents of the subnormal range of each format (where a gradient loses precision).
SUBNORMAL = {"float32": (-149, -126), "float64": (-1074, -1022), "float16": (-24, -16), "bfloat16": (-149, -126)}

# A gradient spike: the second step's gradients scaled up by 2**5, every other step's down by 2**-4
# (AMSGrad's running max then differs from the velocity for the rest of the run).
SPIKE, AFTER_SPIKE = 5, -4


def generator(name: str) -> np.random.Generator:
    """The seeded generator of one named input set (the seed is the name's CRC-32)."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def centered(rng: np.random.Generator, shape, exponent: int = 0) -> np.ndarray:
    """Bell-shaped values in ``[-2, 2] * 2**exponent``: the sum of four uniform integers, times a power of two."""
    k = rng.integers(-(2**CENTERED_BITS), 2**CENTERED_BITS, size=(4, *shape), endpoint=True).sum(axis=0)
    return np.ldexp(k.astype(np.float64), exponent - (CENTERED_BITS + 1))


def signs(rng: np.random.Generator, shape) -> np.ndarray:
    """``±1.0`` with equal probability."""
    return (2 * rng.integers(0, 2, size=shape) - 1).astype(np.float64)


def log_uniform(rng: np.random.Generator, shape, low: int, high: int) -> np.ndarray:
    """Positive values spread evenly over the binary exponents ``[low, high)``: a 24-bit mantissa times 2**e."""
    mantissa = rng.integers(2 ** (MANTISSA_BITS - 1), 2**MANTISSA_BITS, size=shape)
    exponent = rng.integers(low, high, size=shape)
    return np.ldexp(mantissa.astype(np.float64), exponent - (MANTISSA_BITS - 1))


def spread(rng: np.random.Generator, shape, low: int, high: int) -> np.ndarray:
    """Signed, bell-shaped values whose magnitudes span the binary exponents ``[low, high)`` (gradients)."""
    return centered(rng, shape) * log_uniform(rng, shape, low, high)  # 25 + 24 bits: the product is exact


def spiked(gradients: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """``gradients`` (a list of steps) with a spike at the second step and smaller ones after (exact scaling)."""
    return [[np.ldexp(g, SPIKE if k == 1 else AFTER_SPIKE) for g in step] for k, step in enumerate(gradients)]


def held(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` (IEEE round to nearest even), as float64 again."""
    return np.asarray(values, dtype=np.float64).astype(numpy_dtype(dtype)).astype(np.float64)

