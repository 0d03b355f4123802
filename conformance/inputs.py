"""The one input generator: variables and gradients built from exact operations only.

Every input of every fixture and generated trajectory comes from integers drawn from a seeded generator
(PCG64's integer stream is the same on every machine) turned into floats by exact operations: an integer
mantissa scaled by a power of two (``ldexp``), products of such numbers that fit in 53 bits, and a
correctly rounded conversion to the input dtype.  Never ``pow``, ``exp``, ``log`` or normal sampling:
their results depend on the CPU's libm and SIMD paths (NumPy's float64 ``pow``/``exp``/``log`` take AVX-512
paths on some machines), and the corpus must be identical byte for byte on every machine.

Magnitudes are given as binary exponents: ``(-13, 3)`` spreads values over ``[2**-13, 2**3)``.
"""

from __future__ import annotations

import zlib

import numpy as np
from optimizer_conformance.reference.formats import numpy_dtype

CENTERED_BITS = 22  # each of the four summed integers lies in [-2**22, 2**22]: the sum fits in 25 bits
MANTISSA_BITS = 24  # a mantissa in [2**23, 2**24): exactly representable in float32


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


def held(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` (IEEE round to nearest even), as float64 again."""
    return np.asarray(values, dtype=np.float64).astype(numpy_dtype(dtype)).astype(np.float64)

