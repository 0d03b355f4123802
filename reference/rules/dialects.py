"""The library families whose rules the oracle defines, each with what its base optimizer class has."""

from __future__ import annotations

from optimizer_conformance.reference.rules.descriptor import Dialect

KERAS3 = Dialect(
    name="keras3",
    base_defaults={
        "learning_rate": 0.001,
        "weight_decay": None,
        "clipnorm": None,
        "global_clipnorm": None,
        "clipvalue": None,
        "use_ema": False,
        "ema_momentum": 0.99,
        "ema_overwrite_frequency": None,
        "loss_scale_factor": None,
        "gradient_accumulation_steps": None,
    },
    ignored=("decay",),  # keras.optimizers.Optimizer warns that it is no longer supported and drops it
    keras_slots=(("_model_variables_moving_average", "average", "use_ema"),
                 ("_accumulated_gradients", "gradient_accumulator", "gradient_accumulation_steps")),
)

# tf_keras.optimizers.legacy (OptimizerV2): clipping and a float learning rate, none of Keras 3's other pipeline
# parts; it forms its per-step scalars in the variable's dtype by definition.  (Its own loss-scale wrapper is not
# modelled.)
TF_LEGACY = Dialect(
    name="tf-legacy",
    base_defaults={"learning_rate": 0.001, "clipnorm": None, "global_clipnorm": None, "clipvalue": None},
    pipeline=frozenset({"clipping"}),
    coefficients_in_variable_dtype=True,
)



def _torch_names(config: dict) -> dict:
    """Keras's names in torch.optim's: ``learning_rate`` is ``lr``, ``epsilon`` ``eps``, ``beta_1`` and ``beta_2``
    the pair ``betas``."""
    out = {}
    for key, value in config.items():
        if key in ("beta_1", "beta_2"):
            betas = out.setdefault("betas", [config.get("beta_1", 0.9), config.get("beta_2", 0.999)])
            betas[key == "beta_2"] = value
        else:
            out[{"learning_rate": "lr", "epsilon": "eps"}.get(key, key)] = value
    return out


def _torch_validate(config: dict) -> None:
    """torch.optim's constructor checks (``Invalid learning rate: -1.0``), and what JSON cannot tell apart."""
    from optimizer_conformance.reference.rules.descriptor import require_number

    for key in ("lr", "eps", "weight_decay"):
        require_number(config, key)
        if config[key] < 0:
            raise ValueError(f"Invalid {key}: {config[key]!r} (torch.optim takes a number >= 0)")
    config["lr"] = float(config["lr"])
    betas = config["betas"]
    if not isinstance(betas, (list, tuple)) or len(betas) != 2:
        raise ValueError(f"`betas` must be a pair of numbers in [0, 1); got {betas!r}")
    for i, beta in enumerate(betas):
        require_number({"betas": beta}, "betas")
        if not 0 <= beta < 1:
            raise ValueError(f"Invalid beta parameter at index {i}: {beta!r} (torch.optim takes [0, 1))")
    config["betas"] = [float(b) for b in betas]
    for key in ("amsgrad", "maximize", "decoupled_weight_decay"):
        if key in config and not isinstance(config[key], bool):
            raise ValueError(f"`{key}` must be a bool; got {config[key]!r}")


def torch_in_keras(config: dict, rule: str, *, decoupled: bool) -> tuple[str, dict] | str:
    """A torch.optim configuration (every argument given) as Keras's ``rule`` takes it, or why no Keras optimizer
    computes it: ``maximize``, and an L2 ``weight_decay`` (added to the gradient; Keras's decay is decoupled)."""
    if config["maximize"]:
        return "maximize=True ascends the gradient: Keras's optimizers have no maximize"
    decay = config["weight_decay"]
    if decay and not decoupled:
        return (f"weight_decay={decay!r} is torch's L2 penalty added to the gradient (decoupled_weight_decay=False): "
                "Keras's weight decay is decoupled")
    keras = {"learning_rate": config["lr"], "beta_1": config["betas"][0], "beta_2": config["betas"][1],
             "epsilon": config["eps"], "weight_decay": decay or None}
    return rule, keras


# torch.optim: the rule and its own weight decay, nothing of Keras's pipeline but missing gradients (a parameter
# whose .grad is None is skipped whole, its step count included); a float learning rate is a Python float, and the
# per-step scalars are Python floats (double), each rounded once where it meets a tensor.
TORCH = Dialect(
    name="torch",
    base_defaults={"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "maximize": False},
    pipeline=frozenset({"none-gradients", "non-finite"}),
    learning_rate_key="lr",
    own_names=_torch_names,
    validate=_torch_validate,
    step_per_variable=True,
    keras_api=False,
    keras_slot_names={"exp_avg": "momentum", "exp_avg_sq": "velocity", "max_exp_avg_sq": "velocity_hat"},
    scalar_per_variable="mu_product",
)



def _optax_names(config: dict) -> dict:
    """Keras's names in optax's: ``beta_1`` is ``b1``, ``beta_2`` ``b2``, ``epsilon`` ``eps``."""
    names = {"beta_1": "b1", "beta_2": "b2", "epsilon": "eps"}
    return {names.get(key, key): value for key, value in config.items()}


def optax_in_keras(config: dict, rule: str) -> tuple[str, dict] | str:
    """An optax configuration (every argument given) as Keras's ``rule`` takes it, or why no Keras optimizer computes
    it: ``eps_root`` (inside the root) and ``nesterov``."""
    if config["eps_root"]:
        return f"eps_root={config['eps_root']!r} is added inside the square root: Keras's Adam has no such argument"
    if config["nesterov"]:
        return "nesterov=True looks ahead with b₁·m̂ₖ₊₁: Keras's Adam has no such option (its Nadam is Dozat's schedule)"
    keras = {"learning_rate": config["learning_rate"], "beta_1": config["b1"], "beta_2": config["b2"],
             "epsilon": config["eps"]}
    if "weight_decay" in config:
        keras["weight_decay"] = config["weight_decay"]
    return rule, keras


def _optax_validate(config: dict) -> None:
    """optax checks nothing itself: what the oracle needs to mean something (finite numbers, a bool)."""
    from optimizer_conformance.reference.rules.descriptor import require_number

    for key in ("learning_rate", "b1", "b2", "eps", "eps_root", "weight_decay"):
        if key in config:
            require_number(config, key)
    config["learning_rate"] = float(config["learning_rate"])
    if not isinstance(config.get("nesterov", False), bool):
        raise ValueError(f"`nesterov` must be a bool; got {config['nesterov']!r}")


# optax: a chain of gradient transformations (scale_by_adam, add_decayed_weights, scale_by_learning_rate) and
# apply_updates; no missing gradient (a pytree leaf is there or not), nothing of Keras's pipeline, one count.
OPTAX = Dialect(
    name="optax",
    base_defaults={"learning_rate": 0.001, "b1": 0.9, "b2": 0.999, "eps": 1e-8, "eps_root": 0.0},
    pipeline=frozenset({"non-finite"}),
    own_names=_optax_names,
    validate=_optax_validate,
    keras_api=False,
    keras_slot_names={"mu": "momentum", "nu": "velocity"},
)

DIALECTS = (KERAS3, TF_LEGACY, TORCH, OPTAX)
