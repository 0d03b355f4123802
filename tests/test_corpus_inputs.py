"""The corpus is the same on every machine: its inputs are exact constructions, and SIMD paths do not matter.

One test recomputes every input of every fixture from the generator's integers with Python's integer
arithmetic alone (``fractions.Fraction`` and a round-to-nearest-even written on integers); another
regenerates the corpus with NumPy's SIMD dispatch switched off and compares the bytes.
"""

import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from optimizer_conformance.conformance.cases import catalogue, inputs
from optimizer_conformance.conformance.cases.catalogue import CORPUS

from tests.conftest import OPTCONF

# (precision p, minimum normal exponent, maximum exponent) of each input format.
FORMATS = {"float64": (53, -1022, 1023), "float32": (24, -126, 127), "float16": (11, -14, 15),
           "bfloat16": (8, -126, 127)}


def round_to_format(x: Fraction, dtype: str) -> Fraction | float:
    """``x`` rounded to nearest, ties to even, into ``dtype``: integers only."""
    p, emin, emax = FORMATS[dtype]
    if x == 0:
        return Fraction(0)
    sign, x = (-1 if x < 0 else 1), abs(x)
    e = x.numerator.bit_length() - x.denominator.bit_length()
    if Fraction(2) ** e > x:
        e -= 1
    e = max(e, emin)  # subnormals keep the minimum exponent's quantum
    quantum = Fraction(2) ** (e - p + 1)
    n, remainder = divmod(x / quantum, 1)
    n = int(n)
    if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and n % 2 == 1):
        n += 1
    value = n * quantum
    if value == 0:
        return -0.0 if sign < 0 else 0.0  # a product that underflows keeps its sign
    if value >= Fraction(2) ** (emax + 1):
        return sign * float("inf")
    return sign * value


class IntegerInputs:
    """:mod:`conformance.cases.inputs` again, from the same integers, with Python's integer arithmetic alone."""

    @staticmethod
    def _floats(values, shape) -> np.ndarray:
        return np.array([float(v) for v in values], dtype=np.float64).reshape(shape)

    def centered(self, rng, shape, exponent=0):
        k = rng.integers(-(2**inputs.CENTERED_BITS), 2**inputs.CENTERED_BITS, size=(4, *shape), endpoint=True)
        sums = [sum(int(k[(j, *i)]) for j in range(4)) for i in np.ndindex(*shape)]
        return self._floats([Fraction(s) * Fraction(2) ** (exponent - inputs.CENTERED_BITS - 1) for s in sums], shape)

    def signs(self, rng, shape):
        return self._floats([2 * int(i) - 1 for i in rng.integers(0, 2, size=shape).reshape(-1)], shape)

    def log_uniform(self, rng, shape, low, high):
        m = rng.integers(2 ** (inputs.MANTISSA_BITS - 1), 2**inputs.MANTISSA_BITS, size=shape).reshape(-1)
        e = rng.integers(low, high, size=shape).reshape(-1)
        exact = [Fraction(int(a)) * Fraction(2) ** (int(b) - inputs.MANTISSA_BITS + 1) for a, b in zip(m, e)]
        return self._floats([round_to_format(x, "float64") for x in exact], shape)

    def spread(self, rng, shape, low, high):
        c, u = self.centered(rng, shape), self.log_uniform(rng, shape, low, high)
        return self._floats([round_to_format(Fraction(a) * Fraction(b), "float64")
                             for a, b in zip(c.reshape(-1), u.reshape(-1))], shape)

    def held(self, values, dtype):
        values = np.asarray(values, dtype=np.float64)
        # A zero keeps its sign; Inf and NaN (what a LossScaleOptimizer skips) are held as they are.
        return self._floats([v if v == 0 or not np.isfinite(v) else round_to_format(Fraction(float(v)), dtype)
                             for v in values.reshape(-1)], values.shape)


def _bits(arrays) -> list[str]:
    return [None if a is None else [float(x).hex() for x in np.asarray(a).reshape(-1)] for a in arrays]


@pytest.mark.parametrize("entry", [e for e in CORPUS if e.steps <= 100], ids=lambda e: e.name)
def test_every_input_is_recomputed_bit_for_bit_from_the_seeded_integers(entry, monkeypatch):
    variables, gradients = entry.inputs()
    integer = IntegerInputs()
    for name in ("centered", "signs", "log_uniform", "spread", "held"):
        monkeypatch.setattr(catalogue, name, getattr(integer, name))
    again_variables, again_gradients = entry.inputs()
    assert _bits(a for _, a in variables) == _bits(a for _, a in again_variables)
    for step, again in zip(gradients, again_gradients):
        assert _bits(step) == _bits(again)


def test_the_input_constructions_hold_on_subnormal_and_extreme_ranges():
    integer = IntegerInputs()
    for dtype, (low, high) in {**inputs.SUBNORMAL, "float32": (-100, 50)}.items():
        a = inputs.held(inputs.spread(np.random.default_rng(7), (257,), low, high), dtype)
        b = integer.held(integer.spread(np.random.default_rng(7), (257,), low, high), dtype)
        assert _bits([a]) == _bits([b]), dtype


def test_the_corpus_regenerates_identically_with_numpy_simd_switched_off():
    import numpy._core._multiarray_umath as umath

    dispatch = " ".join(umath.__cpu_dispatch__)
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=dispatch)
    probe = subprocess.run([sys.executable, "-c", "import numpy._core._multiarray_umath as m; "
                            "print(sorted(k for k in m.__cpu_dispatch__ if m.__cpu_features__.get(k)))"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr  # no SIMD dispatch target is in use
    out = subprocess.run([*OPTCONF, "generate", "--check"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "identical" in out.stdout
