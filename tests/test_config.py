"""Configurations in Keras's get_config() form, rejected as Keras rejects them."""

import pytest
from optimizer_conformance.reference import ReferenceOptimizer, get_config, normalize


def test_defaults_match_keras():
    assert normalize("adam")["epsilon"] == 1e-7
    assert normalize("adamw")["weight_decay"] == 0.004
    assert normalize("nadam")["beta_1"] == 0.9
    assert normalize("nadam-legacy")["decay"] == 0.004


@pytest.mark.parametrize(
    "algorithm, config, message",
    [
        ("adam", {"clipnorm": 1.0, "clipvalue": 1.0}, "Only one of"),
        ("adam", {"gradient_accumulation_steps": 1}, "gradient_accumulation_steps"),
        ("adam", {"use_ema": True, "ema_momentum": 1.5}, "ema_momentum"),
        ("adam", {"use_ema": True, "ema_overwrite_frequency": 0.5}, "ema_overwrite_frequency"),
        ("adamw", {"weight_decay": None}, "weight_decay"),
        ("adam", {"momentum": 0.9}, "not recognized"),
        ("adam", {"learning_rate": 1}, "learning_rate"),
        ("adam", {"learning_rate": {"class_name": "Nope", "config": {}}}, "class_name"),
        ("adam", {"learning_rate": {"class_name": "ExponentialDecay",
                                    "config": {"initial_learning_rate": 0.1, "decay_steps": 0, "decay_rate": 0.5}}},
         "decay_steps"),
        ("sgd", {}, "algorithm must be one of"),
        ("nadam-legacy", {"use_ema": True}, "not recognized"),
    ],
)
def test_invalid_configurations_raise_value_error_naming_the_argument(algorithm, config, message):
    with pytest.raises(ValueError, match=message):
        ReferenceOptimizer(algorithm, config)


def test_decay_argument_is_ignored_like_keras():
    assert "decay" not in normalize("adam", {"decay": 0.1})


def test_schedule_round_trips_through_get_config():
    lr = {"module": "keras.optimizers.schedules", "class_name": "CosineDecay",
          "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.0, "name": "CosineDecay",
                     "warmup_target": None, "warmup_steps": 0}, "registered_name": None}
    config = get_config("adam", normalize("adam", {"learning_rate": lr}))
    assert config["learning_rate"] == lr


def test_bad_dtype_and_precision_are_named():
    with pytest.raises(ValueError, match="dtype must be one of"):
        ReferenceOptimizer("adam", dtype="float8")
    with pytest.raises(ValueError, match="precision"):
        ReferenceOptimizer("adam", precision=32)


def test_bad_inputs_are_named():
    opt = ReferenceOptimizer("adam")
    opt.build({"w": [1.0, 2.0]})
    with pytest.raises(ValueError, match="shape"):
        opt.apply([[1.0]])
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply([None])
