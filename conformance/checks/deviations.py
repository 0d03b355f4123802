"""The catalogue of realistic porting bugs, each with a stable id, and the deviated oracles that compute them.

Bugs of released libraries are catalogued beside it, in the same form (:mod:`conformance.checks.upstream`).

Diagnosis (:mod:`conformance.checks.diagnosis`), the project's mutants (``tests/mutants``) and the NumPy
test port (``tests/numpy_port.py``) all name a deviation by its id.  Where the deviation can be computed,
it is the oracle with one change, made here and nowhere in the oracle itself: a configuration that
computes what the bug computes (decay not scaled by the learning rate is decay ``λ/η``), or a subclass of the
oracle that overrides one of its steps (:class:`StepCountOffset`, :class:`AccumulationSums`,
:class:`ScheduleSeesUpdates`, :class:`EmaMomentumOnFirstStep`, :class:`EmaNotMaintained`,
:class:`ConstraintBeforeUpdate`, :class:`OverwrittenVariableDecayed`, :class:`LossScaleNotHalved`,
:class:`GrowthCountsSkippedSteps`, :class:`GlobalClipKeepsNonFiniteNorm`, :class:`LazySparseRows`), or whose
rule is
replaced by a variant written here from the rule module's public pieces (Adamax's ε inside the max, or its max
dropping NaN; Lamb's trust ratios).
``deviate(spec)`` gives the deviated spec and oracle, or ``None`` where the spec does not exercise it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gmpy2
import numpy as np
from optimizer_conformance.conformance.model import decode, encode, spec_inputs
from optimizer_conformance.reference import ReferenceOptimizer, Tracked
from optimizer_conformance.reference.clipping import clip_by_global_norm
from optimizer_conformance.reference.formats import FLOAT32, FloatFormat
from optimizer_conformance.reference.loss_scale import DynamicLossScale, all_finite
from optimizer_conformance.reference.pipeline import Quantity
from optimizer_conformance.reference.rules import (
    ALL,
    RULES,
    adam,
    adamax,
    lamb,
    nadam,
    nadam_legacy,
    schedule_free_adamw,
    translation,
)
from optimizer_conformance.reference.tracked import absolute, lerp, maximum, minimum, norm, power, sqrt
from optimizer_conformance.reference.weight_decay import apply_weight_decay

# -- the oracle, deviated --------------------------------------------------------------------------------


class StepCountOffset(ReferenceOptimizer):
    """The rule's ``t`` off by ``offset`` (``t = iterations + 1 + offset``)."""

    offset = 0

    def update_count(self) -> int:
        return super().update_count() + self.offset


class StepCountPlusOne(StepCountOffset):
    offset = 1


class StepCountMinusOne(StepCountOffset):
    offset = -1


class AccumulationSums(ReferenceOptimizer):
    """The accumulated micro-gradients summed on an update step instead of averaged."""

    def accumulated_gradient(self, g: list[Tracked], accumulator: list[Tracked]) -> list[Tracked]:
        return [x + a for x, a in zip(g, accumulator)]


class EmaNotMaintained(ReferenceOptimizer):
    """``apply`` never updates the moving average (nor overwrites with it): it stays at its zero init."""

    def update_moving_average(self) -> None:
        pass


class ConstraintBeforeUpdate(ReferenceOptimizer):
    """Each variable's constraint applied before the update instead of after it (and after the EMA)."""

    def update_variables(self, active: list[int], g: dict[int, list[Tracked]]) -> None:
        super().apply_constraints(active)
        super().update_variables(active, g)

    def apply_constraints(self, active: list[int]) -> None:
        pass


class OverwrittenVariableDecayed(ReferenceOptimizer):
    """A variable assigned its gradient (``overwrite_with_gradient``) then decayed like the others."""

    def overwrite_with_gradient(self, i: int, g: list[Tracked]) -> None:
        super().overwrite_with_gradient(i, g)
        lr_floatx, _ = self.learning_rate()
        self.theta[i] = apply_weight_decay(self.theta[i], self.config["weight_decay"], lr_floatx,
                                           self.weight_decay_factor_format(self.fmts[i]))


class _ScaleNotHalved(DynamicLossScale):
    def after_non_finite_step(self) -> None:
        self.step_counter = 0


class LossScaleNotHalved(ReferenceOptimizer):
    """A step with a non-finite gradient skipped, the counter reset, but the loss scale left as it was."""

    loss_scale_class = _ScaleNotHalved


class _GrowthCountsSkippedSteps(DynamicLossScale):
    def after_non_finite_step(self) -> None:
        counter = self.step_counter
        super().after_non_finite_step()
        self.step_counter = counter
        self.after_finite_step()


class GrowthCountsSkippedSteps(ReferenceOptimizer):
    """A skipped step halves the scale but counts towards growth, as if it were finite."""

    loss_scale_class = _GrowthCountsSkippedSteps


class GlobalClipKeepsNonFiniteNorm(ReferenceOptimizer):
    """Global clipping by ``c·min(1/N, 1/c)`` alone: without Keras's ``+ (N − N)`` an Inf norm scales every
    gradient by 0 instead of making it NaN."""

    def clip_gradients(self, tensors: list[list[Tracked]]) -> list[list[Tracked]]:
        clipnorm = self.config.get("global_clipnorm")
        if not clipnorm or clipnorm <= 0:
            return super().clip_gradients(tensors)
        total = norm([x for t in tensors for x in t])
        if total.value == 0:
            return tensors
        c = Tracked.rounded(clipnorm, self.fmt)
        scale = c * minimum(1 / total, Tracked.rounded(1 / clipnorm, self.fmt))
        return [[g * scale for g in t] for t in tensors]


class ClipsMicroGradients(ReferenceOptimizer):
    """Under accumulation each micro-gradient clipped before it joins the accumulator, the mean left unclipped."""

    def micro_gradients(self, tensors: list[list[Tracked]]) -> list[list[Tracked]]:
        return super().clip_gradients(tensors)

    def clip_gradients(self, tensors: list[list[Tracked]]) -> list[list[Tracked]]:
        return tensors


class DecaysAfterUpdate(ReferenceOptimizer):
    """The decoupled weight decay applied to the updated weights, after the rule."""

    def decay_weights(self, active: list[int], lr_floatx: Tracked) -> None:
        pass

    def update_rule(self, active: list[int], g: dict[int, list[Tracked]], lr: Tracked) -> None:
        super().update_rule(active, g, lr)
        super().decay_weights(active, self.learning_rate()[0])


class GlobalClipPerDtype(ReferenceOptimizer):
    """``global_clipnorm`` over each dtype's variables apart: each group clipped by its own norm, formed in its
    dtype (Keras takes one norm over every variable, promoted to the widest dtype)."""

    def clip_gradients(self, tensors: list[list[Tracked]]) -> list[list[Tracked]]:
        if not (self.config.get("global_clipnorm") and self.config["global_clipnorm"] > 0):
            return super().clip_gradients(tensors)
        out = list(tensors)
        for fmt in dict.fromkeys(t[0].fmt for t in tensors if t):
            members = [k for k, t in enumerate(tensors) if t and t[0].fmt == fmt]
            for k, clipped in zip(members, clip_by_global_norm([tensors[k] for k in members],
                                                               self.config["global_clipnorm"])):
                out[k] = clipped
        return out


class EmaNeverOverwrites(ReferenceOptimizer):
    """The moving average kept, but never written into the weights (no overwrite, no finalize)."""

    def finalize_variable_values(self) -> None:
        pass


class StepCountPerVariable(ReferenceOptimizer):
    """torch.optim's step count per parameter: a variable whose gradient is ``None`` is skipped whole, so its own
    ``t`` falls behind the others' and its next update bias-corrects with its own count; a rule's per-step scalars
    (Nadam's momentum product) are per parameter too.  Reported in the Keras rule's names: one ``<scalar>`` (a
    port holds one per parameter; what it reports is its first parameter's, as the built-in torch.optim candidate
    reads it) and no ``step/<name>`` (Keras's state has none)."""

    @property
    def per_variable(self) -> bool:
        return True

    def state(self) -> dict[str, Quantity]:
        out = super().state()
        for name in list(out):
            if name.startswith("step/"):
                del out[name]
        for i, label in enumerate(self._labels()):
            for name in self.variable_scalars[i]:
                first = out.pop(f"{name}/{label}")
                out.setdefault(name, dataclasses.replace(first, name=name))
        return out


def _step_count_per_variable(spec: dict) -> Deviated | None:
    """Where a gradient is ``None`` before the last step, for a rule without accumulation (torch has none)."""
    missing = any(g is None for step in spec["gradients"][:-1] for g in step)
    if not missing or spec["config"].get("gradient_accumulation_steps"):
        return None
    return spec, StepCountPerVariable


def _missing_as_zero(spec: dict) -> Deviated | None:
    """The spec with each ``None`` gradient replaced by zeros: the variable's moments decay and it moves."""
    if not any(g is None for step in spec["gradients"] for g in step):
        return None
    zero = (0.0).hex()
    sizes = [int(np.prod(shape)) for _, shape, _ in spec["variables"]]
    gradients = [[[zero] * sizes[i] if g is None else g for i, g in enumerate(step)] for step in spec["gradients"]]
    return {**spec, "gradients": gradients}, ReferenceOptimizer


class LazySparseRows(ReferenceOptimizer):
    """The rule applied only to the rows a sparse gradient touches (LazyAdam, torch's SparseAdam): the others'
    moments do not decay and their weights do not move.  ``sparse``: the variables given row slices."""

    sparse: tuple[int, ...] = ()

    def update_rule(self, active: list[int], g: dict[int, list[Tracked]], lr: Tracked) -> None:
        names = self.rule.slot_names(self.config)
        before = {i: (list(self.theta[i]), {n: list(self.slots[n][i]) for n in names})
                  for i in active if i in self.sparse and self.shapes[i]}
        super().update_rule(active, g, lr)
        for i, (theta, slots) in before.items():
            width = int(np.prod(self.shapes[i][1:]))
            for row in range(self.shapes[i][0]):
                cells = range(row * width, (row + 1) * width)
                if all(g[i][j].value == 0 for j in cells):
                    for j in cells:
                        self.theta[i][j] = theta[j]
                        for n in names:
                            self.slots[n][i][j] = slots[n][j]


def _lazy_sparse(spec: dict) -> Deviated | None:
    if not spec.get("sparse_gradients"):
        return None
    return spec, type("LazySparseRows", (LazySparseRows,), {"sparse": tuple(spec["sparse_gradients"])})


class ScheduleSeesUpdates(ReferenceOptimizer):
    """The learning-rate schedule evaluated at the real-update count instead of the raw counter."""

    def schedule_counter(self) -> int:
        return self.iterations


class EmaMomentumOnFirstStep(ReferenceOptimizer):
    """The EMA blended with ``μ`` from its zero init on the first step instead of copying the weights."""

    def ema_blend_weight(self, fmt: FloatFormat | None = None) -> Tracked | None:
        return 1 - Tracked.rounded(self.config["ema_momentum"], fmt or self.fmt)


class EmaFromInitialWeights(EmaMomentumOnFirstStep):
    """Keras 2's EMA (tf_keras's optimizers): the average starts as a copy of the initial weights and is blended with
    ``μ`` from the first step (Keras 3 copies the weights at the first update)."""

    def build(self, *args: Any, **kwargs: Any) -> None:
        super().build(*args, **kwargs)
        if "average" in self.slots:
            self.slots["average"] = [None if a is None else [Tracked(x.value, x.error, x.fmt) for x in theta]
                                     for a, theta in zip(self.slots["average"], self.theta)]


@dataclass(frozen=True)
class _AdamParts(adam.Coefficients):
    """Adam's coefficients with the pieces a variant recombines: η, β₂ and the bias corrections 1 − βᵗ."""

    learning_rate: Tracked
    beta_2: Tracked
    correction_1: Tracked
    correction_2: Tracked


class _AdamVariantRule:
    """Adam written with a hook per choice a port makes (the velocity's weight, AMSGrad's running max, the step),
    its coefficients in parts (:class:`_AdamParts`); a variant overrides one hook, so variants combine (optax's
    AMSGrad is two of them)."""

    slot_names = staticmethod(adam.slot_names)
    initial_scalars = staticmethod(adam.initial_scalars)

    @staticmethod
    def coefficients(hp: dict, lr: Tracked, step: int, fmt, scalars: dict):
        c, scalars = adam.coefficients(hp, lr, step, fmt, scalars)
        t = Tracked.count(step, fmt)
        beta_1, beta_2 = Tracked.rounded(hp["beta_1"], fmt), Tracked.rounded(hp["beta_2"], fmt)
        fields = {f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
        return _AdamParts(**fields, learning_rate=lr, beta_2=beta_2, correction_1=1 - power(beta_1, t),
                          correction_2=1 - power(beta_2, t)), scalars

    @classmethod
    def update(cls, c: _AdamParts, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
        m = lerp(slots["momentum"], g, c.one_minus_beta_1)
        v = lerp(slots["velocity"], g * g, cls.velocity_weight(c))
        new = {"momentum": m, "velocity": v}
        if c.amsgrad:
            v, new["velocity_hat"] = cls.running_max(c, v, slots["velocity_hat"])
        return theta - cls.step(c, m, v), new

    @staticmethod
    def velocity_weight(c: _AdamParts) -> Tracked:
        return c.one_minus_beta_2

    @staticmethod
    def running_max(c: _AdamParts, v: Tracked, velocity_hat: Tracked) -> tuple[Tracked, Tracked]:
        """The velocity the step uses, and the new velocity_hat: Keras's max of the raw velocity."""
        v_max = maximum(velocity_hat, v)
        return v_max, v_max

    @staticmethod
    def step(c: _AdamParts, m: Tracked, v: Tracked) -> Tracked:
        return (m * c.alpha) / (sqrt(v) + c.epsilon)


class _AdamEpsilonInsideSqrtRule(_AdamVariantRule):
    """``θ −= α·m / √(v + ε)``."""

    @staticmethod
    def step(c, m, v):
        return (m * c.alpha) / sqrt(v + c.epsilon)


class _AdamEpsilonAfterCorrectionRule(_AdamVariantRule):
    """torch.optim's and optax's Adam: ``θ −= (η / (1 − β₁ᵗ))·m / (√(v / (1 − β₂ᵗ)) + ε)``."""

    @staticmethod
    def step(c, m, v):
        return (c.learning_rate / c.correction_1) * m / (sqrt(v / c.correction_2) + c.epsilon)


class _AdamNoBiasCorrectionRule(_AdamVariantRule):
    """``θ −= η·m / (√v + ε)``."""

    @staticmethod
    def step(c, m, v):
        return (m * c.learning_rate) / (sqrt(v) + c.epsilon)


class _AdamVelocityWeightIsBetaRule(_AdamVariantRule):
    """``v ← v + (g² − v)·β₂``."""

    @staticmethod
    def velocity_weight(c):
        return c.beta_2


class _AdamMaxOfCorrectedVelocityRule(_AdamVariantRule):
    """optax's AMSGrad: ``v̂ ← max(v̂, v / (1 − β₂ᵗ))``; the step from ``v̂·(1 − β₂ᵗ)``."""

    @staticmethod
    def running_max(c, v, velocity_hat):
        corrected_max = maximum(velocity_hat, v / c.correction_2)
        return corrected_max * c.correction_2, corrected_max


def _with_product(c: Any, product: Tracked, now: Tracked, after: Tracked) -> Any:
    """A Nadam rule's coefficients formed from another momentum product ``Π`` (``now``, ``after``: its u_t and
    u_{t+1}, or μ_t and μ_{t+1})."""
    lr = c.learning_rate
    return dataclasses.replace(c, one_minus_product=1 - product, one_minus_next_product=1 - product * after,
                               gradient_step=lr * (1 - now) / (1 - product),
                               momentum_step=lr * after / (1 - product * after))


NADAM_PRODUCTS = {nadam: ("u_product", ("u_t", "u_next")), nadam_legacy: ("momentum_cache", ("mu_t", "mu_next"))}


def _nadam_with_product(module: Any, name: str, choose: Callable[[Tracked, Tracked], tuple[Tracked, Tracked]]) -> type:
    """A Nadam rule (``module``) whose step uses another momentum product: ``choose(before, advanced)`` gives the
    product the variables see and the one kept."""
    product_name, schedule = NADAM_PRODUCTS[module]

    class Rule:
        slot_names = staticmethod(module.slot_names)
        initial_scalars = staticmethod(module.initial_scalars)
        update = staticmethod(module.update)

        @staticmethod
        def coefficients(hp, lr, step, fmt, scalars):
            c, advanced = module.coefficients(hp, lr, step, fmt, scalars)
            seen, kept = choose(scalars[product_name], advanced[product_name])
            now, after = (getattr(c, field) for field in schedule)
            return _with_product(c, seen, now, after), {product_name: kept}

    Rule.__name__ = name
    return Rule


def _float32_held(before: Tracked, advanced: Tracked) -> tuple[Tracked, Tracked]:
    held = advanced.to(FLOAT32).to(advanced.fmt)
    return held, held


# The variables see Π_{t−1} where Π_t belongs: the product advanced after them.
_NadamStaleProductRule = _nadam_with_product(nadam, "_NadamStaleProductRule",
                                             lambda before, advanced: (before, advanced))




class _AdamaxVariantRule:
    """Adamax's slots and coefficients; a variant writes its own ``update``."""

    slot_names = staticmethod(adamax.slot_names)
    initial_scalars = staticmethod(adamax.initial_scalars)
    coefficients = staticmethod(adamax.coefficients)


class _AdamaxEpsilonInsideMaxRule(_AdamaxVariantRule):
    """torch.optim's Adamax: ``u = max(β₂·u, |g| + ε)``, ``θ −= η·m / ((1 − β₁ᵗ)·u)``."""

    @staticmethod
    def update(c: adamax.Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
        m = lerp(slots["momentum"], g, c.one_minus_beta_1)
        u = maximum(c.beta_2 * slots["norm"], absolute(g) + c.epsilon)
        return theta - (c.learning_rate * m) / (c.one_minus_beta_1_power * u), {"momentum": m, "norm": u}


class _AdamaxMaxDropsNanRule(_AdamaxVariantRule):
    """Adamax with a ``max`` that returns the other operand when one is NaN (C's ``fmax``, Python's ``max`` with
    the NaN second): a NaN gradient leaves ``u`` finite, where ``ops.maximum`` makes it NaN."""

    @staticmethod
    def update(c: adamax.Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
        m = lerp(slots["momentum"], g, c.one_minus_beta_1)
        decayed, magnitude = c.beta_2 * slots["norm"], absolute(g)
        u = decayed if gmpy2.is_nan(magnitude.value) else maximum(decayed, magnitude)
        return theta - (c.learning_rate * m) / (c.one_minus_beta_1_power * (u + c.epsilon)), {"momentum": m, "norm": u}


class _AdamaxMaxByIncrementRule(_AdamaxVariantRule):
    """Keras 2's sparse Adamax (tf_keras ``Adamax.update_step`` on ``tf.IndexedSlices``): the decayed norm
    ``u' = β₂·u`` raised to the max by adding an increment, ``u = u' + (max(u', |g|) − u')``, which rounds twice
    where ``|g|`` wins (one ulp from the max).  The same on every element of the rule: a dense element's exact max
    lies inside this oracle's budget, and an untouched row's increment is 0."""

    @staticmethod
    def update(c: adamax.Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
        m = lerp(slots["momentum"], g, c.one_minus_beta_1)
        decayed = c.beta_2 * slots["norm"]
        u = decayed + (maximum(decayed, absolute(g)) - decayed)
        return theta - (c.learning_rate * m) / (c.one_minus_beta_1_power * (u + c.epsilon)), {"momentum": m, "norm": u}


def _adamax_sparse_increment(spec: dict) -> Deviated | None:
    adamax_rule = RULES[spec["algorithm"]].update is adamax.update
    return (spec, _ADAMAX_MAX_BY_INCREMENT) if adamax_rule and spec.get("sparse_gradients") else None


class _AdamaxNoBiasCorrectionRule(_AdamaxVariantRule):
    """Adamax without its bias correction: ``θ −= η·m / (u + ε)``."""

    @staticmethod
    def update(c: adamax.Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
        m = lerp(slots["momentum"], g, c.one_minus_beta_1)
        u = maximum(c.beta_2 * slots["norm"], absolute(g))
        return theta - (c.learning_rate * m) / (u + c.epsilon), {"momentum": m, "norm": u}


class _AdamaxSignedMaxRule(_AdamaxVariantRule):
    """Adamax's norm without the absolute value: ``u = max(β₂·u, g)`` (a negative gradient leaves ``u`` alone)."""

    @staticmethod
    def update(c: adamax.Coefficients, g: Tracked, theta: Tracked, slots: dict[str, Tracked]):
        m = lerp(slots["momentum"], g, c.one_minus_beta_1)
        u = maximum(c.beta_2 * slots["norm"], g)
        return theta - (c.learning_rate * m) / (c.one_minus_beta_1_power * (u + c.epsilon)), {"momentum": m, "norm": u}


class _LambRatioRule:
    """Lamb with another trust ratio (:attr:`ratio`)."""

    slot_names = staticmethod(lamb.slot_names)
    initial_scalars = staticmethod(lamb.initial_scalars)
    coefficients = staticmethod(lamb.coefficients)
    ratio: lamb.TrustRatio = staticmethod(lamb.keras_trust_ratio)

    @classmethod
    def update_variable(cls, c, g, theta, slots):
        return lamb.update_variable(c, g, theta, slots, ratio=cls.ratio)


class _LambGradientNormRule(_LambRatioRule):
    """``‖θ‖ / ‖g‖``: the ratio over the gradient's norm (LARS's) instead of the direction's."""

    ratio = staticmethod(lambda theta, g, r: lamb.trust_ratio(norm(theta), norm(g)))


class _LambUnguardedRule(_LambRatioRule):
    """``‖θ‖ / ‖r‖`` even when ``‖θ‖ = 0``: a variable that starts at zero never moves."""

    ratio = staticmethod(lambda theta, g, r: norm(theta) / norm(r))


class _ScheduleFreeXFromUpdatedZRule:
    """Schedule-free AdamW with ``x`` recovered from the *updated* ``z``: what Keras 3.15's TensorFlow and torch
    backends compute, because ``momentum.value`` there is the live variable, read after ``assign_sub``."""

    slot_names = staticmethod(schedule_free_adamw.slot_names)
    initial_slot = staticmethod(schedule_free_adamw.initial_slot)
    initial_scalars = staticmethod(schedule_free_adamw.initial_scalars)
    coefficients = staticmethod(schedule_free_adamw.coefficients)

    @staticmethod
    def update(c, g, theta, slots):
        new = schedule_free_adamw.base_step(c, g, slots)
        z = new["momentum"]
        return c.one_minus_beta_1 * z + c.beta_1 * schedule_free_adamw.averaged_point(c, theta, z, z), new


class _ScheduleFreeWeightOffByOneRule(_ScheduleFreeXFromUpdatedZRule):
    """Schedule-free AdamW averaging with ``w = 1/(t + 1)`` instead of ``1/t``."""

    update = staticmethod(schedule_free_adamw.update)

    @staticmethod
    def coefficients(hp, lr, step, fmt, scalars):
        c, scalars = schedule_free_adamw.coefficients(hp, lr, step, fmt, scalars)
        weight = schedule_free_adamw.averaging_weight(step + 1, fmt)
        return dataclasses.replace(c, weight=weight, one_minus_weight=1 - weight), scalars


class _ScheduleFreeWarmupOffByOneRule(_ScheduleFreeXFromUpdatedZRule):
    """Schedule-free AdamW warming up with ``min((t − 1)/W, 1)`` (the raw counter) instead of ``min(t/W, 1)``: the
    first step does not move."""

    update = staticmethod(schedule_free_adamw.update)

    @staticmethod
    def coefficients(hp, lr, step, fmt, scalars):
        c, scalars = schedule_free_adamw.coefficients(hp, lr, step, fmt, scalars)
        if hp["warmup_steps"] > 0:
            c = dataclasses.replace(c, learning_rate=lr * schedule_free_adamw.warmup_factor(step - 1,
                                                                                           hp["warmup_steps"], fmt))
        return c, scalars


def _with_rule(rule: Any) -> Callable[..., ReferenceOptimizer]:
    class Deviated(ReferenceOptimizer):
        deviated_rule = rule

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rule = rule
    Deviated.__name__ = Deviated.__qualname__ = rule.__name__.strip("_").replace("Rule", "")
    return Deviated


def combined(oracles: list[Callable[..., ReferenceOptimizer]]) -> Callable[..., ReferenceOptimizer]:
    """One oracle with every change of ``oracles``: their overrides by inheritance, and their replaced rules as one
    rule inheriting each (each variant overrides its own hook of the rule)."""
    rules = [o.deviated_rule for o in oracles if hasattr(o, "deviated_rule")]
    # The oracle itself (a deviation that changes the spec alone) is every other's base: no change to add.
    others = list(dict.fromkeys(o for o in oracles if not hasattr(o, "deviated_rule") and o is not ReferenceOptimizer))
    if len(rules) > 1:
        others.append(_with_rule(type("And".join(r.__name__.strip("_") for r in rules), tuple(rules), {})))
    elif rules:
        others += [o for o in oracles if hasattr(o, "deviated_rule")]
    if not others:
        return ReferenceOptimizer
    return others[0] if len(others) == 1 else type("And".join(o.__name__ for o in others), tuple(others), {})


Deviated = tuple[dict, Callable[..., ReferenceOptimizer]]


# torch.optim's NAdam keeps mu_product in a float32 tensor whatever the parameters' dtype.
_PRODUCT_IN_FLOAT32 = {module.update: _with_rule(_nadam_with_product(module, "_NadamProductInFloat32Rule",
                                                                     _float32_held)) for module in NADAM_PRODUCTS}


_ADAMAX_MAX_BY_INCREMENT = _with_rule(_AdamaxMaxByIncrementRule)


def _product_in_float32(spec: dict) -> Deviated | None:
    oracle = _PRODUCT_IN_FLOAT32.get(RULES[spec["algorithm"]].update)
    return None if oracle is None else (spec, oracle)


@dataclass(frozen=True)
class Deviation:
    """A known deviation; a diagnosis must match every quantity the candidate reports, under ``renames``
    (the candidate's name of a quantity, the deviated oracle's name), except the slots in ``unmodelled``
    (which the deviation leaves meaningless: an ignored AMSGrad's ``velocity_hat``)."""

    id: str
    description: str
    deviate: Callable[[dict], Deviated | None] | None = None  # None: not computed (see recognise)
    # A deviation whose outcome is not numbers the oracle can compute (NaN weights) is told by its signature.
    recognise: Callable[[dict, list[dict]], bool] | None = None
    renames: dict[str, str] = field(default_factory=dict)
    unmodelled: tuple[str, ...] = ()
    upstream: Upstream | None = None  # set for a bug of a released library (conformance.checks.upstream)
    # A deviated oracle of another dialect: (spec, deviated spec, reported state) -> the state in its names, or
    # None where it cannot hold it (in place of ``renames``).
    restate: Callable[[dict, dict, dict], dict | None] | None = None


@dataclass(frozen=True)
class Upstream:
    """Where a known deviation is a bug of a released library: which releases, backends and dtypes it affects,
    and where it is recorded upstream.  ``first_fixed`` None: not fixed in any release yet."""

    library: str  # the distribution, as ``describe()["library"]`` names it: "keras"
    first_affected: str
    first_fixed: str | None
    backends: tuple[str, ...]
    dtypes: tuple[str, ...] | None  # None: every dtype
    references: tuple[str, ...]  # "keras-team/keras #23704"
    check: str  # the check that catches it
    last_affected: str | None = None  # the last affected release, where it is fixed
    compile: tuple[str, ...] | None = None  # the compile modes it occurs in; None: every mode
    candidate: str = "keras"  # what ``optconf upstream`` runs the reproduction on

    def releases(self) -> str:
        """``3.0.2–3.4.1 (fixed in 3.5.0)``, or ``3.15.0 and later (not fixed)``."""
        if self.first_fixed is None:
            return f"{self.first_affected} and later (not fixed)"
        return f"{self.first_affected}–{self.last_affected or self.first_affected} (fixed in {self.first_fixed})"

    def affects_release(self, version: str) -> bool:
        v = release(version)
        return release(self.first_affected) <= v and (self.first_fixed is None or v < release(self.first_fixed))

    def affects(self, library: str | None, version: str | None, backend: str, compile: str) -> bool:
        """Whether a candidate that runs on ``library`` at ``version`` (backend, compile mode) has this bug."""
        return (library == self.library and version is not None and self.affects_release(version)
                and backend in self.backends and (self.compile is None or compile in self.compile))


def release(version: str) -> tuple[int, ...]:
    """``"3.15.1"`` (or ``"3.0.0.dev2023"``) as ``(3, 15, 1)``, for ordering releases."""
    parts = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts + [0] * (3 - len(parts)))


# -- how each computable deviation changes a spec ------------------------------------------------------


def _patched(spec: dict, **changes: Any) -> dict:
    return {**spec, "config": {**spec["config"], **changes}}


def _constant_lr(spec: dict) -> float | None:
    lr = spec["config"].get("learning_rate", 0.001)
    return lr if isinstance(lr, float) else None


def _decay_without_lr(spec: dict) -> Deviated | None:
    wd, lr = spec["config"].get("weight_decay"), _constant_lr(spec)
    if not wd or lr is None:
        return None
    return _patched(spec, weight_decay=wd / lr), ReferenceOptimizer


def _counterpart(dialect: str) -> Callable[[dict], Deviated | None]:
    """The rule's counterpart (``Rule.counterpart``) in ``dialect`` run in its place, given the arguments it accepts;
    not applicable where the spec uses a pipeline argument the counterpart's dialect lacks, or a schedule it cannot
    take."""
    def deviate(spec: dict) -> Deviated | None:
        rule = RULES[spec["algorithm"]]
        other = RULES.get(rule.counterpart or "")
        if other is None or other.dialect.name != dialect:
            return None
        accepted = set(other.all_defaults) - {"name"}
        base = rule.dialect.base_defaults
        if any(k not in accepted and k in base and v != base[k] for k, v in spec["config"].items()):
            return None
        config = {k: v for k, v in spec["config"].items() if k in accepted}
        if "schedules" not in other.dialect.pipeline and not isinstance(config.get("learning_rate", 0.001), float):
            return None
        return {**spec, "algorithm": other.name, "config": config}, ReferenceOptimizer
    return deviate


def _as_keras(keras_rule: str) -> Callable[[dict], Deviated | None]:
    """Keras's ``keras_rule`` run in place of another library's rule, where the spec's arguments translate to it."""
    def deviate(spec: dict) -> Deviated | None:
        if keras_rule not in translation.keras_rules(spec["algorithm"]):
            return None
        translated = translation.keras_spec(spec)
        if isinstance(translated, str) or translated["algorithm"] != keras_rule:
            return None
        return translated, ReferenceOptimizer
    return deviate


def _in_keras_names(spec: dict, deviated: dict, state: dict) -> dict | None:
    return translation.to_keras(state, spec["algorithm"], deviated["algorithm"])


def _when(key: str, transform: Callable[[dict], dict], oracle=ReferenceOptimizer) -> Callable[[dict], Deviated | None]:
    def deviate(spec: dict) -> Deviated | None:
        return (transform(spec), oracle) if spec["config"].get(key) else None
    return deviate


def _when_spec(key: str, oracle: Callable[..., ReferenceOptimizer]) -> Callable[[dict], Deviated | None]:
    def deviate(spec: dict) -> Deviated | None:
        return (spec, oracle) if spec.get(key) else None
    return deviate


def _when_decayed_overwrite(spec: dict) -> Deviated | None:
    if not spec.get("overwrite_with_gradient") or not spec["config"].get("weight_decay"):
        return None
    return spec, OverwrittenVariableDecayed


def _oracle(oracle: Callable[..., ReferenceOptimizer], spec: dict) -> Deviated:
    return spec, oracle


def _for(algorithm: str, oracle: Callable[..., ReferenceOptimizer]) -> Callable[[dict], Deviated | None]:
    def deviate(spec: dict) -> Deviated | None:
        return (spec, oracle) if spec["algorithm"] == algorithm else None
    return deviate


def _for_update(update: Callable, oracle: Callable[..., ReferenceOptimizer], *, needs: str | None = None
                ) -> Callable[[dict], Deviated | None]:
    """``oracle`` where the spec's rule updates with ``update`` (Adam's: Adam and AdamW), and, with ``needs``, where
    that configuration switch is on."""
    def deviate(spec: dict) -> Deviated | None:
        if RULES[spec["algorithm"]].update is not update or (needs and not spec["config"].get(needs)):
            return None
        return spec, oracle
    return deviate


def _without_exclusions(spec: dict) -> Deviated | None:
    return ({**spec, "exclude": {}}, ReferenceOptimizer) if spec.get("exclude") and \
        spec["config"].get("weight_decay") else None


def _non_finite_zeroed(spec: dict) -> Deviated | None:
    """The spec with every NaN and ±Inf gradient element replaced by 0 (what a sanitizing port computes)."""
    if spec.get("loss_scale_optimizer"):
        return None
    _, given = spec_inputs(spec)
    if all(g is None or np.isfinite(g).all() for step in given for g in step):
        return None
    gradients = [[None if g is None else encode(np.where(np.isfinite(g), g, 0.0)) for g in step] for step in given]
    return {**spec, "gradients": gradients}, ReferenceOptimizer


def non_finite_step_applied(spec: dict, states: list[dict]) -> bool:
    """The candidate's variables are finite before the first step with a non-finite gradient and not after it,
    where the wrapper should have skipped it."""
    if not spec.get("loss_scale_optimizer"):
        return False
    _, gradients = spec_inputs(spec)
    first = next((k for k, step in enumerate(gradients) if not all_finite(step)), None)
    if first is None or first >= len(states):
        return False

    def finite(state: dict) -> bool:
        return all(np.all(np.isfinite(decode(values, (-1,)))) for q, values in state.items()
                   if q.startswith("variables/"))

    return all(finite(state) for state in states[:first]) and not finite(states[first])


DEVIATIONS: tuple[Deviation, ...] = (
    # -- the rules ---------------------------------------------------------------------------------------
    Deviation("step-count-plus-one", "step count off by one (t = iterations + 2)", partial(_oracle, StepCountPlusOne)),
    Deviation("step-count-minus-one", "step count off by one (t = iterations)", partial(_oracle, StepCountMinusOne)),
    Deviation("epsilon-inside-sqrt", "epsilon inside the square root (θ −= α·m / √(v + ε))",
              _for_update(adam.update, _with_rule(_AdamEpsilonInsideSqrtRule))),
    Deviation("epsilon-after-bias-correction", "the PyTorch/optax epsilon placement (θ −= η·m̂ / (√v̂ + ε)), where "
              "Keras adds ε to √v and scales the learning rate (torch.optim Adam and AdamW, optax, mlx)",
              _for_update(adam.update, _with_rule(_AdamEpsilonAfterCorrectionRule))),
    Deviation("missing-bias-correction", "no bias correction (α = η; mlx's default)",
              _for_update(adam.update, _with_rule(_AdamNoBiasCorrectionRule))),
    Deviation("velocity-weight-is-beta", "the velocity blended with β₂ instead of 1 − β₂",
              _for_update(adam.update, _with_rule(_AdamVelocityWeightIsBetaRule))),
    Deviation("amsgrad-ignored", "amsgrad ignored (velocity used instead of its running max)",
              _when("amsgrad", lambda s: _patched(s, amsgrad=False)), unmodelled=("velocity_hat",)),
    Deviation("amsgrad-max-of-corrected-velocity", "optax's AMSGrad: the max of the bias-corrected velocity",
              _for_update(adam.update, _with_rule(_AdamMaxOfCorrectedVelocityRule), needs="amsgrad")),
    Deviation("adamax-epsilon-inside-max", "ε inside Adamax's max, as torch.optim.Adamax has it "
              "(u = max(β₂·u, |g| + ε), θ −= η·m / ((1 − β₁ᵗ)·u))",
              _for("adamax", _with_rule(_AdamaxEpsilonInsideMaxRule))),
    Deviation("adamax-missing-bias-correction", "Adamax without its bias correction (θ −= η·m / (u + ε))",
              _for("adamax", _with_rule(_AdamaxNoBiasCorrectionRule))),
    Deviation("adamax-sparse-max-by-increment", "Keras 2's sparse Adamax: the norm's max formed as an increment "
              "added to β₂·u (u = β₂u + (max(β₂u, |g|) − β₂u)), rounded twice where |g| wins (tf_keras's "
              "IndexedSlices path)", _adamax_sparse_increment),
    Deviation("adamax-max-without-absolute-value", "Adamax's norm over the signed gradient, u = max(β₂·u, g) instead "
              "of max(β₂·u, |g|)", _for("adamax", _with_rule(_AdamaxSignedMaxRule))),
    Deviation("adamax-max-drops-nan", "Adamax's max(β₂·u, |g|) returning the other operand when one is NaN (fmax): "
              "a NaN gradient leaves u finite", _for("adamax", _with_rule(_AdamaxMaxDropsNanRule))),
    Deviation("schedule-free-averaging-weight-off-by-one", "schedule-free AdamW's averaging weight 1/(t + 1) "
              "instead of 1/t", _for("schedule-free-adamw", _with_rule(_ScheduleFreeWeightOffByOneRule))),
    Deviation("schedule-free-warmup-off-by-one", "schedule-free AdamW's warmup min(t/W, 1) counted from the raw "
              "counter, t − 1: the first step does not move",
              _for("schedule-free-adamw", _with_rule(_ScheduleFreeWarmupOffByOneRule))),
    Deviation("lamb-trust-ratio-over-gradient-norm", "Lamb's trust ratio over the gradient's norm, ‖θ‖ / ‖g‖ (LARS's), "
              "instead of the update direction's ‖θ‖ / ‖r‖", _for("lamb", _with_rule(_LambGradientNormRule))),
    Deviation("lamb-zero-norm-unguarded", "Lamb's trust ratio ‖θ‖ / ‖r‖ not guarded: a variable that starts at zero "
              "never moves (Keras uses 1 when either norm is zero)", _for("lamb", _with_rule(_LambUnguardedRule))),
    Deviation("legacy-schedule-in-nadam", "the legacy TF schedule 0.96^(0.004 t) in Keras 3 Nadam",
              _counterpart("tf-legacy"),
              renames={"u_product": "momentum_cache"}),
    Deviation("keras3-schedule-in-legacy-nadam", "the Keras 3 schedule 0.96^t in the legacy Nadam",
              _counterpart("keras3"),
              renames={"momentum_cache": "u_product"}),
    Deviation("stale-momentum-product", "Nadam's momentum product advanced after the variables were updated",
              _for_update(nadam.update, _with_rule(_NadamStaleProductRule))),
    Deviation("momentum-product-in-float32", "Nadam's momentum product held in float32 whatever the variables' "
              "dtype, as torch.optim's NAdam keeps it", _product_in_float32),
    Deviation("step-count-per-variable", "a step count per variable, as torch.optim keeps it: a variable whose "
              "gradient is None falls behind and bias-corrects with its own count, Nadam's momentum product its own "
              "too (Keras counts the optimizer's steps)", _step_count_per_variable),
    Deviation("missing-gradient-as-zero", "a None gradient taken as zeros, as optax does: the variable's moments "
              "decay and it moves (Keras leaves it and its slots alone)", _missing_as_zero),
    # Another library's rule computed as Keras computes it (Keras itself, or a port of Keras, in torch's or optax's
    # dialect): Keras's ε placement and bias correction, one step count for every variable.
    *(Deviation(f"as-keras-{name}", f"Keras's {RULES[name].keras_class} ({name}) with the same arguments, as a "
                "Keras-style implementation computes it: Keras's ε placement and bias correction, one step count and "
                "one momentum product for every variable", _as_keras(name), restate=_in_keras_names)
      for name in dict.fromkeys(k for rule in ALL for k in translation.keras_rules(rule.name))),
    # -- the pipeline ------------------------------------------------------------------------------------
    Deviation("accumulation-sums", "gradient accumulation sums the micro-gradients instead of averaging them",
              _when("gradient_accumulation_steps", lambda s: s, AccumulationSums)),
    Deviation("clipping-before-averaging", "each accumulated micro-gradient clipped, the mean left unclipped",
              _when("gradient_accumulation_steps", lambda s: s, ClipsMicroGradients)),
    Deviation("weight-decay-not-scaled-by-learning-rate", "weight decay not scaled by the learning rate (θ −= λθ)",
              _decay_without_lr),
    Deviation("weight-decay-after-update", "weight decay applied to the updated weights",
              _when("weight_decay", lambda s: s, DecaysAfterUpdate)),
    Deviation("weight-decay-ignores-exclusions", "exclude_from_weight_decay accepted and forgotten",
              _without_exclusions),
    Deviation("constraint-before-update", "the variable's constraint applied before the update instead of after it",
              _when_spec("constraints", ConstraintBeforeUpdate)),
    Deviation("overwritten-variable-decayed", "a variable assigned its gradient (overwrite_with_gradient) also "
              "decayed", _when_decayed_overwrite),
    Deviation("loss-scale-not-halved", "LossScaleOptimizer skips a step with a non-finite gradient but leaves the "
              "scale as it was (it should halve it)", _when_spec("loss_scale_optimizer", LossScaleNotHalved)),
    Deviation("growth-counted-on-skipped-steps", "LossScaleOptimizer counts a skipped step towards doubling the "
              "scale (the count of finite steps should restart)",
              _when_spec("loss_scale_optimizer", GrowthCountsSkippedSteps)),
    Deviation("non-finite-step-applied", "LossScaleOptimizer applies a step with a non-finite gradient instead of "
              "skipping it: the weights turn non-finite at the first such step", recognise=non_finite_step_applied),
    Deviation("non-finite-gradients-zeroed", "NaN and Inf gradient elements replaced by 0 (a sanitizing port: "
              "nan_to_num); Keras carries them into the weights", _non_finite_zeroed),
    Deviation("global-clip-keeps-non-finite-norm", "global clipping by c·min(1/N, 1/c) without Keras's + (N − N): an "
              "Inf norm scales every gradient by 0 where Keras makes them all NaN",
              _when("global_clipnorm", lambda s: s, GlobalClipKeepsNonFiniteNorm)),
    Deviation("sparse-update-lazy", "a sparse gradient updates only the rows it touches (LazyAdam, torch's "
              "SparseAdam): the other rows' moments do not decay and their weights do not move, where Keras gives "
              "the dense result", _lazy_sparse),
    Deviation("loss-scale-not-undone", "the loss scale is not undone (gradients not divided by loss_scale_factor)",
              _when("loss_scale_factor", lambda s: _patched(s, loss_scale_factor=None))),
    Deviation("global-clip-per-dtype-group", "global clipping over each dtype's variables apart, each group by its "
              "own norm (Keras takes one norm over every variable)",
              lambda spec: (spec, GlobalClipPerDtype) if spec.get("variable_dtypes")
              and spec["config"].get("global_clipnorm") else None),
    Deviation("per-variable-clipping", "per-variable clipping instead of global clipping",
              _when("global_clipnorm", lambda s: _patched(s, global_clipnorm=None,
                                                          clipnorm=s["config"]["global_clipnorm"]))),
    Deviation("ema-momentum-on-first-step", "EMA momentum applied on the first step (the average should start as a "
              "copy)", _when("use_ema", lambda s: s, EmaMomentumOnFirstStep)),
    Deviation("ema-from-initial-weights", "the EMA starts as a copy of the initial weights and blends from the first "
              "step (Keras 2's optimizers)", _when("use_ema", lambda s: s, EmaFromInitialWeights)),
    Deviation("ema-never-overwrites", "ema_overwrite_frequency and finalize_variable_values do nothing",
              _when("use_ema", lambda s: s, EmaNeverOverwrites)),
    Deviation("schedule-fed-real-updates", "the learning-rate schedule fed real updates instead of the raw iteration "
              "counter", _when("gradient_accumulation_steps", lambda s: s, ScheduleSeesUpdates)),
)
