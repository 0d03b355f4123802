"""One settings type for the command line, the pytest plugin and the ``optconf`` fixture."""

import pytest
from optimizer_conformance.conformance.settings import CHECK_FAMILIES, DEFAULT_TIMEOUT, Settings


def test_defaults_are_written_once():
    settings = Settings.parse({"candidate": "keras"})
    assert settings == Settings("keras")
    assert (settings.profile, settings.checks, settings.compile, settings.timeout, settings.strict) == (
        "ci", CHECK_FAMILIES, "eager", DEFAULT_TIMEOUT, False)


def test_raw_values_from_any_entry_point_parse_alike():
    from_text = Settings.parse({"candidate": "c", "algorithms": "adam,lamb", "dtypes": "float64", "strict": "true",
                                "timeout": "30", "checks": "pipeline,api", "dialect": "keras3"})
    from_marker = Settings.parse({"candidate": "c", "algorithms": ["adam", "lamb"], "dtypes": ["float64"],
                                  "strict": True, "timeout": 30, "checks": ["pipeline", "api"], "dialect": "keras3"})
    assert from_text == from_marker
    assert from_text.algorithms == ["adam", "lamb"] and from_text.timeout == 30.0


@pytest.mark.parametrize("key, value, message", [
    ("algorithms", "sgd", "optconf_algorithms: 'sgd' is not accepted; accepted: adam, adamw"),
    ("dtypes", "float8", "optconf_dtypes: 'float8' is not accepted"),
    ("dialect", "keras2", "optconf_dialect: 'keras2' is not accepted; accepted: keras3, tf-legacy"),
    ("backend", "theano", "optconf_backend: 'theano' is not accepted; accepted: tensorflow, jax, torch"),
    ("profile", "forever", "optconf_profile: 'forever' is not accepted; accepted: quick, ci, deep"),
    ("checks", "vibes", "optconf_checks: 'vibes' is not accepted"),
    ("compile", "warp", "optconf_compile: 'warp' is not accepted; accepted: eager, function, jit"),
    ("timeout", "soon", "optconf_timeout must be a positive number of seconds; got 'soon'"),
    ("floatx", "float16", "optconf_floatx: 'float16' is not accepted; accepted: float32, float64"),
    ("strict", "yes", "optconf_strict: 'yes' is not accepted; accepted: true, false"),
    ("lacks", "ema", "optconf_lacks: 'ema' is not accepted; accepted: use_ema, ema_overwrite_frequency"),
])
def test_a_bad_value_is_one_line_naming_the_setting_as_the_entry_point_spells_it(key, value, message):
    with pytest.raises(ValueError) as error:
        Settings.parse({"candidate": "c", key: value}, lambda k: f"optconf_{k}")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_report_block_is_the_same_from_every_entry_point():
    block = Settings.parse({"candidate": "c", "strict": True}).report_block(["adam"], ["float32"], "float32", True)
    assert block == {"profile": "ci", "algorithms": ["adam"], "dtypes": ["float32"], "checks": list(CHECK_FAMILIES),
                     "dialect": None, "backend": None, "compile": "eager", "timeout": DEFAULT_TIMEOUT, "strict": True,
                     "floatx": "float32", "lacks": [], "fixtures": [], "interrupted": True}
