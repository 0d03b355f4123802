"""The one catalogue of named trajectories: the pipeline check's features and the golden fixture corpus.

A :class:`Trajectory` is a configuration and the name of its data: its inputs come from the one input
generator (:mod:`conformance.cases.inputs`) seeded by the trajectory's name, so every trajectory is
reproducible byte for byte on any machine.

* :data:`FEATURES`: one trajectory per rule or pipeline feature (and the combinations that interact),
  written for any algorithm (``algorithm`` None) and made concrete by :func:`pipeline_cases`: the
  ``pipeline/<feature>`` checks of ``optconf check``.  A feature applies to a rule whose dialect has the
  parts of ``apply`` it uses (:attr:`Trajectory.parts`) and that has the capability it needs;
* :data:`CORPUS`: the golden fixtures (``optconf generate``), each with its algorithm and input dtype: the
  trajectories each rule owns (its descriptor's ``corpus``), then the pipeline's and the numerics' edge
  cases; its names say what each tests.

Imports: the data model, the input generator and the rules' descriptors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from optimizer_conformance.conformance.cases.inputs import (
    MAGNITUDES,
    SUBNORMAL,
    centered,
    generator,
    held,
    log_uniform,
    signs,
    spiked,
    spread,
)
from optimizer_conformance.conformance.model import Case, Profile, make_spec
from optimizer_conformance.reference.rules import ALL, RULES
from optimizer_conformance.reference.rules.descriptor import Golden

Shapes = tuple[tuple[str, tuple[int, ...]], ...]
TWO_VARIABLES: Shapes = (("kernel", (3, 4)), ("bias", (4,)))
ONE_SMALL: Shapes = (("w", (3,)),)
MANY_SHAPES: Shapes = (("scale", ()), ("kernel", (2, 3, 2)), ("bias", (7,)), ("embedding", (1, 5)))


def constraint(class_name: str, **config: Any) -> dict[str, Any]:
    """A weight constraint as ``keras.constraints.serialize`` writes it."""
    return {"module": "keras.constraints", "class_name": class_name, "config": config, "registered_name": None}


THREE_VARIABLES: Shapes = (("kernel", (3, 4)), ("bias", (4,)), ("scale", (3,)))
EMBEDDING: Shapes = (("embedding", (6, 3)), ("bias", (3,)))
DYNAMIC = {"initial_scale": 256.0, "dynamic_growth_steps": 2}
CONSTRAINED = {0: constraint("MaxNorm", max_value=1.0, axis=0), 1: constraint("NonNeg")}


def schedule(class_name: str, **config: Any) -> dict[str, Any]:
    """A learning-rate schedule as ``keras.optimizers.schedules.serialize`` writes it."""
    return {"module": "keras.optimizers.schedules", "class_name": class_name, "config": config,
            "registered_name": None}


@dataclass(frozen=True)
class Trajectory:
    name: str
    description: str
    algorithm: str | None  # None: a feature, for any algorithm (see pipeline_cases)
    config: dict[str, Any]
    input_dtype: str = "float32"
    data: str = "normal"
    steps: int = 12
    shapes: Shapes = TWO_VARIABLES
    exclude: dict[str, Any] = field(default_factory=dict)
    finalize: bool = False
    none_every: int = 0  # the last variable's gradient is None at steps 2, 2 + n, 2 + 2n, ...
    overwrite_with_gradient: tuple[int, ...] = ()  # variables Keras assigns their gradient
    constraints: dict[int, dict[str, Any]] = field(default_factory=dict)  # serialized keras.constraints
    loss_scale_optimizer: dict[str, Any] = field(default_factory=dict)  # wrapped in Keras's LossScaleOptimizer
    sparse_gradients: tuple[int, ...] = ()  # variables whose gradients are delivered as row slices
    sparse_duplicate_rows: bool = False  # each of those rows delivered twice (conformance.model.row_slices)
    # A dtype per variable index for variables not in the run's dtype (and their gradients); OTHER: the dtype
    # beside the run's (other_dtype), so that a pipeline feature mixes dtypes in every dtype it runs in.
    variable_dtypes: dict[int, str] = field(default_factory=dict)

    needs: str | None = None  # a capability of the rule (reference.rules.descriptor.CAPABILITIES) the feature needs
    on_first_rule: bool = False  # a pipeline feature that also runs on the first rule (Adam), whatever it needs

    @property
    def dialect(self) -> str:
        return RULES[self.algorithm].dialect.name

    @property
    def parts(self) -> frozenset[str]:
        """The parts of the ``apply`` pipeline this trajectory uses (``reference.rules.descriptor.PIPELINE_PARTS``):
        it applies to a rule whose dialect has them all."""
        c = self.config
        used = {
            "clipping": any(c.get(k) is not None for k in ("clipnorm", "global_clipnorm", "clipvalue")),
            "weight-decay": bool(c.get("weight_decay") or self.exclude),
            "loss-scale": bool(c.get("loss_scale_factor")),
            "accumulation": bool(c.get("gradient_accumulation_steps")),
            "ema": bool(c.get("use_ema") or self.finalize),
            "schedules": isinstance(c.get("learning_rate"), dict),
            "none-gradients": bool(self.none_every),
            "constraints": bool(self.constraints),
            "overwrite-with-gradient": bool(self.overwrite_with_gradient),
            "loss-scale-optimizer": bool(self.loss_scale_optimizer),
            "sparse-gradients": bool(self.sparse_gradients),
            "non-finite": self.data in NON_FINITE_DATA,
            "mixed-dtypes": bool(self.variable_dtypes),
        }
        return frozenset(part for part, on in used.items() if on)

    def inputs(self, dtype: str | None = None) -> tuple[list[tuple[str, np.ndarray]], list[list[np.ndarray | None]]]:
        """Initial variables and gradients, exactly representable in ``dtype`` (default: the input dtype)."""
        dtype = dtype or self.input_dtype
        theta, grads = DATA[self.data](generator(self.name), self.shapes, self.steps, dtype)
        own = self.dtypes_in(dtype)
        variables = [(name, held(held(t, dtype), own.get(i, dtype))) for i, ((name, _), t)
                     in enumerate(zip(self.shapes, theta))]
        gradients: list[list[np.ndarray | None]] = [[held(held(g, dtype), own.get(i, dtype))
                                                     for i, g in enumerate(step)] for step in grads]
        if self.none_every:
            for k in range(1, len(gradients), self.none_every):
                gradients[k][-1] = None
        return variables, gradients

    def spec(self, dtype: str | None = None, compile: str = "eager") -> dict:
        """The worker spec that runs this trajectory in ``dtype`` (default: the input dtype)."""
        if self.algorithm is None:
            raise ValueError(f"{self.name} is a feature: make it concrete with for_algorithm()")
        dtype = dtype or self.input_dtype
        variables, gradients = self.inputs(dtype)
        return make_spec(self.algorithm, self.config, dtype, variables, gradients, exclude=self.exclude,
                         compile=compile, finalize=self.finalize, overwrite_with_gradient=self.overwrite_with_gradient,
                         constraints=self.constraints, loss_scale_optimizer=self.loss_scale_optimizer,
                         sparse_gradients=self.sparse_gradients, variable_dtypes=self.dtypes_in(dtype),
                         sparse_duplicate_rows=self.sparse_duplicate_rows)

    def dtypes_in(self, dtype: str) -> dict[int, str]:
        """The variables' own dtypes in a run in ``dtype`` (OTHER made concrete)."""
        return {i: other_dtype(dtype) if d == OTHER else d for i, d in self.variable_dtypes.items()}

    def for_algorithm(self, algorithm: str, steps: int) -> Trajectory:
        """A feature made concrete: ``algorithm`` at learning rate 0.01 (and its rule's ``pipeline_config``: AdamW's
        decay 0.05) over ``steps``, its configuration in the rule's dialect's own argument names (torch's ``lr``)."""
        rule = RULES[algorithm]
        config = rule.dialect.in_own_names({"learning_rate": 0.01, **rule.pipeline_config, **self.config})
        return replace(self, name=f"{algorithm}/{self.name}", algorithm=algorithm, config=config,
                       steps=max(steps, self.steps))


# -- data: each a function of (generator, shapes, steps, dtype) -> (initial variables, gradients) --------


def _normal(rng, shapes, steps, dtype):
    low, high = MAGNITUDES[dtype]
    theta = [centered(rng, s, 1) for _, s in shapes]
    grads = [[spread(rng, s, low, high) for _, s in shapes] for _ in range(steps)]
    return theta, grads


def _shrinking(rng, shapes, steps, dtype):
    theta, grads = _normal(rng, shapes, steps, dtype)
    return theta, spiked(grads)


def _zeros(rng, shapes, steps, dtype):
    theta, grads = _normal(rng, shapes, steps, dtype)
    return theta, [[np.zeros_like(g) if k % 3 != 1 else g for g in step] for k, step in enumerate(grads)]


def _magnitudes(rng, shapes, steps, dtype):
    """Variables over 2**-10 to 2**10 (6 decades), gradients over 2**-100 to 2**50 (10**-30 to 10**15)."""
    theta = [centered(rng, s) * log_uniform(rng, s, -10, 10) for _, s in shapes]
    grads = [[signs(rng, s) * log_uniform(rng, s, -100, 50) for _, s in shapes] for _ in range(steps)]
    return theta, grads


def _subnormal(rng, shapes, steps, dtype):
    low, high = SUBNORMAL[dtype]
    theta = [centered(rng, s) for _, s in shapes]
    grads = [[signs(rng, s) * log_uniform(rng, s, low, high) for _, s in shapes] for _ in range(steps)]
    return theta, grads


def _crossing(rng, shapes, steps, dtype):
    theta = [centered(rng, s, -6) for _, s in shapes]
    direction = [signs(rng, s) for _, s in shapes]
    grads = [[d * (1.0 + centered(rng, d.shape, -4)) for d in direction] for _ in range(steps)]
    return theta, grads


def _zero_variable(rng, shapes, steps, dtype):
    """The last variable starts at zero, as a bias does."""
    theta, grads = _normal(rng, shapes, steps, dtype)
    return theta[:-1] + [np.zeros_like(theta[-1])], grads


def _scaled_non_finite(rng, shapes, steps, dtype):
    """Gradients as a loss scale of 2**8 leaves them (exact), with +Inf at the third step, NaN at the sixth and
    -Inf at the ninth, each in one element of one variable: what LossScaleOptimizer skips."""
    theta, grads = _normal(rng, shapes, steps, dtype)
    grads = [[np.ldexp(g, LOSS_SCALE_BITS) for g in step] for step in grads]
    return theta, _with_non_finite(grads, NON_FINITE_STEPS, len(shapes))


def _non_finite(rng, shapes, steps, dtype):
    """Normal gradients with +Inf at the second step, NaN at the third and -Inf at the fifth, each in one
    element of one variable: what IEEE arithmetic carries through an unwrapped optimizer."""
    theta, grads = _normal(rng, shapes, steps, dtype)
    return theta, _with_non_finite(grads, NON_FINITE_PLAIN_STEPS, len(shapes))


def _with_non_finite(grads, at: dict[int, float], n_variables: int):
    for k, value in at.items():
        if k < len(grads):
            i = k % n_variables
            flat = grads[k][i].reshape(-1).copy()
            flat[k % flat.size] = value
            grads[k][i] = flat.reshape(grads[k][i].shape)
    return grads


def _sparse_rows(rng, shapes, steps, dtype):
    """The first variable's gradient nonzero on two or three of its rows per step (an embedding's lookups), its
    last row never touched."""
    theta, grads = _normal(rng, shapes, steps, dtype)
    rows = shapes[0][1][0]
    for k, step in enumerate(grads):
        touched = [r for r in range(rows - 1) if (r + k) % 3 != 0]
        mask = np.zeros((rows,) + (1,) * (step[0].ndim - 1))
        mask[touched] = 1
        step[0] = step[0] * mask
    return theta, grads


LOSS_SCALE_BITS = 8
NON_FINITE_STEPS = {2: np.inf, 5: np.nan, 8: -np.inf}
NON_FINITE_PLAIN_STEPS = {1: np.inf, 2: np.nan, 4: -np.inf}


NON_FINITE_DATA = ("non-finite", "scaled-non-finite")

DATA: dict[str, Callable] = {
    "normal": _normal,
    "shrinking": _shrinking,
    "zeros": _zeros,
    "magnitudes": _magnitudes,
    "subnormal": _subnormal,
    "crossing": _crossing,
    "zero-variable": _zero_variable,
    "scaled-non-finite": _scaled_non_finite,
    "non-finite": _non_finite,
    "sparse-rows": _sparse_rows,
}

# -- the pipeline check's features -------------------------------------------------------------------------


OTHER = "other"


def other_dtype(dtype: str) -> str:
    """The dtype of the second kind of variable beside ``dtype`` ones in a mixed-dtype trajectory: float16 beside
    float32 (mixed precision's pair), float32 beside the others."""
    return "float16" if dtype == "float32" else "float32"


def _feature(name: str, description: str, config: dict[str, Any], *, min_steps: int = 0, **options: Any) -> Trajectory:
    return Trajectory(name, description, None, config, steps=min_steps, **options)


FEATURES: tuple[Trajectory, ...] = (
    _feature("basic", "the rule alone", {}),
    _feature("large-hyperparameters", "learning rate, betas and epsilon large enough to show their placement",
             {"learning_rate": 0.25, "beta_1": 0.5, "beta_2": 0.75, "epsilon": 0.5}),
    _feature("amsgrad", "AMSGrad after a gradient spike", {"amsgrad": True}, data="shrinking", min_steps=5,
             needs="amsgrad"),
    _feature("loss-scale", "gradients divided by loss_scale_factor", {"loss_scale_factor": 64.0}),
    _feature("accumulation", "the mean of 3 micro-gradients", {"gradient_accumulation_steps": 3, "epsilon": 0.1},
             min_steps=7),
    _feature("accumulation-clipnorm", "clipping of the averaged gradient",
             {"gradient_accumulation_steps": 2, "clipnorm": 0.05}, min_steps=5),
    _feature("accumulation-schedule", "a schedule fed the raw counter under accumulation",
             {"gradient_accumulation_steps": 2,
              "learning_rate": schedule("PiecewiseConstantDecay", boundaries=[0, 2], values=[0.2, 0.05, 0.01])},
             min_steps=6),
    _feature("accumulation-ema", "EMA blended on every micro-step",
             {"gradient_accumulation_steps": 2, "use_ema": True, "ema_momentum": 0.5}, min_steps=5),
    _feature("clipnorm", "per-tensor clipping", {"clipnorm": 0.05}),
    _feature("global-clipnorm", "clipping over all tensors", {"global_clipnorm": 0.05}),
    _feature("clipvalue", "elementwise clipping", {"clipvalue": 0.05}),
    _feature("weight-decay", "decoupled weight decay scaled by the learning rate",
             {"weight_decay": 0.5, "learning_rate": 0.1}),
    _feature("weight-decay-exclusion", "weight decay with variables excluded by name and by index",
             {"weight_decay": 0.5, "learning_rate": 0.1}, exclude={"var_names": ["bia"], "var_list": [0]},
             shapes=(("kernel", (3, 4)), ("bias", (4,)), ("scale", (2,)))),
    _feature("ema", "EMA of the weights, the first step a copy", {"use_ema": True, "ema_momentum": 0.5}),
    _feature("ema-overwrite-finalize", "EMA overwriting every 2 steps, then finalize_variable_values",
             {"use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 2}, finalize=True),
    _feature("none-gradients", "a None gradient every other step", {}, none_every=2),
    _feature("constraints", "MaxNorm on the kernel, NonNeg on the bias, applied after the update",
             {"learning_rate": 0.1}, constraints=CONSTRAINED),
    _feature("constraints-weight-decay-ema", "constraints after decay, the update and the EMA (which averages the "
             "unconstrained weights)", {"learning_rate": 0.1, "weight_decay": 0.2, "use_ema": True,
                                        "ema_momentum": 0.5}, constraints=CONSTRAINED),
    _feature("overwrite-with-gradient", "a variable assigned its gradient: no slots, no loss-scale unscaling, out of"
             "the global clipping, no decay", {"global_clipnorm": 0.05, "loss_scale_factor": 4.0, "weight_decay": 0.1},
             shapes=THREE_VARIABLES,
             overwrite_with_gradient=(2,)),
    _feature("overwrite-with-gradient-accumulation", "a variable assigned the running maximum of its micro-gradients "
             "on update steps", {"gradient_accumulation_steps": 2, "use_ema": True, "ema_momentum": 0.5},
             shapes=THREE_VARIABLES, overwrite_with_gradient=(2,), min_steps=5),
    _feature("dynamic-loss-scale", "LossScaleOptimizer: gradients unscaled by the dynamic scale, the steps with "
             "Inf or NaN skipped and the scale halved, doubled after 2 finite steps", {}, data="scaled-non-finite",
             loss_scale_optimizer=DYNAMIC, min_steps=9),
    _feature("dynamic-loss-scale-accumulation", "a skipped step leaves the accumulation where it was",
             {"gradient_accumulation_steps": 2}, data="scaled-non-finite", loss_scale_optimizer=DYNAMIC, min_steps=9),
    _feature("dynamic-loss-scale-clipping", "global clipping of the unscaled gradients",
             {"global_clipnorm": 0.05}, data="scaled-non-finite", loss_scale_optimizer=DYNAMIC,
             min_steps=9),
    _feature("non-finite-gradients", "Inf and NaN gradient elements carried by IEEE arithmetic: that element of "
             "the variable turns NaN, the others go on", {}, data="non-finite"),
    # Clipping is the pipeline's, the same under every rule: its non-finite cases run for the first rule (Adam) and
    # for the rules whose running maximum meets the NaN (Adamax); each rule meets Inf and NaN in non-finite-gradients.
    _feature("non-finite-gradients-clipnorm", "an Inf element sends the rest of its clipped tensor to 0, a NaN "
             "makes it all NaN", {"clipnorm": 1.0}, data="non-finite", needs="running-max", on_first_rule=True),
    _feature("non-finite-gradients-global-clipnorm", "a non-finite global norm makes every gradient NaN (Keras "
             "adds N − N to the scale)", {"global_clipnorm": 1.0}, data="non-finite", needs="running-max",
             on_first_rule=True),
    _feature("non-finite-gradients-clipvalue", "±Inf clipped to ±c (a finite step), NaN kept",
             {"clipvalue": 0.5}, data="non-finite", needs="running-max", on_first_rule=True),
    _feature("sparse-gradients", "an embedding's gradient delivered as row slices (tf.IndexedSlices, JAX BCOO): "
             "the dense result, untouched rows' moments decaying too", {"weight_decay": 0.01}, data="sparse-rows",
             shapes=EMBEDDING, sparse_gradients=(0,)),
    _feature("sparse-duplicate-rows", "an embedding's gradient delivered as row slices, each row twice (a lookup that "
             "meets a token twice): the slices summed before any other use, the dense result",
             {"weight_decay": 0.01}, data="sparse-rows", shapes=EMBEDDING, sparse_gradients=(0,),
             sparse_duplicate_rows=True),
    _feature("warmup", "the rule's own learning-rate warmup over 3 steps", {"warmup_steps": 3}, min_steps=5,
             needs="warmup"),
    _feature("zero-variable", "a variable that starts at zero (a bias): Lamb's trust ratio is 1 there", {},
             data="zero-variable", needs="variable-norms"),
    _feature("mixed-dtypes", "the bias in another dtype (float16 beside float32, float32 beside the others): each "
             "variable decayed and updated in its own dtype, the learning rate cast to each",
             {"weight_decay": 0.05}, variable_dtypes={1: OTHER}),
    _feature("mixed-dtypes-global-clipnorm", "global clipping across two dtypes: each sum of squares in its own, the "
             "norm and the scale in the wider, each product cast back", {"global_clipnorm": 0.05},
             variable_dtypes={1: OTHER}),
    _feature("schedule-exponential", "ExponentialDecay", {"learning_rate": schedule(
        "ExponentialDecay", initial_learning_rate=0.05, decay_steps=2, decay_rate=0.5)}),
    _feature("schedule-piecewise", "PiecewiseConstantDecay", {"learning_rate": schedule(
        "PiecewiseConstantDecay", boundaries=[1, 3], values=[0.1, 0.01, 0.001])}),
    _feature("schedule-polynomial", "PolynomialDecay, cycling", {"learning_rate": schedule(
        "PolynomialDecay", initial_learning_rate=0.05, decay_steps=3, power=2.0, cycle=True)}),
    _feature("schedule-inverse-time", "InverseTimeDecay", {"learning_rate": schedule(
        "InverseTimeDecay", initial_learning_rate=0.05, decay_steps=2, decay_rate=1.0)}),
    _feature("schedule-cosine-warmup", "CosineDecay with warmup", {"learning_rate": schedule(
        "CosineDecay", initial_learning_rate=0.001, decay_steps=4, alpha=0.1, warmup_target=0.05, warmup_steps=2)}),
    _feature("schedule-cosine-restarts", "CosineDecayRestarts", {"learning_rate": schedule(
        "CosineDecayRestarts", initial_learning_rate=0.05, first_decay_steps=2, m_mul=0.5)}),
)

def features_for(algorithm: str) -> list[Trajectory]:
    """The features that apply to ``algorithm``: its dialect has the pipeline parts they use, and it has the
    capability they need."""
    rule = RULES[algorithm]
    return [f for f in FEATURES if f.parts <= rule.dialect.pipeline
            and (f.needs is None or f.needs in rule.capabilities or (f.on_first_rule and rule is ALL[0]))]


def judges_the_rule(feature: Trajectory) -> bool:
    """Whether ``feature`` judges a rule's own arithmetic (no part of ``apply`` beyond the rule and IEEE
    arithmetic, or a capability of the rule): it runs on every rule in every dtype in every profile."""
    return feature.needs is not None or not (feature.parts - {"non-finite"})


def pairwise(feature: Trajectory, algorithm: str, dtype: str, algorithms: list[str], dtypes: list[str]) -> bool:
    """Whether a pairwise run of ``algorithms`` in ``dtypes`` runs pipeline ``feature`` on ``algorithm`` in ``dtype``.

    A pipeline feature is the base class's (Keras writes ``apply`` once for every rule): each runs on every rule
    it applies to and in every dtype, max(rules, dtypes) times instead of rules × dtypes, the dtypes turning with
    the feature's place in the catalogue so that each rule and dtype gets its share.  What only a rule, a dtype
    and a feature together would show is the deep profile's (every combination)."""
    rules = [a for a in algorithms if feature in features_for(a)]
    if judges_the_rule(feature) or algorithm not in rules or dtype not in dtypes:
        return True
    turn = FEATURES.index(feature)
    return any(rules[k % len(rules)] == algorithm and dtypes[(turn + k) % len(dtypes)] == dtype
               for k in range(max(len(rules), len(dtypes))))


def pipeline_cases(algorithm: str, dtype: str, profile: Profile, algorithms: list[str] | None = None,
                   dtypes: list[str] | None = None) -> list[Case]:
    """The ``pipeline/<feature>`` cases of ``algorithm`` in ``dtype``: every feature that applies to it, or, unless
    ``profile`` runs every combination, those a pairwise run of ``algorithms`` in ``dtypes`` gives it
    (:func:`pairwise`; without them, every feature)."""
    return [Case(f"pipeline/{feature.name}", algorithm, dtype,
                 feature.for_algorithm(algorithm, profile.steps).spec(dtype), feature.name)
            for feature in features_for(algorithm)
            if profile.every_combination or algorithms is None or dtypes is None
            or pairwise(feature, algorithm, dtype, algorithms, dtypes)]


# -- the golden fixture corpus ---------------------------------------------------------------------------

LR = 0.01

SHAPES: dict[str, Shapes] = {"two-variables": TWO_VARIABLES, "one-small": ONE_SMALL, "many-shapes": MANY_SHAPES}


def owned(rule_name: str, golden: Golden) -> Trajectory:
    """A rule's own golden trajectory (``reference.rules.descriptor.Golden``) in the catalogue's form."""
    return Trajectory(golden.name, golden.description, rule_name, dict(golden.config), input_dtype=golden.input_dtype,
                      data=golden.data, steps=golden.steps, shapes=SHAPES[golden.shapes])


CORPUS: tuple[Trajectory, ...] = (
    # -- each rule and dtype: the trajectories each rule's module owns (reference/rules/<rule>.py) -------------
    *(owned(rule.name, golden) for rule in ALL for golden in rule.corpus),
    # -- pipeline features, alone -----------------------------------------------------------------------
    Trajectory("adam-loss-scale", "loss_scale_factor 1024: gradients are divided by it", "adam",
          {"learning_rate": LR, "loss_scale_factor": 1024.0}),
    Trajectory("adam-accumulation-3",
               "gradient_accumulation_steps 3: mean of 3 micro-gradients, iterations floor-divided",
          "adam", {"learning_rate": LR, "gradient_accumulation_steps": 3}),
    Trajectory("adam-clipnorm", "clipnorm 0.5 per tensor", "adam", {"learning_rate": LR, "clipnorm": 0.5}),
    Trajectory("adam-global-clipnorm", "global_clipnorm 1.0 over all tensors", "adam",
          {"learning_rate": LR, "global_clipnorm": 1.0}),
    Trajectory("adam-clipvalue", "clipvalue 0.05", "adam", {"learning_rate": LR, "clipvalue": 0.05}),
    Trajectory("adam-weight-decay-excluded-by-name", "weight decay on Adam, bias excluded by a name pattern", "adam",
          {"learning_rate": LR, "weight_decay": 0.2}, exclude={"var_names": ["bia"]}),
    Trajectory("adamw-weight-decay-excluded-by-variable", "AdamW, the kernel excluded by variable", "adamw",
          {"learning_rate": LR, "weight_decay": 0.2}, exclude={"var_list": [0]}),
    Trajectory("adam-ema", "EMA momentum 0.9: the first step copies the weights", "adam",
          {"learning_rate": LR, "use_ema": True, "ema_momentum": 0.9}),
    Trajectory("adam-ema-overwrite-finalize", "EMA overwriting every 4 steps, then finalize_variable_values", "adam",
          {"learning_rate": LR, "use_ema": True, "ema_overwrite_frequency": 4}, finalize=True),
    Trajectory("adam-none-gradients", "a None gradient every other step for the bias", "adam", {"learning_rate": LR},
          none_every=2),
    Trajectory("adam-exponential-decay", "ExponentialDecay", "adam",
          {"learning_rate": schedule("ExponentialDecay", initial_learning_rate=LR, decay_steps=3, decay_rate=0.5)}),
    Trajectory("adam-exponential-decay-staircase", "ExponentialDecay with staircase", "adam",
          {"learning_rate": schedule("ExponentialDecay", initial_learning_rate=LR, decay_steps=3, decay_rate=0.5,
                                     staircase=True)}),
    Trajectory("adam-piecewise-constant", "PiecewiseConstantDecay", "adam",
          {"learning_rate": schedule("PiecewiseConstantDecay", boundaries=[3, 7], values=[0.01, 0.005, 0.001])}),
    Trajectory("adam-polynomial-decay", "PolynomialDecay, power 2, cycling", "adam",
          {"learning_rate": schedule("PolynomialDecay", initial_learning_rate=LR, decay_steps=4,
                                     end_learning_rate=0.001, power=2.0, cycle=True)}),
    Trajectory("adam-inverse-time-decay", "InverseTimeDecay", "adam",
          {"learning_rate": schedule("InverseTimeDecay", initial_learning_rate=LR, decay_steps=2, decay_rate=0.5)}),
    Trajectory("adam-cosine-decay-warmup", "CosineDecay with linear warmup and alpha", "adam",
          {"learning_rate": schedule("CosineDecay", initial_learning_rate=0.001, decay_steps=6, alpha=0.1,
                                     warmup_target=0.02, warmup_steps=3)}),
    Trajectory("adam-cosine-decay-restarts", "CosineDecayRestarts, t_mul 2, m_mul 0.5", "adam",
          {"learning_rate": schedule("CosineDecayRestarts", initial_learning_rate=LR, first_decay_steps=2,
                                     m_mul=0.5)}),
    # -- combinations that interact --------------------------------------------------------------------
    Trajectory("adam-accumulation-ema-schedule", "accumulation 3 with EMA (blended every micro-step) and a schedule "
          "fed the raw counter", "adam",
          {"learning_rate": schedule("ExponentialDecay", initial_learning_rate=LR, decay_steps=2, decay_rate=0.7),
           "gradient_accumulation_steps": 3, "use_ema": True, "ema_momentum": 0.8}, steps=15),
    Trajectory("adamw-weight-decay-exclusion-schedule", "AdamW decay with a cosine schedule, bias excluded", "adamw",
          {"learning_rate": schedule("CosineDecay", initial_learning_rate=0.05, decay_steps=10),
           "weight_decay": 0.3}, exclude={"var_names": ["bias"]}),
    Trajectory("adam-clipnorm-loss-scale", "clipnorm after loss-scale unscaling", "adam",
          {"learning_rate": LR, "clipnorm": 0.5, "loss_scale_factor": 128.0}),
    Trajectory("nadam-accumulation-global-clipnorm", "Nadam: global clipping of the averaged gradient, u_product once "
          "per real update", "nadam", {"learning_rate": LR, "gradient_accumulation_steps": 2,
                                       "global_clipnorm": 0.3}, steps=14),
    Trajectory("adamax-accumulation-clipnorm-weight-decay", "Adamax: clipnorm of the averaged gradient, weight decay",
          "adamax", {"learning_rate": LR, "gradient_accumulation_steps": 2, "clipnorm": 0.5, "weight_decay": 0.1},
          steps=12),
    Trajectory("lamb-weight-decay-global-clipnorm-ema", "Lamb: the trust ratio of the decayed weights, global "
          "clipping, EMA", "lamb", {"learning_rate": LR, "weight_decay": 0.1, "global_clipnorm": 0.5, "use_ema": True},
          steps=10),
    Trajectory("schedule-free-adamw-weight-decay-accumulation-ema", "ScheduleFreeAdamW: decay of y, the mean of 2 "
          "micro-gradients, EMA", "schedule-free-adamw", {"learning_rate": LR, "weight_decay": 0.1,
                                                          "gradient_accumulation_steps": 2, "use_ema": True},
          steps=12),
    Trajectory("adam-constraints", "MaxNorm(1.0) on the kernel's columns and NonNeg on the bias, after each update",
          "adam", {"learning_rate": 0.1}, constraints=CONSTRAINED),
    Trajectory("adamw-constraints-ema", "AdamW with constraints after decay, update and EMA (the average is of the "
          "unconstrained weights)", "adamw", {"learning_rate": 0.1, "weight_decay": 0.2, "use_ema": True,
                                              "ema_momentum": 0.5}, constraints=CONSTRAINED),
    Trajectory("adam-overwrite-with-gradient", "a third variable assigned its gradient: no slots, out of the "
          "clipping and the loss-scale unscaling", "adam", {"learning_rate": LR, "global_clipnorm": 0.5,
                                                            "loss_scale_factor": 4.0}, shapes=THREE_VARIABLES,
          overwrite_with_gradient=(2,)),
    Trajectory("adam-overwrite-with-gradient-accumulation", "the running maximum of its micro-gradients assigned on "
          "update steps", "adam", {"learning_rate": LR, "gradient_accumulation_steps": 3},
          shapes=THREE_VARIABLES, overwrite_with_gradient=(2,)),
    Trajectory("adam-dynamic-loss-scale", "LossScaleOptimizer (initial scale 256, doubling after 2 finite steps): "
          "the steps with +Inf, NaN and -Inf skipped, the scale halved", "adam", {"learning_rate": LR},
          data="scaled-non-finite", loss_scale_optimizer=DYNAMIC),
    Trajectory("adam-float16-dynamic-loss-scale", "mixed precision as Keras does it: float16 weights and gradients "
          "under a dynamic loss scale", "adam", {"learning_rate": LR}, input_dtype="float16",
          data="scaled-non-finite", loss_scale_optimizer=DYNAMIC),
    Trajectory("adamw-dynamic-loss-scale-accumulation-clipnorm", "a skipped step leaves the accumulation where it "
          "was; the averaged unscaled gradient clipped", "adamw",
          {"learning_rate": LR, "gradient_accumulation_steps": 2, "clipnorm": 0.5}, data="scaled-non-finite",
          loss_scale_optimizer=DYNAMIC),
    Trajectory("adam-non-finite-gradients", "+Inf, NaN and -Inf gradient elements carried by IEEE arithmetic into "
          "the moments and weights (no wrapper)", "adam", {"learning_rate": LR, "amsgrad": True}, data="non-finite"),
    Trajectory("adamax-non-finite-gradients-clipnorm", "per-tensor clipping of a gradient with an Inf (the rest of "
          "it goes to 0) and a NaN (all of it NaN); Adamax's max propagates NaN", "adamax",
          {"learning_rate": LR, "clipnorm": 0.5}, data="non-finite"),
    Trajectory("adam-mixed-dtypes", "a float16 bias beside the kernel, with weight decay and an EMA: each variable "
               "decayed, updated and averaged in its own dtype", "adam",
               {"learning_rate": LR, "weight_decay": 0.1, "use_ema": True, "ema_momentum": 0.5},
               variable_dtypes={1: "float16"}),
    Trajectory("adamw-mixed-dtypes-global-clipnorm", "global clipping over a kernel and a float16 bias: one norm, "
               "formed in the wider dtype", "adamw", {"learning_rate": LR, "weight_decay": 0.05,
                                                       "global_clipnorm": 0.5}, variable_dtypes={1: "float16"}),
    Trajectory("adam-sparse-gradients", "an embedding's gradient given as row slices (tf.IndexedSlices, JAX BCOO) "
          "of the rows it touches; the result is the dense one", "adam", {"learning_rate": LR}, data="sparse-rows",
          shapes=EMBEDDING, sparse_gradients=(0,)),
    Trajectory("adam-sparse-duplicate-rows", "an embedding's gradient given as row slices with each row twice (a "
          "lookup that meets a token twice: the row's half, then its rest); the result is the dense one", "adam",
          {"learning_rate": LR}, data="sparse-rows", shapes=EMBEDDING,
          sparse_gradients=(0,), sparse_duplicate_rows=True),
    Trajectory("adamw-amsgrad-ema-clipvalue", "AdamW with amsgrad, EMA and clipvalue on shrinking gradients", "adamw",
          {"learning_rate": LR, "amsgrad": True, "use_ema": True, "clipvalue": 1.0}, data="shrinking"),
    # -- hard data -------------------------------------------------------------------------------------
    Trajectory("adam-zero-gradients", "zero gradients on two steps out of three", "adam", {"learning_rate": LR},
          data="zeros"),
    Trajectory("nadam-zero-gradients", "Nadam with zero gradients on two steps out of three", "nadam",
          {"learning_rate": LR}, data="zeros"),
    Trajectory("adam-gradients-over-45-decades", "gradients from 1e-30 to 1e15, parameters over 6 decades", "adam",
          {"learning_rate": LR}, data="magnitudes"),
    Trajectory("adam-subnormal-gradients", "float32 subnormal gradients (2**-149 to 2**-126)", "adam",
               {"learning_rate": LR},
          data="subnormal"),
    Trajectory("adam-float16-subnormal-gradients", "float16 subnormal gradients", "adam", {"learning_rate": LR},
          input_dtype="float16", data="subnormal"),
    Trajectory("adamax-zero-gradients", "Adamax with zero gradients on two steps out of three: u decays, m shrinks",
          "adamax", {"learning_rate": LR}, data="zeros"),
    Trajectory("adam-parameters-crossing-zero", "parameters within 0.02 of zero pushed across it", "adam",
          {"learning_rate": LR}, data="crossing"),
    Trajectory("adamw-parameters-crossing-zero", "AdamW decay while parameters cross zero", "adamw",
          {"learning_rate": LR, "weight_decay": 0.5}, data="crossing"),
    Trajectory("adam-many-shapes", "a scalar, a 3-d tensor, a vector and a row, one optimizer", "adam",
          {"learning_rate": LR}, shapes=MANY_SHAPES),
    Trajectory("nadam-many-shapes", "Nadam over variables of four shapes", "nadam", {"learning_rate": LR},
          shapes=MANY_SHAPES),
    Trajectory("lamb-many-shapes", "Lamb over variables of four shapes: one trust ratio each (a scalar's is |r|/|r|)",
          "lamb", {"learning_rate": LR}, shapes=MANY_SHAPES),
    # -- long runs: step counts past float16 (2048) and bfloat16 (256) integer precision ----------------
    Trajectory("adam-long-run-float16", "2100 steps in float16: t is no longer exact past 2048", "adam",
          {"learning_rate": 0.001}, input_dtype="float16", steps=2100, shapes=ONE_SMALL),
    Trajectory("adam-long-run-bfloat16", "1200 steps in bfloat16: t is no longer exact past 256", "adam",
          {"learning_rate": 0.001, "beta_2": 0.984375}, input_dtype="bfloat16", steps=1200, shapes=ONE_SMALL),
    Trajectory("nadam-long-run-float32", "1500 steps of Nadam in float32: the schedule settles to beta_1",
          "nadam", {"learning_rate": 0.001}, steps=1500, shapes=ONE_SMALL),
    Trajectory("nadam-legacy-long-run", "1500 steps of the legacy schedule, which barely moves", "nadam-legacy",
          {"learning_rate": 0.001}, steps=1500, shapes=ONE_SMALL),
)


BY_NAME: dict[str, Trajectory] = {t.name: t for t in CORPUS}
assert len(BY_NAME) == len(CORPUS), "duplicate fixture names"
