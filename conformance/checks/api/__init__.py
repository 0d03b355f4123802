"""API and configuration compatibility: is the candidate a drop-in replacement for the Keras optimizer?

Numbers are half of "this port is right"; the other half is that models, checkpoints and configs move
between the port and Keras.  These checks run inside the candidate's worker process next to real Keras
on the same backend, which is the reference for every API fact (nothing here is a recorded copy of
Keras's behaviour, so a new Keras release is checked against itself).  Numeric outcomes (a resumed
trajectory, ``stateless_apply``, a stored state) are judged against the oracle within budget, as
everywhere else.  One module per area, over one bridge to Keras (:mod:`.bridge`):

:mod:`.config`     ``signature`` (parameter names, order, kinds, defaults; the ``name`` rule: ``None`` gives
                   the snake-cased class name made unique), ``get-config`` (the same keys, values and types
                   as Keras for a table of argument sets), ``from-config``, ``config-exchange`` (a Keras
                   config loads into the candidate and the reverse, through ``keras.optimizers.deserialize``);
:mod:`.arguments`  ``invalid-arguments``: every argument set Keras rejects is rejected with the same
                   exception type, every one Keras trains with is accepted (a table, then hypothesis);
:mod:`.state`      ``state-layout`` (``variables`` count and order, ``iterations``, the
                   ``save_own_variables`` store, each entry judged against the oracle), ``resume`` (a state
                   saved by Keras mid-training continues in the candidate on the oracle's trajectory, and the
                   reverse), ``stateless-apply``, ``finalize-variable-values``;
:mod:`.behaviour`  ``exclude-from-weight-decay`` and ``learning-rate-setter``: Keras's rules;
:mod:`.loss_scale` ``loss-scale-optimizer``: the candidate's ``LossScaleOptimizer`` as a drop-in for Keras's
                   (constructor, configuration, refused arguments, learning rate, state layout, resume).

Learning rates compare in Keras's ``floatx``: Keras holds a float learning rate in a ``floatx``
variable, so ``get_config()`` and the setter read back its rounding.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable

from optimizer_conformance.conformance.checks.api.arguments import check_invalid_arguments
from optimizer_conformance.conformance.checks.api.behaviour import (
    check_exclude_from_weight_decay,
    check_learning_rate_setter,
)
from optimizer_conformance.conformance.checks.api.bridge import (
    JUDGED_BY,
    KERAS_CLASSES,
    Subject,
    api_outcome,
    keras_subject,
)
from optimizer_conformance.conformance.checks.api.config import (
    check_config_exchange,
    check_from_config,
    check_get_config,
    check_signature,
)
from optimizer_conformance.conformance.checks.api.loss_scale import check_loss_scale_optimizer
from optimizer_conformance.conformance.checks.api.state import (
    check_finalize_variable_values,
    check_resume,
    check_state_layout,
    check_stateless_apply,
)
from optimizer_conformance.conformance.checks.deviations import Deviation
from optimizer_conformance.conformance.model import Outcome

CHECK_FUNCTIONS: dict[str, Callable[..., Outcome]] = {
    "signature": check_signature,
    "get-config": check_get_config,
    "from-config": check_from_config,
    "config-exchange": check_config_exchange,
    "invalid-arguments": check_invalid_arguments,
    "state-layout": check_state_layout,
    "resume": check_resume,
    "stateless-apply": check_stateless_apply,
    "exclude-from-weight-decay": check_exclude_from_weight_decay,
    "finalize-variable-values": check_finalize_variable_values,
    "learning-rate-setter": check_learning_rate_setter,
    "loss-scale-optimizer": check_loss_scale_optimizer,
}
CHECKS = tuple(CHECK_FUNCTIONS)
# The problems of one check carried in a report (the first ones say what differs; the rest repeat it).
MAX_PROBLEMS = 20


def run_api_checks(cand: Subject | None, algorithm: str, not_applicable: str | None = None,
                   examples: int = 60, checks: tuple[str, ...] = CHECKS,
                   on_check: Callable[[str], None] = lambda name: None,
                   upstream: tuple[Deviation, ...] = ()) -> list[Outcome]:
    """The API checks of one algorithm; a check that raises is reported as a problem, not a crash.

    ``on_check(name)`` is called as each check starts (the worker tells the host, whose deadline restarts).
    A check that fails is run again against the deviated oracle of each catalogued upstream bug the candidate's
    library has (``upstream``): where one passes, the failure is that bug (the outcome keeps what it found).
    """
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError(f"API checks are {', '.join(CHECKS)}; got {unknown}")
    if algorithm not in KERAS_CLASSES:
        not_applicable = not_applicable or "the API checks cover Keras 3's Adam, AdamW and Nadam"
    if cand is None or not_applicable:
        outcomes = [api_outcome(name, algorithm) for name in checks]
        for o in outcomes:
            o.not_applicable = not_applicable or "no Keras-API class"
        return outcomes
    keras_ = keras_subject(algorithm)
    out = []
    for name in checks:
        on_check(name)
        started = time.perf_counter()
        kwargs = {"examples": examples} if name == "invalid-arguments" else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = CHECK_FUNCTIONS[name](keras_, cand, algorithm, **kwargs)
        except Exception as error:  # noqa: BLE001 - a check that cannot run is a failed check
            result = api_outcome(name, algorithm)
            result.problems = [f"the check could not run: {type(error).__name__}: {error}",
                               traceback.format_exc()[-1500:]]
        if not result.passed and result.not_applicable is None:
            _explain(result, upstream, lambda: CHECK_FUNCTIONS[name](keras_, cand, algorithm, **kwargs))
        result.problems = result.problems[:MAX_PROBLEMS]
        result.duration = time.perf_counter() - started
        out.append(result)
    return out


def _explain(result: Outcome, upstream: tuple[Deviation, ...], check: Callable[[], Outcome]) -> None:
    for bug in upstream:
        token = JUDGED_BY.set(bug)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                again = check()
        except Exception:  # noqa: BLE001 - no explanation
            continue
        finally:
            JUDGED_BY.reset(token)
        if again.passed:
            result.diagnosis = result.upstream = bug.id
            return
