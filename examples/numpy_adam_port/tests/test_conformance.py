"""The port's own tests: the plugin adds the conformance checks (see pyproject.toml); this one asks in code."""

import pytest


@pytest.mark.optconf(algorithms=["adam"], dtypes=["float32"], profile="quick", checks=["pipeline"])
def test_the_bare_rule_matches_keras(optconf):
    report = optconf("numpy_adam_port.conformance:Adapter")
    basic = [o for o in report.outcomes if o.check in ("pipeline/basic", "pipeline/large-hyperparameters",
                                                        "pipeline/amsgrad", "pipeline/none-gradients")]
    assert basic and all(o.passed for o in basic), report.text
