"""Candidates that misbehave, each in one way, around an honest core (the bundled implementation's adapter).

``optconf check tests.candidates.misbehaving:<Name>`` must end every one of them with the table and the JSON,
and with the verdict each class states in ``expected``: "fail" (exit 1) or "pass" (exit 0).
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

import numpy as np
from optimizer_conformance.fast_optimizers.conformance import NumpyAdapter


class Honest(NumpyAdapter):
    algorithms = ("adam",)
    dtypes = ("float32",)
    expected = "pass"
    message = ""


def _first(state: dict, prefix: str) -> str:
    return next(k for k in state if k.startswith(prefix))


class HangInStart(Honest):
    expected, message = "fail", "no answer from start() within"

    def start(self, *args):
        time.sleep(3600)


class HangInApply(Honest):
    expected, message = "fail", "no answer from apply() at step 2 within"

    def apply(self, grads):
        if self.optimizer.iterations >= 1:
            time.sleep(3600)
        super().apply(grads)


class Segfault(Honest):
    expected, message = "fail", "killed by signal SIGSEGV"

    def apply(self, grads):
        ctypes.string_at(0)


class SysExit(Honest):
    expected, message = "fail", "the candidate raised SystemExit: 3"

    def apply(self, grads):
        sys.exit(3)


class OsExit(Honest):
    expected, message = "fail", "exited with status 7"

    def apply(self, grads):
        sys.stderr.write("about to leave\n")
        os._exit(7)


class Raises(Honest):
    expected, message = "fail", "the candidate raised RuntimeError: a bug in the port"

    def apply(self, grads):
        raise RuntimeError("a bug in the port")


class RaisesKeyboardInterrupt(Honest):
    expected, message = "fail", "the candidate raised KeyboardInterrupt"

    def apply(self, grads):
        raise KeyboardInterrupt


class JunkOnStdout(Honest):
    """Prints to stdout through Python and through the file descriptor: the protocol must not care."""

    expected = "pass"

    def apply(self, grads):
        print("junk {not json")
        os.write(1, b"more junk\n")
        super().apply(grads)


class EmptyState(Honest):
    expected, message = "fail", "the candidate reported nothing"

    def state(self):
        return {}


class MisspeltState(Honest):
    expected, message = "fail", "did you mean 'variables/kernel'?"

    def state(self):
        return {k.replace("variables/", "variable/"): v for k, v in super().state().items()}


class OnlyIterations(Honest):
    expected, message = "fail", "every variable must be reported"

    def apply(self, grads):
        self.t = getattr(self, "t", 0) + 1

    def state(self):
        return {"iterations": self.t}


class PartialState(Honest):
    expected, message = "fail", "variables/bias is missing"

    def state(self):
        return {k: v for k, v in super().state().items() if not k.endswith("/bias")}


class WrongElementCount(Honest):
    expected, message = "fail", "elements, expected 12"

    def state(self):
        state = super().state()
        name = _first(state, "variables/")
        state[name] = np.asarray(state[name]).reshape(-1)[:-1]
        return state


class NaNState(Honest):
    expected, message = "fail", "candidate  nan"
    filled, value = "variables/", np.nan

    def state(self):
        state = super().state()
        name = _first(state, self.filled)
        state[name] = np.full_like(np.asarray(state[name]), self.value)
        return state


class InfState(NaNState):
    expected, message = "fail", "candidate  inf"
    filled, value = "momentum/", np.inf


class ExtraQuantity(Honest):
    expected, message = "fail", "'grad_norm', which the oracle does not know"

    def state(self):
        return {**super().state(), "grad_norm": np.float32(1.0)}


class NotNumbers(Honest):
    expected, message = "fail", "is not an array of numbers"

    def state(self):
        state = super().state()
        return {**state, _first(state, "variables/"): np.array(["a"] * 12)}


class HugeAllocation(Honest):
    expected, message = "fail", "MemoryError"

    def apply(self, grads):
        np.ones(10**13)


class ComputesNothing(Honest):
    """Reports its variables, correctly named, and never changes them."""

    expected, message = "fail", "FAIL adam pipeline/basic"

    def apply(self, grads):
        pass


MISBEHAVING = [HangInStart, HangInApply, Segfault, SysExit, OsExit, Raises, RaisesKeyboardInterrupt, JunkOnStdout,
               EmptyState, MisspeltState, OnlyIterations, PartialState, WrongElementCount, NaNState, InfState,
               ExtraQuantity, NotNumbers, HugeAllocation, ComputesNothing]


class TwoBugs(Honest):
    """Raises on amsgrad, and leaves the variables unchanged otherwise: hypothesis finds two distinct failures."""

    expected, message = "fail", "also found:"

    def apply(self, grads):
        if self.optimizer.amsgrad:
            raise ValueError("amsgrad is not ported")


MISBEHAVING.append(TwoBugs)
