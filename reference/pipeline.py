"""The whole Keras 3 ``apply`` pipeline, in Keras's order, on exact numbers with budgets.

One call of :meth:`ReferenceOptimizer.apply` does what ``optimizer.apply(grads)``
does in Keras 3 (``BaseOptimizer.apply`` and ``_backend_apply_gradients``):

1. an empty gradient list returns at once (the counter does not move);
2. ``None`` gradients drop their variable from this call (all ``None``: error);
2b. a variable built with ``overwrite_with_gradient`` is assigned its raw gradient (under accumulation: the
   running maximum of the micro-gradients, assigned on update steps) and drops out of this call: no slots,
   no unscaling, clipping, decay, average or constraint; when no variable is left,
   steps 3–8 do not happen;
3. ``g ← g / loss_scale_factor``;
4. with ``gradient_accumulation_steps = S``: unless ``(k + 1) mod S == 0``
   (``k`` the raw counter) the gradient is added to the accumulator and
   nothing else happens; otherwise ``g ← (g + acc) / S`` and the accumulator
   is reset after the update (every accumulator, also those of variables without a gradient);
5. clipping (:mod:`reference.clipping`) of that gradient;
6. decoupled weight decay (:mod:`reference.weight_decay`) with ``η = lr(k)``;
7. the rule's update (:mod:`reference.rules`) with ``t = ⌊k / S⌋ + 1``;
8. EMA of all trainable variables, and the optional overwrite (:mod:`reference.ema`);
8b. each variable's constraint (:mod:`reference.constraints`), on the variables of step 3;
9. ``k ← k + 1``; the public ``iterations`` is ``⌊k / S⌋``.

Wrapped in a ``LossScaleOptimizer`` (:mod:`reference.loss_scale`), a call with a non-finite gradient is
skipped whole (the scale halved), and the others see their gradients divided by the dynamic scale first.

Learning-rate schedules see the raw counter ``k``; Keras keeps a float
learning rate in a ``floatx`` variable, so the rate is that ``floatx`` number, exactly (a representation
Keras chose, modelled as a parameter, not allowed for in a budget), before it reaches the variable's dtype.
Every other hyperparameter is the given real number, rounded once to the variables' dtype.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gmpy2
import numpy as np
from gmpy2 import mpfr
from optimizer_conformance.reference import clipping, ema, loss_scale
from optimizer_conformance.reference.arrays import (
    TrackedArray,
    budgets,
    copy,
    each,
    exact_values,
    first,
    in_chunks,
    trim_pool,
    zeros_like,
)
from optimizer_conformance.reference.config import normalize
from optimizer_conformance.reference.constraints import deserialize as deserialize_constraint
from optimizer_conformance.reference.formats import FLOAT32, FloatFormat, get_format, numpy_dtype
from optimizer_conformance.reference.rules import RULES
from optimizer_conformance.reference.schedules import LearningRateSchedule
from optimizer_conformance.reference.tracked import Tracked, maximum, through_floatx
from optimizer_conformance.reference.weight_decay import Exclusions, apply_weight_decay

DEFAULT_PRECISION = 113


def budget_ratios(candidate: Any, exact: Sequence[mpfr], budget: Sequence[float]) -> np.ndarray:
    """``|candidate − exact| / budget`` elementwise, flat.

    ``inf`` where the budget is 0 and they differ, or the candidate is NaN; 0 where the budget is
    infinite: the dtype cannot carry that computation (β₂ = 0.999 is 1.0 in bfloat16, so
    1 − β₂ᵗ = 0), and no honest result, NaN included, is excluded.  Where the exact value is NaN or ±Inf
    (a non-finite input carried by IEEE arithmetic) the candidate agrees (0) when it is non-finite too, and
    not at all (``inf``) when it is finite: a port that sanitizes NaN has changed the result.
    """
    flat = np.asarray(candidate, dtype=np.float64).reshape(-1)
    if hasattr(exact, "ratios"):  # double-doubles (reference.arrays): judged at array speed
        return exact.ratios(flat, np.asarray(budget, dtype=np.float64).reshape(-1))
    out = np.empty(flat.size)
    for i, (c, x, b) in enumerate(zip(flat.tolist(), exact, np.asarray(budget).reshape(-1).tolist())):
        if not gmpy2.is_finite(x):
            out[i] = 0.0 if not math.isfinite(c) else np.inf
        elif b == np.inf:
            out[i] = 0.0
        elif np.isnan(c):
            out[i] = np.inf
        else:
            diff = abs(float(mpfr(c) - x))
            out[i] = diff / b if b > 0 else (0.0 if diff == 0 else np.inf)
    return out


@dataclass(frozen=True)
class Quantity:
    """One output of the oracle: exact values (flat, row-major) and their budgets."""

    name: str
    shape: tuple[int, ...]
    exact: Sequence[mpfr]  # a list of MPFR numbers, or reference.arrays.DoubleDoubles
    budget: np.ndarray

    @property
    def unbounded(self) -> int:
        """How many elements the dtype cannot compute meaningfully (infinite budget)."""
        return int(np.sum(self.budget == np.inf))

    def as_float64(self) -> np.ndarray:
        if hasattr(self.exact, "as_float64"):
            return self.exact.as_float64().reshape(self.shape)
        return np.array([float(x) for x in self.exact], dtype=np.float64).reshape(self.shape)

    def ratios(self, candidate: Any) -> np.ndarray:
        """``|candidate − exact| / budget`` elementwise.

        ``inf`` where the budget is 0 and they differ, or the candidate is NaN;
        0 where the budget is infinite (see :attr:`unbounded`).
        """
        flat = np.asarray(candidate).reshape(-1)
        if flat.size != len(self.exact):
            raise ValueError(
                f"{self.name}: candidate has {flat.size} elements, the oracle {len(self.exact)}"
            )
        return budget_ratios(flat, self.exact, self.budget.reshape(-1)).reshape(self.shape)


def in_format(coefficients: Any, fmt: FloatFormat) -> Any:
    """A rule's coefficients (a dataclass of scalars), each cast to ``fmt``."""
    return dataclasses.replace(coefficients, **{
        f.name: getattr(coefficients, f.name).to(fmt) for f in dataclasses.fields(coefficients)
        if isinstance(getattr(coefficients, f.name), Tracked)})


class ReferenceOptimizer:
    """The exact Keras 3 optimizer ``algorithm`` with budgets for ``dtype``.

    ``variables`` is a sequence of ``(name, array)`` pairs (or a dict); every
    element becomes exact.  ``dtype`` is the format the candidate computes in
    (its variables' dtype); ``floatx`` is Keras's ``keras.config.floatx()``,
    the dtype of its learning-rate variable and schedules.  ``loss_scale_optimizer``: the arguments of a
    ``LossScaleOptimizer`` wrapped around it (:mod:`reference.loss_scale`).  ``arrays``: each variable's elements
    as one :class:`~reference.arrays.TrackedArray` (double-double, at array speed) instead of MPFR numbers, through the
    same pipeline with the same budgets.
    """

    loss_scale_class = loss_scale.DynamicLossScale

    def __init__(
        self,
        algorithm: str,
        config: dict[str, Any] | None = None,
        *,
        dtype: str | FloatFormat = "float32",
        floatx: str | FloatFormat = FLOAT32,
        precision: int = DEFAULT_PRECISION,
        loss_scale_optimizer: dict[str, Any] | None = None,
        arrays: bool = False,
    ) -> None:
        if not isinstance(precision, int) or precision < 64:
            raise ValueError(f"precision must be an integer number of bits >= 64; got {precision!r}")
        self.algorithm = algorithm
        self.config = normalize(algorithm, config)
        self.rule = RULES[algorithm]
        # Wrapped in Keras's LossScaleOptimizer, which clears the inner optimizer's loss_scale_factor.
        self.loss_scale = None
        if loss_scale_optimizer is not None:
            self.loss_scale = self.loss_scale_class(**loss_scale.normalize(loss_scale_optimizer))
            self.config["loss_scale_factor"] = None
        self.floatx = get_format(floatx)
        self.fmt = self.value_format(get_format(dtype))
        self.precision = precision
        # Each variable's elements as one TrackedArray (reference.arrays: double-double at array speed) instead of a
        # list of MPFR Tracked numbers: the same pipeline, the same budgets.
        self.arrays = bool(arrays)
        self._context = gmpy2.context(gmpy2.get_context(), precision=precision)
        self.raw_iterations = 0
        self.exclusions = Exclusions()
        self.built = False
        self.names: list[str] = []
        self.shapes: list[tuple[int, ...]] = []

    # -- setup -----------------------------------------------------------------------
    def build(self, variables: Sequence[tuple[str, Any]] | dict[str, Any], *,
              overwrite_with_gradient: Iterable[int] = (),
              constraints: dict[int | str, dict[str, Any]] | None = None,
              variable_dtypes: dict[int | str, str] | None = None) -> None:
        """Slots for ``variables`` (``(name, array)`` pairs).  ``overwrite_with_gradient``: the indices of
        variables Keras assigns their gradient (they get no slots); ``constraints``: a serialized Keras
        constraint per variable index; ``variable_dtypes``: a dtype per variable index for those not in the
        optimizer's ``dtype`` (each variable, its gradients and slots are held in its own; see :meth:`formats`)."""
        pairs = list(variables.items()) if isinstance(variables, dict) else list(variables)
        if not pairs:
            raise ValueError("variables: at least one (name, array) pair is needed")
        own = dict(zip(self._indices((variable_dtypes or {}).keys(), len(pairs), "variable_dtypes"),
                       (variable_dtypes or {}).values()))
        try:
            self.fmts = [self.value_format(get_format(own[i])) if i in own else self.fmt for i in range(len(pairs))]
        except ValueError as error:
            raise ValueError(f"variable_dtypes: {error}") from None
        self.overwrite = self._indices(overwrite_with_gradient, len(pairs), "overwrite_with_gradient")
        self.constraints = {
            i: deserialize_constraint(c)
            for i, c in zip(self._indices((constraints or {}).keys(), len(pairs), "constraints"),
                            (constraints or {}).values())
        }
        with gmpy2.context(self._context):
            self.names = [str(name) for name, _ in pairs]
            self.shapes = [np.shape(array) for _, array in pairs]
            self.theta = [self._elements(array, f"variables[{name!r}]", self.fmts[i])
                          for i, (name, array) in enumerate(pairs)]
            zeros = [zeros_like(t, self.fmts[i]) for i, t in enumerate(self.theta)]
            initial = getattr(self.rule, "initial_slot", None)
            self.slots = {
                slot: [None if i in self.overwrite else initial(slot, t) if initial else copy(zeros[i])
                       for i, t in enumerate(self.theta)]
                for slot in self.rule.slot_names(self.config)
            }
            # Keras builds the rule's scalar state (Nadam's momentum product) in the first variable's dtype.
            self.scalars = self.rule.initial_scalars(self.coefficient_format(self.fmts[0] if self.fmts else None))
            # A dialect whose variables count their own updates keeps the per-step scalars per variable too.
            self.counts = [0] * len(pairs)
            self.variable_scalars = [dict(self.scalars) for _ in pairs] if self.per_variable else []
            if self.per_variable:
                self.scalars = {}
            if self.config.get("use_ema"):
                self.slots["average"] = [None if i in self.overwrite else z for i, z in enumerate(zeros)]
            if self.config.get("gradient_accumulation_steps"):
                self.slots["gradient_accumulator"] = [copy(z) for z in zeros]
        self.built = True

    @staticmethod
    def _indices(items: Iterable[Any], n: int, what: str) -> list[int]:
        out = []
        for item in items:
            index = int(item) if isinstance(item, str) and item.isdigit() else item
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
                raise ValueError(f"{what}: {item!r} is not a variable index (0 to {n - 1})")
            out.append(index)
        return out

    def exclude_from_weight_decay(
        self, var_list: Iterable[str | int] | None = None, var_names: Iterable[str] | None = None
    ) -> None:
        """Exclude variables by name or index (``var_list``) or by regex over names (``var_names``)."""
        indices = []
        for item in var_list or ():
            if isinstance(item, int) and not isinstance(item, bool):
                indices.append(item)
            elif item in self.names:
                indices.extend(i for i, n in enumerate(self.names) if n == item)
            else:
                raise ValueError(f"var_list: {item!r} is not a variable name or index; names: {self.names}")
        self.exclusions.add(indices, var_names)

    def _elements(self, array: Any, what: str, fmt: FloatFormat | None = None) -> list[Tracked]:
        arr = np.asarray(array)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
                or arr.dtype.name == "bfloat16"):
            raise ValueError(f"{what}: expected an array of real numbers; got dtype {arr.dtype}")
        fmt = fmt or self.fmt
        if self.arrays:
            return TrackedArray.elements(arr, fmt)
        flat = arr.reshape(-1).astype(np.float64)
        native = numpy_dtype(fmt)
        # A candidate is given fmt-valued inputs: those are exact, and numpy says which they are at once.
        # NaN and ±Inf are held as they are (IEEE arithmetic carries them: see tracked.is_special).
        with np.errstate(over="ignore", invalid="ignore"):
            exact = (flat.astype(native).astype(np.float64) == flat) | ~np.isfinite(flat)
        return [Tracked(mpfr(x), 0.0, fmt) if ok else Tracked.element(x, fmt)
                for x, ok in zip(flat.tolist(), exact.tolist())]

    # -- where the specification has a choice an upstream bug makes otherwise (conformance.checks.upstream) --
    def gradient_elements(self, i: int, gradient: Any) -> list[Tracked]:
        """Variable ``i``'s gradient as exact elements.  However it is delivered (dense, or as row slices that may
        name a row more than once), its value is the dense sum: every later step sees that sum."""
        return self._elements(gradient, f"grads[{i}]", self.fmts[i])

    def value_format(self, fmt: FloatFormat) -> FloatFormat:
        """The format the candidate computes in: the variables' dtype, hyperparameters rounded to it once."""
        return fmt

    def coefficient_format(self, fmt: FloatFormat | None = None) -> FloatFormat:
        """Where the per-step scalars are formed (β powers, bias corrections, step sizes, Nadam's momentum product,
        schedule-free AdamW's averaging weight), each then rounded once to the variables' dtype: the wider of that
        dtype and ``floatx``.  They are a handful of scalars per step, so a float16 or bfloat16 variable costs
        nothing by it, and its result is never degenerate by construction (β₂ = 0.999 is 1 in bfloat16, so
        ``1 − β₂ᵗ`` formed there is 0 and the step is zero).  Keras forms them in the variable's dtype: an upstream
        bug (``conformance.checks.upstream``).  A dialect may form them in the variable's dtype by definition
        (tf_keras's legacy optimizers: ``Dialect.coefficients_in_variable_dtype``).  ``fmt``: a variable's dtype
        (default: the optimizer's)."""
        fmt = fmt or self.fmt
        if self.dialect.coefficients_in_variable_dtype or fmt.precision >= self.floatx.precision:
            return fmt
        return self.floatx

    def weight_decay_factor_format(self, fmt: FloatFormat | None = None) -> FloatFormat:
        """Where ``1 − λη`` may be formed: in the variable's dtype ``fmt`` (``θ·(1 − λη)`` or ``θ − θ·λ·η``)."""
        return fmt or self.fmt

    # -- counters --------------------------------------------------------------------
    @property
    def per_variable(self) -> bool:
        """Whether each variable counts its own updates (torch.optim's ``state["step"]``)."""
        return self.dialect.step_per_variable

    @property
    def dialect(self):
        """The rule's dialect (a deviated oracle may stand in another rule object for the rule's mathematics)."""
        return RULES[self.algorithm].dialect

    @property
    def accumulation_steps(self) -> int:
        return self.config.get("gradient_accumulation_steps") or 1

    @property
    def iterations(self) -> int:
        """Keras's public ``iterations``: real updates (the raw counter floor-divided by S)."""
        return self.raw_iterations // self.accumulation_steps

    def schedule_counter(self) -> int:
        """What a learning-rate schedule is evaluated at: the raw counter ``k``."""
        return self.raw_iterations

    def update_count(self) -> int:
        """The rule's ``t``: the 1-based count of real updates, ``⌊k / S⌋ + 1``."""
        return self.iterations + 1

    def accumulated_gradient(self, g: list[Tracked], accumulator: list[Tracked]) -> list[Tracked]:
        """Step 4 on an update step: the mean ``(g + acc) / S`` of the accumulated micro-gradients."""
        steps = self.accumulation_steps
        return each(lambda x, a: (x + a) / steps, g, accumulator)

    def ema_blend_weight(self, fmt: FloatFormat | None = None) -> Tracked | None:
        """``1 − μ`` of this step's EMA blend in a variable's dtype ``fmt``; ``None`` while ``iterations`` is 0 (the
        average copies θ)."""
        return ema.blend_weight(self.config["ema_momentum"], self.iterations, fmt or self.fmt)

    # -- the pipeline ----------------------------------------------------------------
    def learning_rate(self) -> tuple[Tracked, Tracked]:
        """The current learning rate, in ``floatx`` and in the variable dtype."""
        lr = self.config[self.dialect.learning_rate_key]
        if isinstance(lr, LearningRateSchedule):
            in_floatx = lr(self.schedule_counter(), self.floatx)
            return in_floatx, in_floatx.to(self.fmt)
        if isinstance(lr, float):
            # Keras holds a float learning rate in a floatx variable: the rate is that floatx number, exactly.
            held = self.floatx.round(mpfr(lr))
            return Tracked.exact(held, self.floatx), Tracked.rounded(held, self.fmt)
        value = lr()
        return Tracked.rounded(value, self.floatx), Tracked.rounded(value, self.fmt)

    def apply(self, grads: Sequence[Any | None]) -> None:
        """One ``optimizer.apply(grads)``: one gradient (or ``None``) per variable."""
        self._step(grads)
        if self.arrays:  # the step's arrays are free now: the pool keeps a bounded share of them
            trim_pool()

    def _step(self, grads: Sequence[Any | None]) -> None:
        if len(grads) == 0:
            if self.loss_scale is not None:  # Keras's wrapper finds no non-finite gradient and counts a step
                self.loss_scale.after_finite_step()
            return
        if not self.built:
            raise ValueError("build(variables) must be called before apply(grads)")
        if len(grads) != len(self.theta):
            raise ValueError(f"grads: expected {len(self.theta)} gradients (one per variable), got {len(grads)}")
        if self.loss_scale is not None and not loss_scale.all_finite(grads):
            self.loss_scale.after_non_finite_step()
            return
        active = [i for i, g in enumerate(grads) if g is not None]
        if not active:
            raise ValueError("No gradients provided for any variable.")
        with gmpy2.context(self._context):
            g = {}
            for i in active:
                if np.shape(grads[i]) != self.shapes[i]:
                    raise ValueError(
                        f"grads[{i}]: shape {np.shape(grads[i])} does not match variable "
                        f"{self.names[i]!r} of shape {self.shapes[i]}"
                    )
                g[i] = self.gradient_elements(i, grads[i])
                if self.loss_scale is not None and i not in self.overwrite:
                    g[i] = self.loss_scale.unscale(g[i], self.fmts[i])
            for i in active:
                if i in self.overwrite:
                    self.overwrite_with_gradient(i, g[i])
            active = [i for i in active if i not in self.overwrite]
            if active:
                self.update_variables(active, g)
                self.apply_constraints(active)
        self.raw_iterations += 1
        if self.loss_scale is not None:
            self.loss_scale.after_finite_step()

    def apply_constraints(self, active: list[int]) -> None:
        """Step 8b: each constrained variable of this call projected by its constraint."""
        for i in active:
            if i in self.constraints:
                self.theta[i] = self.constraints[i](self.theta[i], self.shapes[i])

    def overwrite_with_gradient(self, i: int, g: list[Tracked]) -> None:
        """Step 2b: ``θ ← g``; under accumulation ``acc ← max(g, acc)``, and on update steps
        ``θ ← max(g, acc)``, ``acc ← 0`` (Keras keeps the running maximum: float8 scaling's ``amax``)."""
        if self.accumulation_steps == 1:
            self.theta[i] = copy(g)
            return
        acc = self.slots["gradient_accumulator"]
        # Keras 3.15 on torch returns this maximum of float64 tensors in float32: an upstream bug (see through_floatx).
        running = each(lambda x, a: through_floatx(maximum(x, a)), g, acc[i])
        if (self.raw_iterations + 1) % self.accumulation_steps == 0:
            self.theta[i] = running
            acc[i] = zeros_like(g, self.fmts[i])
        else:
            acc[i] = running

    def update_variables(self, active: list[int], g: dict[int, list[Tracked]]) -> None:
        """Steps 3 to 8 on the variables of this call (``g``: their gradients)."""
        config = self.config
        scale = config.get("loss_scale_factor")
        if scale is not None:
            g = {i: _divided(g[i], Tracked.rounded(scale, self.fmts[i])) for i in active}
        steps = self.accumulation_steps
        if steps > 1:
            g = dict(zip(active, self.micro_gradients([g[i] for i in active])))
            acc = self.slots["gradient_accumulator"]
            if (self.raw_iterations + 1) % steps != 0:
                for i in active:
                    acc[i] = each(lambda a, x: a + x, acc[i], g[i])
                self.update_moving_average()
                return
            g = {i: self.accumulated_gradient(g[i], acc[i]) for i in active}
        clipped = self.clip_gradients([g[i] for i in active])
        g = dict(zip(active, clipped))
        lr_floatx, lr = self.learning_rate()
        self.decay_weights(active, lr_floatx)
        self.update_rule(active, g, lr)
        if steps > 1:
            self.reset_accumulators()
        self.update_moving_average()

    def reset_accumulators(self) -> None:
        """Step 7b on an update step: every accumulator assigned zeros, also those of variables whose gradient was
        None in this call."""
        acc = self.slots["gradient_accumulator"]
        for i in range(len(acc)):
            acc[i] = zeros_like(acc[i], self.fmts[i])

    def micro_gradients(self, tensors: list[list[Tracked]]) -> list[list[Tracked]]:
        """Step 4 on each call's gradients before they join the accumulator: Keras takes them as they are."""
        return tensors

    def clip_gradients(self, tensors: list[list[Tracked]]) -> list[list[Tracked]]:
        """Step 5 on this call's gradients (:mod:`reference.clipping`)."""
        return clipping.clip(tensors, self.config)

    def decay_weights(self, active: list[int], lr_floatx: Tracked) -> None:
        """Step 6: the decoupled weight decay of this call's variables not excluded from it."""
        if "weight-decay" not in self.dialect.pipeline or self.config.get("weight_decay") is None:
            return  # a dialect without Keras's decoupled decay has its rule's own (torch.optim's weight_decay)
        for i in active:
            if not self.exclusions.excludes(i, self.names[i]):
                self.theta[i] = apply_weight_decay(self.theta[i], self.config["weight_decay"], lr_floatx,
                                                   self.weight_decay_factor_format(self.fmts[i]))

    def update_rule(self, active: list[int], g: dict[int, list[Tracked]], lr: Tracked) -> None:
        """Step 7: the rule's update of the variables of this call and their slots (each with its own count and
        scalars where the dialect keeps them per variable)."""
        if not self.per_variable:
            # Formed once per dtype, each in its own (Keras's update_step casts to each variable's dtype); the
            # rule's scalars advance once, in the first variable's dtype, where Keras builds them.
            step, scalars = self.update_count(), self.scalars
            held = self.fmts[0] if self.fmts else self.fmt
            coefficients, self.scalars = self.step_coefficients(
                lr if held is self.fmt else self.learning_rate()[0].to(held), step, scalars, held)
            per_format = {held: coefficients}
            for i in active:
                fmt = self.fmts[i]
                if fmt not in per_format:
                    per_format[fmt] = self.variable_coefficients(fmt, step, scalars, coefficients)
                self.update_variable(i, per_format[fmt], g[i])
            return
        for i in active:
            self.counts[i] += 1
            fmt = self.fmts[i]
            coefficients, self.variable_scalars[i] = self.step_coefficients(
                lr if fmt is self.fmt else self.learning_rate()[0].to(fmt), self.counts[i], self.variable_scalars[i],
                fmt)
            self.update_variable(i, coefficients, g[i])

    def variable_coefficients(self, fmt: FloatFormat, step: int, scalars: dict[str, Tracked], first: Any) -> Any:
        """The coefficients of step ``step`` for variables in ``fmt``, beside ``first``, those of the optimizer's
        own dtype: formed in ``fmt`` from the learning rate cast there, as Keras's ``update_step`` casts to each
        variable's dtype (the rule's scalars ``scalars`` as they were before this step).  A rule whose scalar state
        advances once per step (``Rule.coefficients_beside``: Nadam's product) casts the advanced state instead."""
        beside = getattr(self.rule, "coefficients_beside", None)  # a deviation's rule may have none
        if beside is None:
            return self.step_coefficients(self.learning_rate()[0].to(fmt), step, scalars, fmt)[0]
        cfmt = self.coefficient_format(fmt)
        coefficients = beside(self.config, self.learning_rate()[0].to(cfmt), step, cfmt,
                              {name: value.to(cfmt) for name, value in self.scalars.items()})
        return coefficients if cfmt is fmt else in_format(coefficients, fmt)

    def step_coefficients(self, lr: Tracked, step: int, scalars: dict[str, Tracked],
                          fmt: FloatFormat | None = None) -> tuple[Any, dict]:
        """The rule's per-step scalars at update ``step`` for variables in ``fmt`` (default: the optimizer's
        dtype), formed in :meth:`coefficient_format`, each then rounded once to ``fmt``, and its advanced scalar
        state."""
        fmt = fmt or self.fmt
        rule, cfmt = self.rule, self.coefficient_format(fmt)
        if cfmt is fmt:
            return rule.coefficients(self.config, lr, step, fmt, scalars)
        # Formed in cfmt from the learning rate as held in floatx, then each rounded once to the dtype.
        wide_lr = self.learning_rate()[0].to(cfmt)
        coefficients, scalars = rule.coefficients(self.config, wide_lr, step, cfmt, scalars)
        return in_format(coefficients, fmt), scalars

    def update_variable(self, i: int, coefficients: Any, g: list[Tracked]) -> None:
        """The rule's update of variable ``i`` and its slots, given this step's coefficients."""
        rule = self.rule
        names = rule.slot_names(self.config)
        theta = self.theta[i]
        whole = getattr(rule, "update_variable", None)
        if whole is None and not isinstance(theta, list):  # a TrackedArray: an element-wise update, chunk by chunk
            def whole(c, g, theta, slots):
                return in_chunks(lambda g, theta, *values: rule.update(c, g, theta, dict(zip(names, values))),
                                 g, theta, *(slots[n] for n in names))
        if whole is not None:
            self.theta[i], new_slots = whole(coefficients, g, theta, {n: self.slots[n][i] for n in names})
            for n in names:
                self.slots[n][i] = new_slots[n]
            return
        update = rule.update
        slot_lists = [self.slots[n][i] for n in names]
        for j, slots in enumerate(zip(*slot_lists)):
            theta[j], new = update(coefficients, g[j], theta[j], dict(zip(names, slots)))
            for n, s in zip(names, slot_lists):
                s[j] = new[n]

    def update_moving_average(self) -> None:
        """Step 8: the EMA of every variable, and its overwrite every ``ema_overwrite_frequency`` updates."""
        if not self.config.get("use_ema"):
            return
        weights = {fmt: self.ema_blend_weight(fmt) for fmt in dict.fromkeys(self.fmts)}
        averages = self.slots["average"]
        for i, theta in enumerate(self.theta):
            if averages[i] is not None:  # a variable assigned its gradient has no average
                averages[i] = each(lambda a, x, w=weights[self.fmts[i]]: ema.update_average(a, x, w), averages[i],
                                   theta)
        if ema.overwrites(self.config["ema_overwrite_frequency"], self.iterations):
            self.finalize_variable_values()

    def restore(self, values: dict[str, Any], raw_iterations: int) -> None:
        """Continue from a state a candidate holds: every quantity of :meth:`state` but ``iterations``.

        ``values`` maps quantity names to arrays in the candidate's dtype; they become exact inputs
        (budget zero), so the next :meth:`apply` is judged on that step alone.
        """
        if not self.built:
            raise ValueError("build(variables) must be called before restore(values)")
        labels = self._labels()
        with gmpy2.context(self._context):
            missing = []

            def elements(name: str, fmt: FloatFormat | None = None) -> list[Tracked] | None:
                if name not in values:
                    missing.append(name)
                    return None
                return self._elements(values[name], name, fmt)

            theta = [elements(f"variables/{label}", self.fmts[i]) for i, label in enumerate(labels)]
            slots = {slot: [None if per_var[i] is None else elements(f"{slot}/{label}", self.fmts[i])
                            for i, label in enumerate(labels)] for slot, per_var in self.slots.items()}
            scalars = {name: elements(name) for name in self.scalars}
            per_variable = [({name: elements(f"{name}/{label}") for name in self.variable_scalars[i]},
                             elements(f"step/{label}")) for i, label in enumerate(labels)] if self.per_variable else []
            wrapper = {name: elements(name) for name in self._loss_scale_state()}
            if missing:
                raise ValueError(f"restore: the state lacks {missing}")
            self.theta = theta
            self.slots = slots
            cfmt = self.coefficient_format()
            self.scalars = {name: Tracked(first(v).value, first(v).error, cfmt) for name, v in scalars.items()}
            for i, (own, count) in enumerate(per_variable):
                self.variable_scalars[i] = {name: Tracked(first(v).value, first(v).error, cfmt)
                                            for name, v in own.items()}
                self.counts[i] = int(first(count).value)
            if self.loss_scale is not None:
                self.loss_scale.restore(float(first(wrapper["dynamic_scale"]).value),
                                        int(first(wrapper["step_counter"]).value))
        self.raw_iterations = raw_iterations

    def _loss_scale_state(self) -> dict[str, Tracked]:
        """The wrapper's own variables, exact: ``dynamic_scale`` (float32) and ``step_counter``."""
        if self.loss_scale is None:
            return {}
        return {"dynamic_scale": self.loss_scale.scale,
                "step_counter": Tracked.exact(self.loss_scale.step_counter, self.fmt)}

    def _labels(self) -> list[str]:
        return [n if self.names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(self.names)]

    def finalize_variable_values(self) -> None:
        """``θ ← avg`` for every variable when EMA is on (what ``fit()`` does at the end)."""
        if self.config.get("use_ema"):
            self.theta = [theta if avg is None else copy(avg)
                          for theta, avg in zip(self.theta, self.slots["average"])]

    # -- results ---------------------------------------------------------------------
    def state(self) -> dict[str, Quantity]:
        """Every output: ``variables/<name>``, ``<slot>/<name>``, the rule's scalars, a loss-scale wrapper's
        ``dynamic_scale`` and ``step_counter``, and ``iterations``.

        Duplicate variable names are told apart by their index (``name#i``).
        """
        labels = self._labels()
        out: dict[str, Quantity] = {}

        def put(name: str, shape, values: list[Tracked]) -> None:
            out[name] = Quantity(name, tuple(shape), exact_values(values), budgets(values))

        for i, label in enumerate(labels):
            put(f"variables/{label}", self.shapes[i], self.theta[i])
        for slot, per_var in self.slots.items():
            for i, label in enumerate(labels):
                if per_var[i] is not None:  # no slots for a variable assigned its gradient
                    put(f"{slot}/{label}", self.shapes[i], per_var[i])
        for name, value in {**self.scalars, **self._loss_scale_state()}.items():
            put(name, (), [value])
        for i, label in enumerate(labels if self.per_variable else ()):
            put(f"step/{label}", (), [Tracked.exact(self.counts[i], self.fmt)])
            for name, value in self.variable_scalars[i].items():
                put(f"{name}/{label}", (), [value])
        put("iterations", (), [Tracked.exact(self.iterations, self.fmt)])
        return out


def _divided(elements: Any, divisor: Tracked) -> Any:
    return each(lambda x: x / divisor, elements)


def run(
    algorithm: str,
    config: dict[str, Any] | None,
    variables: Sequence[tuple[str, Any]] | dict[str, Any],
    gradients: Iterable[Sequence[Any | None]],
    *,
    dtype: str | FloatFormat = "float32",
    floatx: str | FloatFormat = FLOAT32,
    precision: int = DEFAULT_PRECISION,
    exclude: dict[str, Any] | None = None,
    callback: Callable[[int, ReferenceOptimizer], None] | None = None,
) -> ReferenceOptimizer:
    """Build the oracle on ``variables`` and apply each gradient list in turn."""
    opt = ReferenceOptimizer(algorithm, config, dtype=dtype, floatx=floatx, precision=precision)
    opt.build(variables)
    if exclude:
        opt.exclude_from_weight_decay(**exclude)
    for k, grads in enumerate(gradients):
        opt.apply(grads)
        if callback is not None:
            callback(k, opt)
    return opt
