"""The curated fixture corpus: every rule and pipeline feature, alone and in the combinations that interact,
in each dtype, on hard data.  Each entry's name says what it tests; its data come from a generator seeded by
the name, so the corpus is reproducible byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optimizer_conformance.conformance.inputs import centered, generator, held, log_uniform, signs, spread

Shapes = tuple[tuple[str, tuple[int, ...]], ...]
TWO_VARIABLES: Shapes = (("kernel", (3, 4)), ("bias", (4,)))
ONE_SMALL: Shapes = (("w", (3,)),)
MANY_SHAPES: Shapes = (("scale", ()), ("kernel", (2, 3, 2)), ("bias", (7,)), ("embedding", (1, 5)))

# Gradient magnitudes as binary exponents, whose square stays finite in every format (float16 tops out at
# 65504: |g| < 2**7).
SAFE_MAGNITUDE = {"float16": (-10, 6), "bfloat16": (-13, 3), "float32": (-13, 3), "float64": (-13, 3)}


def schedule(class_name: str, **config: Any) -> dict[str, Any]:
    return {"module": "keras.optimizers.schedules", "class_name": class_name, "config": config,
            "registered_name": None}


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    algorithm: str
    config: dict[str, Any]
    input_dtype: str = "float32"
    data: str = "normal"
    steps: int = 12
    shapes: Shapes = TWO_VARIABLES
    exclude: dict[str, Any] = field(default_factory=dict)
    finalize: bool = False
    none_every: int = 0

    @property
    def dialect(self) -> str:
        return "tf-legacy" if self.algorithm == "nadam-legacy" else "keras3"

    def inputs(self) -> tuple[list[tuple[str, np.ndarray]], list[list[np.ndarray | None]]]:
        """Initial variables and gradients, exactly representable in ``input_dtype``."""
        theta, grads = DATA[self.data](generator(self.name), self)
        variables = [(name, held(t, self.input_dtype)) for (name, _), t in zip(self.shapes, theta)]
        gradients = [[held(g, self.input_dtype) for g in step] for step in grads]
        if self.none_every:
            for k in range(1, len(gradients), self.none_every):
                gradients[k][-1] = None
        return variables, gradients


def _normal(rng, e: Entry):
    low, high = SAFE_MAGNITUDE[e.input_dtype]
    theta = [centered(rng, s, 1) for _, s in e.shapes]
    grads = [[spread(rng, s, low, high) for _, s in e.shapes] for _ in range(e.steps)]
    return theta, grads


def _shrinking(rng, e: Entry):
    theta, grads = _normal(rng, e)
    return theta, [[np.ldexp(g, 5 if k == 1 else -4) for g in step] for k, step in enumerate(grads)]


def _zeros(rng, e: Entry):
    theta, grads = _normal(rng, e)
    return theta, [[np.zeros_like(g) if k % 3 != 1 else g for g in step] for k, step in enumerate(grads)]


def _magnitudes(rng, e: Entry):
    """Variables over 2**-10 to 2**10 (6 decades), gradients over 2**-100 to 2**50 (10**-30 to 10**15)."""
    theta = [centered(rng, s) * log_uniform(rng, s, -10, 10) for _, s in e.shapes]
    grads = [[signs(rng, s) * log_uniform(rng, s, -100, 50) for _, s in e.shapes] for _ in range(e.steps)]
    return theta, grads


# Binary exponents of the subnormal range of each input format (where a gradient loses precision).
SUBNORMAL = {"float32": (-149, -126), "float64": (-1074, -1022), "float16": (-24, -16), "bfloat16": (-149, -126)}


def _subnormal(rng, e: Entry):
    low, high = SUBNORMAL[e.input_dtype]
    theta = [centered(rng, s) for _, s in e.shapes]
    grads = [[signs(rng, s) * log_uniform(rng, s, low, high) for _, s in e.shapes] for _ in range(e.steps)]
    return theta, grads


def _crossing(rng, e: Entry):
    theta = [centered(rng, s, -6) for _, s in e.shapes]
    direction = [signs(rng, s) for _, s in e.shapes]
    grads = [[d * (1.0 + centered(rng, d.shape, -4)) for d in direction] for _ in range(e.steps)]
    return theta, grads


DATA: dict[str, Callable] = {
    "normal": _normal,
    "shrinking": _shrinking,
    "zeros": _zeros,
    "magnitudes": _magnitudes,
    "subnormal": _subnormal,
    "crossing": _crossing,
}

LR = 0.01

CORPUS: tuple[Entry, ...] = (
    # -- each rule, float32 inputs --------------------------------------------------------------------
    Entry("adam-basic", "Keras 3 Adam, default betas and epsilon", "adam", {"learning_rate": LR}),
    Entry("adam-defaults", "Keras 3 Adam with every default (learning rate 0.001)", "adam", {}),
    Entry("adam-amsgrad-shrinking-gradients", "AMSGrad after a gradient spike: velocity_hat keeps the max",
          "adam", {"learning_rate": LR, "amsgrad": True}, data="shrinking"),
    Entry("adam-large-epsilon", "epsilon 0.1 makes its placement (epsilon-hat, outside the root) visible",
          "adam", {"learning_rate": 0.1, "epsilon": 0.1}),
    Entry("adamw-basic", "Keras 3 AdamW, default weight decay 0.004", "adamw", {"learning_rate": LR}),
    Entry("adamw-large-weight-decay", "weight decay 0.5 at learning rate 0.1: decay scaled by the learning rate",
          "adamw", {"learning_rate": 0.1, "weight_decay": 0.5}),
    Entry("nadam-basic", "Keras 3 Nadam: momentum schedule 0.96^t and the u_product state", "nadam",
          {"learning_rate": LR}),
    Entry("nadam-custom-betas", "Nadam with beta_1 0.5, beta_2 0.67, epsilon 1e-5 (Keras's golden test)", "nadam",
          {"learning_rate": 0.5, "beta_1": 0.5, "beta_2": 0.67, "epsilon": 1e-5}),
    Entry("nadam-legacy-basic", "TF 2.0 / tf_keras legacy Nadam: schedule 0.96^(0.004 t)", "nadam-legacy",
          {"learning_rate": LR}),
    # -- each dtype ----------------------------------------------------------------------------------
    Entry("adam-float64", "Adam on float64 inputs", "adam", {"learning_rate": LR}, input_dtype="float64"),
    Entry("adam-float16", "Adam on float16 inputs (epsilon 1e-7 is subnormal in float16)", "adam",
          {"learning_rate": LR}, input_dtype="float16"),
    Entry("adam-bfloat16", "Adam on bfloat16 inputs (beta_2 0.999 rounds to 1 in bfloat16)", "adam",
          {"learning_rate": LR}, input_dtype="bfloat16"),
    Entry("adam-bfloat16-representable-betas", "Adam on bfloat16 with betas bfloat16 can hold (0.875, 0.984375)",
          "adam", {"learning_rate": 0.015625, "beta_1": 0.875, "beta_2": 0.984375, "epsilon": 0.001},
          input_dtype="bfloat16"),
    Entry("nadam-float16", "Nadam on float16 inputs", "nadam", {"learning_rate": LR}, input_dtype="float16"),
    Entry("adamw-float16", "AdamW on float16 inputs", "adamw", {"learning_rate": LR, "weight_decay": 0.1},
          input_dtype="float16"),
    Entry("nadam-legacy-float64", "legacy Nadam on float64 inputs (hyperparameters held in float32)",
          "nadam-legacy", {"learning_rate": LR}, input_dtype="float64"),
    # -- pipeline features, alone -----------------------------------------------------------------------
    Entry("adam-loss-scale", "loss_scale_factor 1024: gradients are divided by it", "adam",
          {"learning_rate": LR, "loss_scale_factor": 1024.0}),
    Entry("adam-accumulation-3", "gradient_accumulation_steps 3: mean of 3 micro-gradients, iterations floor-divided",
          "adam", {"learning_rate": LR, "gradient_accumulation_steps": 3}),
    Entry("adam-clipnorm", "clipnorm 0.5 per tensor", "adam", {"learning_rate": LR, "clipnorm": 0.5}),
    Entry("adam-global-clipnorm", "global_clipnorm 1.0 over all tensors", "adam",
          {"learning_rate": LR, "global_clipnorm": 1.0}),
    Entry("adam-clipvalue", "clipvalue 0.05", "adam", {"learning_rate": LR, "clipvalue": 0.05}),
    Entry("adam-weight-decay-excluded-by-name", "weight decay on Adam, bias excluded by a name pattern", "adam",
          {"learning_rate": LR, "weight_decay": 0.2}, exclude={"var_names": ["bia"]}),
    Entry("adamw-weight-decay-excluded-by-variable", "AdamW, the kernel excluded by variable", "adamw",
          {"learning_rate": LR, "weight_decay": 0.2}, exclude={"var_list": [0]}),
    Entry("adam-ema", "EMA momentum 0.9: the first step copies the weights", "adam",
          {"learning_rate": LR, "use_ema": True, "ema_momentum": 0.9}),
    Entry("adam-ema-overwrite-finalize", "EMA overwriting every 4 steps, then finalize_variable_values", "adam",
          {"learning_rate": LR, "use_ema": True, "ema_overwrite_frequency": 4}, finalize=True),
    Entry("adam-none-gradients", "a None gradient every other step for the bias", "adam", {"learning_rate": LR},
          none_every=2),
    Entry("adam-exponential-decay", "ExponentialDecay", "adam",
          {"learning_rate": schedule("ExponentialDecay", initial_learning_rate=LR, decay_steps=3, decay_rate=0.5)}),
    Entry("adam-exponential-decay-staircase", "ExponentialDecay with staircase", "adam",
          {"learning_rate": schedule("ExponentialDecay", initial_learning_rate=LR, decay_steps=3, decay_rate=0.5,
                                     staircase=True)}),
    Entry("adam-piecewise-constant", "PiecewiseConstantDecay", "adam",
          {"learning_rate": schedule("PiecewiseConstantDecay", boundaries=[3, 7], values=[0.01, 0.005, 0.001])}),
    Entry("adam-polynomial-decay", "PolynomialDecay, power 2, cycling", "adam",
          {"learning_rate": schedule("PolynomialDecay", initial_learning_rate=LR, decay_steps=4,
                                     end_learning_rate=0.001, power=2.0, cycle=True)}),
    Entry("adam-inverse-time-decay", "InverseTimeDecay", "adam",
          {"learning_rate": schedule("InverseTimeDecay", initial_learning_rate=LR, decay_steps=2, decay_rate=0.5)}),
    Entry("adam-cosine-decay-warmup", "CosineDecay with linear warmup and alpha", "adam",
          {"learning_rate": schedule("CosineDecay", initial_learning_rate=0.001, decay_steps=6, alpha=0.1,
                                     warmup_target=0.02, warmup_steps=3)}),
    Entry("adam-cosine-decay-restarts", "CosineDecayRestarts, t_mul 2, m_mul 0.5", "adam",
          {"learning_rate": schedule("CosineDecayRestarts", initial_learning_rate=LR, first_decay_steps=2,
                                     m_mul=0.5)}),
    # -- combinations that interact --------------------------------------------------------------------
    Entry("adam-accumulation-ema-schedule", "accumulation 3 with EMA (blended every micro-step) and a schedule "
          "fed the raw counter", "adam",
          {"learning_rate": schedule("ExponentialDecay", initial_learning_rate=LR, decay_steps=2, decay_rate=0.7),
           "gradient_accumulation_steps": 3, "use_ema": True, "ema_momentum": 0.8}, steps=15),
    Entry("adamw-weight-decay-exclusion-schedule", "AdamW decay with a cosine schedule, bias excluded", "adamw",
          {"learning_rate": schedule("CosineDecay", initial_learning_rate=0.05, decay_steps=10),
           "weight_decay": 0.3}, exclude={"var_names": ["bias"]}),
    Entry("adam-clipnorm-loss-scale", "clipnorm after loss-scale unscaling", "adam",
          {"learning_rate": LR, "clipnorm": 0.5, "loss_scale_factor": 128.0}),
    Entry("nadam-accumulation-global-clipnorm", "Nadam: global clipping of the averaged gradient, u_product once "
          "per real update", "nadam", {"learning_rate": LR, "gradient_accumulation_steps": 2,
                                       "global_clipnorm": 0.3}, steps=14),
    Entry("adamw-amsgrad-ema-clipvalue", "AdamW with amsgrad, EMA and clipvalue on shrinking gradients", "adamw",
          {"learning_rate": LR, "amsgrad": True, "use_ema": True, "clipvalue": 1.0}, data="shrinking"),
    # -- hard data -------------------------------------------------------------------------------------
    Entry("adam-zero-gradients", "zero gradients on two steps out of three", "adam", {"learning_rate": LR},
          data="zeros"),
    Entry("nadam-zero-gradients", "Nadam with zero gradients on two steps out of three", "nadam",
          {"learning_rate": LR}, data="zeros"),
    Entry("adam-gradients-over-45-decades", "gradients from 1e-30 to 1e15, parameters over 6 decades", "adam",
          {"learning_rate": LR}, data="magnitudes"),
    Entry("adam-subnormal-gradients", "float32 subnormal gradients (2**-149 to 2**-126)", "adam", {"learning_rate": LR},
          data="subnormal"),
    Entry("adam-float16-subnormal-gradients", "float16 subnormal gradients", "adam", {"learning_rate": LR},
          input_dtype="float16", data="subnormal"),
    Entry("adam-parameters-crossing-zero", "parameters within 0.02 of zero pushed across it", "adam",
          {"learning_rate": LR}, data="crossing"),
    Entry("adamw-parameters-crossing-zero", "AdamW decay while parameters cross zero", "adamw",
          {"learning_rate": LR, "weight_decay": 0.5}, data="crossing"),
    Entry("adam-many-shapes", "a scalar, a 3-d tensor, a vector and a row, one optimizer", "adam",
          {"learning_rate": LR}, shapes=MANY_SHAPES),
    Entry("nadam-many-shapes", "Nadam over variables of four shapes", "nadam", {"learning_rate": LR},
          shapes=MANY_SHAPES),
    # -- long runs: step counts past float16 (2048) and bfloat16 (256) integer precision ----------------
    Entry("adam-long-run-float16", "2100 steps in float16: t is no longer exact past 2048", "adam",
          {"learning_rate": 0.001}, input_dtype="float16", steps=2100, shapes=ONE_SMALL),
    Entry("adam-long-run-bfloat16", "1200 steps in bfloat16: t is no longer exact past 256", "adam",
          {"learning_rate": 0.001, "beta_2": 0.984375}, input_dtype="bfloat16", steps=1200, shapes=ONE_SMALL),
    Entry("nadam-long-run-float32", "1500 steps of Nadam in float32: the schedule settles to beta_1",
          "nadam", {"learning_rate": 0.001}, steps=1500, shapes=ONE_SMALL),
    Entry("nadam-legacy-long-run", "1500 steps of the legacy schedule, which barely moves", "nadam-legacy",
          {"learning_rate": 0.001}, steps=1500, shapes=ONE_SMALL),
)

BY_NAME: dict[str, Entry] = {e.name: e for e in CORPUS}
assert len(BY_NAME) == len(CORPUS), "duplicate fixture names"
