"""The six Keras learning-rate schedules, evaluated exactly, with float32 budgets.

Keras evaluates a schedule in the dtype of ``initial_learning_rate`` as a
tensor: ``floatx`` (float32) for a Python float.  Each schedule here is the
same formula on :class:`~reference.tracked.Tracked` numbers, so the result
carries the budget of that float32 evaluation.  ``step`` is the raw 0-based
optimizer counter (``_iterations``), as Keras passes it.

Where a formula takes ``floor``/``ceil`` of a rounded quantity that sits on an
integer (a staircase edge, a restart of ``CosineDecayRestarts``), an honest
float32 evaluation may land on either side: both branches are evaluated
exactly and the budget covers the jump.

    ExponentialDecay        η = η₀ · r^(s/S)              (s/S floored if staircase)
    PiecewiseConstantDecay  η = v_i  for b_{i−1} < s ≤ b_i
    PolynomialDecay         η = (η₀ − η_end)·(1 − s/S)^p + η_end
    InverseTimeDecay        η = η₀ / (1 + r·s/S)
    CosineDecay             η = η₀·((1 − α)·½(1 + cos(π·s/S)) + α), optional linear warmup
    CosineDecayRestarts     SGDR: period S·t_mulⁱ, amplitude m_mulⁱ
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import gmpy2
from gmpy2 import mpfr
from optimizer_conformance.reference.formats import FLOAT32, FloatFormat
from optimizer_conformance.reference.tracked import Tracked, minimum, power

FLOATX = FLOAT32


def _cos(x: Tracked) -> Tracked:
    z = gmpy2.cos(x.value)
    out = Tracked(z, 0.0, x.fmt)
    out.error = abs(float(gmpy2.sin(x.value))) * x.error + min(x.error * x.error / 2, 2.0) + x._rounding(
        2 * out.size
    )
    return out


def _log(x: Tracked) -> Tracked:
    if x.size <= x.error:
        raise ValueError(f"logarithm of a value that may be non-positive: {x!r}")
    z = gmpy2.log(x.value)
    out = Tracked(z, 0.0, x.fmt)
    if x.value == 1 and x.error == 0:
        return out  # log(1) = +0 exactly in every libm (IEEE 754 recommends it)
    out.error = x.error / (x.size - x.error) + x._rounding(2 * out.size)
    return out


class _Branches:
    """Evaluates a formula whose ``floor``/``ceil`` may go either way in floating point."""

    def __init__(self, body: Callable[[Callable], Tracked]) -> None:
        self.body = body

    def __call__(self) -> Tracked:
        ambiguous: list[tuple[int, int]] = []
        exact = self._run({}, ambiguous)
        if not ambiguous:
            return exact
        error = exact.error
        for choice in itertools.product(*[(0, 1)] * len(ambiguous)):
            overrides = {i: alt for (i, alt), pick in zip(ambiguous, choice) if pick}
            if overrides:
                other = self._run(overrides, [])
                error = max(error, abs(float(other.value - exact.value)) + other.error)
        return Tracked(exact.value, error, exact.fmt)

    def _run(self, overrides: dict[int, int], ambiguous: list) -> Tracked:
        counter = itertools.count()

        def rounding(x: Tracked, fn: Callable) -> Tracked:
            site = next(counter)
            exact = fn(x.value)
            low, high = fn(x.value - x.error), fn(x.value + x.error)
            alternative = low if low != exact else high
            if alternative != exact:
                ambiguous.append((site, alternative))
            return Tracked.exact(overrides.get(site, exact), x.fmt)

        return self.body(rounding)


def _floor(rounding, x):
    return rounding(x, gmpy2.floor)


def _ceil(rounding, x):
    return rounding(x, gmpy2.ceil)


class LearningRateSchedule:
    """A Keras schedule: ``config`` in ``get_config()`` form, ``__call__(step) -> Tracked``."""

    class_name: str = ""
    defaults: dict[str, Any] = {}
    required: tuple[str, ...] = ()

    def __init__(self, **config: Any) -> None:
        unknown = set(config) - set(self.defaults) - set(self.required)
        if unknown:
            raise ValueError(f"{self.class_name}: unknown argument(s) {sorted(unknown)}")
        missing = [k for k in self.required if k not in config]
        if missing:
            raise ValueError(f"{self.class_name}: missing required argument(s) {missing}")
        self.config = {**self.defaults, **config}
        self.validate()

    def validate(self) -> None:
        pass

    def get_config(self) -> dict[str, Any]:
        return dict(self.config)

    def serialize(self) -> dict[str, Any]:
        return {
            "module": "keras.optimizers.schedules",
            "class_name": self.class_name,
            "config": self.get_config(),
            "registered_name": None,
        }

    def __call__(self, step: int, fmt: FloatFormat = FLOATX) -> Tracked:
        return _Branches(lambda rounding: self.formula(step, fmt, rounding))()

    def formula(self, step: int, fmt: FloatFormat, rounding) -> Tracked:
        raise NotImplementedError

    def _hyper(self, key: str, fmt: FloatFormat) -> Tracked:
        return Tracked.rounded(self.config[key], fmt)

    def __repr__(self) -> str:
        return f"{self.class_name}({self.config})"


def _positive_decay_steps(name: str, value) -> None:
    if value <= 0:
        raise ValueError(f"{name}: argument `decay_steps` must be > 0; got {value!r}")


class _DecayByProgress(LearningRateSchedule):
    """Shared by the two schedules of ``p = s / decay_steps`` (floored when ``staircase``)."""

    required = ("initial_learning_rate", "decay_steps", "decay_rate")

    def validate(self) -> None:
        _positive_decay_steps(self.class_name, self.config["decay_steps"])

    def progress(self, step, fmt, rounding) -> Tracked:
        p = Tracked.count(step, fmt) / self._hyper("decay_steps", fmt)
        return _floor(rounding, p) if self.config["staircase"] else p


class ExponentialDecay(_DecayByProgress):
    class_name = "ExponentialDecay"
    defaults = {"staircase": False, "name": "ExponentialDecay"}

    def formula(self, step, fmt, rounding):
        p = self.progress(step, fmt, rounding)
        return self._hyper("initial_learning_rate", fmt) * power(self._hyper("decay_rate", fmt), p)


class InverseTimeDecay(_DecayByProgress):
    class_name = "InverseTimeDecay"
    defaults = {"staircase": False, "name": "InverseTimeDecay"}

    def formula(self, step, fmt, rounding):
        p = self.progress(step, fmt, rounding)
        return self._hyper("initial_learning_rate", fmt) / (1 + self._hyper("decay_rate", fmt) * p)


class PiecewiseConstantDecay(LearningRateSchedule):
    class_name = "PiecewiseConstantDecay"
    required = ("boundaries", "values")
    defaults = {"name": "PiecewiseConstant"}

    def validate(self) -> None:
        b, v = self.config["boundaries"], self.config["values"]
        if len(b) != len(v) - 1:
            raise ValueError(
                "PiecewiseConstantDecay: `values` must have one more element than "
                f"`boundaries`; got {len(v)} values and {len(b)} boundaries"
            )

    def formula(self, step, fmt, rounding):
        # Keras casts the boundaries to the step's integer dtype: floats truncate.
        boundaries = [int(b) for b in self.config["boundaries"]]
        values = self.config["values"]
        index = sum(1 for b in boundaries if step > b)
        return Tracked.rounded(values[index], fmt)


class PolynomialDecay(LearningRateSchedule):
    class_name = "PolynomialDecay"
    required = ("initial_learning_rate", "decay_steps")
    defaults = {"end_learning_rate": 0.0001, "power": 1.0, "cycle": False, "name": "PolynomialDecay"}

    def validate(self) -> None:
        _positive_decay_steps(self.class_name, self.config["decay_steps"])

    def formula(self, step, fmt, rounding):
        s = Tracked.count(step, fmt)
        decay_steps = self._hyper("decay_steps", fmt)
        if self.config["cycle"]:
            if step > 0:
                decay_steps = decay_steps * _ceil(rounding, s / decay_steps)
        else:
            s = minimum(s, decay_steps)
        p = s / decay_steps
        lr0, end = self._hyper("initial_learning_rate", fmt), self._hyper("end_learning_rate", fmt)
        base = 1 - p
        if base.value == 0:
            decayed = Tracked(mpfr(0), base.error ** min(float(self.config["power"]), 1.0), fmt)
        else:
            decayed = power(base, self._hyper("power", fmt))
        return (lr0 - end) * decayed + end


class CosineDecay(LearningRateSchedule):
    class_name = "CosineDecay"
    required = ("initial_learning_rate", "decay_steps")
    defaults = {"alpha": 0.0, "name": "CosineDecay", "warmup_target": None, "warmup_steps": 0}

    def validate(self) -> None:
        _positive_decay_steps(self.class_name, self.config["decay_steps"])

    def _decay(self, s: Tracked, decay_steps: Tracked, start: Tracked, fmt) -> Tracked:
        alpha = self.config["alpha"]
        pi = Tracked.rounded(gmpy2.const_pi(), fmt)
        cosine = 0.5 * (1 + _cos(pi * (s / decay_steps)))
        # Keras forms (1 − α) in Python float64, then α is cast to the dtype.
        one_minus_alpha = Tracked.rounded(1 - mpfr(alpha), fmt)
        return start * (one_minus_alpha * cosine + Tracked.rounded(alpha, fmt))

    def formula(self, step, fmt, rounding):
        s = Tracked.count(step, fmt)
        decay_steps = self._hyper("decay_steps", fmt)
        lr0 = self._hyper("initial_learning_rate", fmt)
        if self.config["warmup_target"] is None:
            return self._decay(minimum(s, decay_steps), decay_steps, lr0, fmt)
        target = self._hyper("warmup_target", fmt)
        warmup = self._hyper("warmup_steps", fmt)
        s = minimum(s, decay_steps + warmup)
        if s.value < warmup.value:
            return (target - lr0) * (s / warmup) + lr0
        return self._decay(s - warmup, decay_steps, target, fmt)


class CosineDecayRestarts(LearningRateSchedule):
    class_name = "CosineDecayRestarts"
    required = ("initial_learning_rate", "first_decay_steps")
    defaults = {"t_mul": 2.0, "m_mul": 1.0, "alpha": 0.0, "name": "SGDRDecay"}

    def validate(self) -> None:
        if self.config["first_decay_steps"] <= 0:
            raise ValueError(
                "CosineDecayRestarts: argument `first_decay_steps` must be > 0; "
                f"got {self.config['first_decay_steps']!r}"
            )

    def formula(self, step, fmt, rounding):
        t_mul, m_mul = self._hyper("t_mul", fmt), self._hyper("m_mul", fmt)
        alpha = self._hyper("alpha", fmt)
        fraction = Tracked.count(step, fmt) / self._hyper("first_decay_steps", fmt)
        if self.config["t_mul"] == 1.0:
            restart = _floor(rounding, fraction)
            fraction = fraction - restart
        else:
            restart = _floor(rounding, _log(1 - fraction * (1 - t_mul)) / _log(t_mul))
            geometric = power(t_mul, restart)
            fraction = (fraction - (1 - geometric) / (1 - t_mul)) / geometric
        if restart.value == 0:
            amplitude = Tracked.exact(1, fmt)
        else:
            amplitude = power(m_mul, restart)
        pi = Tracked.rounded(gmpy2.const_pi(), fmt)
        cosine = 0.5 * amplitude * (1 + _cos(pi * fraction))
        return self._hyper("initial_learning_rate", fmt) * ((1 - alpha) * cosine + alpha)


SCHEDULES: dict[str, type[LearningRateSchedule]] = {
    cls.class_name: cls
    for cls in (
        ExponentialDecay,
        PiecewiseConstantDecay,
        PolynomialDecay,
        InverseTimeDecay,
        CosineDecay,
        CosineDecayRestarts,
    )
}


def deserialize(spec: dict[str, Any]) -> LearningRateSchedule:
    """A schedule from its Keras serialization ``{"class_name": ..., "config": {...}}``."""
    if not isinstance(spec, dict) or "class_name" not in spec or "config" not in spec:
        raise ValueError(
            "learning_rate: a schedule must be given as a Keras serialization "
            f"{{'class_name': ..., 'config': {{...}}}}; got {spec!r}"
        )
    name = spec["class_name"]
    if name not in SCHEDULES:
        raise ValueError(f"learning_rate: class_name must be one of {sorted(SCHEDULES)}; got {name!r}")
    return SCHEDULES[name](**spec["config"])


__all__ = [*SCHEDULES, "FLOATX", "LearningRateSchedule", "SCHEDULES", "deserialize"]
