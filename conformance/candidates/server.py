"""The worker: one process that holds one candidate and runs trajectory specs on it.

Keras picks its backend once per process, and importing TensorFlow costs seconds, so the harness
starts a worker per candidate (``KERAS_BACKEND`` set) and talks to it in JSON lines over stdin and
stdout (large arrays beside them as raw bytes: :mod:`conformance.candidates.framing`): a candidate to load,
then trajectory specs and API requests, each answered with the candidate's states (or its error, or why the
worker's Keras itself rejects the spec); before each call into the candidate the worker announces it, so the
host's deadline restarts and a hang or crash is reported at that call.

The messages are built and read with :mod:`conformance.candidates.messages` on both sides.  Floats travel as
``float.hex`` strings, large arrays as packed float64 bytes.  Candidates: real Keras 3 (``keras.optimizers``), any
class or factory named by import path that follows the Keras optimizer API (Keras 3 subclasses,
``tf_keras.optimizers.legacy`` optimizers), and adapters (:mod:`conformance.candidates.protocol`); each
has its engine (:mod:`conformance.candidates.engines`).

Imports: the engines, the channel and the API checks.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from typing import BinaryIO

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from optimizer_conformance.conformance.candidates import framing, messages  # noqa: E402
from optimizer_conformance.conformance.candidates.channel import announce, open_channel, send  # noqa: E402
from optimizer_conformance.conformance.candidates.engines import Engine, make_engine  # noqa: E402
from optimizer_conformance.conformance.checks.api import CHECKS, run_api_checks  # noqa: E402
from optimizer_conformance.conformance.checks.upstream import affecting  # noqa: E402
from optimizer_conformance.conformance.model import Spec  # noqa: E402


def _api(engine: Engine, request: dict) -> list[dict]:
    checks = tuple(request.get("checks") or CHECKS)
    try:
        import keras  # noqa: F401 - the reference for every API fact
    except ImportError:
        outcomes = run_api_checks(None, request["algorithm"], "keras is not installed: it is the reference for the API",
                                  checks=checks)
    else:
        subject, not_applicable = engine.api_subject(request["algorithm"])
        outcomes = run_api_checks(subject, request["algorithm"], not_applicable, request.get("examples", 60), checks,
                                  on_check=lambda name: announce(f"api/{name}"), upstream=affecting(engine.describe()))
    return [o.to_json() for o in outcomes]


def _error_reply(error: BaseException) -> dict:
    # SystemExit and KeyboardInterrupt raised by the candidate are its results too: a Ctrl-C at the terminal
    # never reaches the worker, which runs in a process group of its own.
    return messages.failed(f"{type(error).__name__}: {error}", traceback.format_exc()[-3000:])


def _requests(stdin: BinaryIO) -> Iterator[dict]:
    """The host's messages (:mod:`framing`), each a JSON object."""
    while (frame := framing.read(stdin)) is not None:
        yield framing.parse(*frame)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    open_channel(stdout)
    requests = _requests(stdin)
    header = next(requests)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = make_engine(header[messages.CANDIDATE])
            description = engine.describe()
    except BaseException as error:  # noqa: BLE001 - reported to the harness as "cannot load"
        send(messages.failed(f"{type(error).__name__}: {error}"))
        return 2
    send(messages.ready(description))
    for request in requests:
        kind = messages.kind_of(request)
        if kind == messages.CANDIDATE:
            # Switching candidates in one process spares the framework's import (seconds for TensorFlow).
            try:
                engine = make_engine(request[messages.CANDIDATE])
                reply = messages.ready(engine.describe())
            except BaseException as error:  # noqa: BLE001
                reply = messages.failed(f"{type(error).__name__}: {error}")
            send(reply)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if kind == messages.API:
                    reply = messages.api_outcomes(_api(engine, request[messages.API]))
                else:
                    spec = Spec.from_json(request[messages.SPEC]).to_json()  # a malformed spec: one clear error
                    reason = engine.reference_rejects(spec)
                    reply = messages.not_applicable(reason) if reason else messages.states(engine.run(spec))
        except BaseException as error:  # noqa: BLE001 - a candidate's exception is a result, not a crash
            reply = _error_reply(error)
        send(reply)
    return 0


def _die_with_parent() -> None:
    """End this worker when the harness that started it is gone, even while the candidate hangs."""
    parent = os.getppid()
    try:  # Linux: the kernel delivers SIGKILL the moment the parent dies
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:
        os._exit(70)


def main() -> int:
    _die_with_parent()
    # Keep the protocol channel clean: anything the candidate prints goes to stderr.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return serve(sys.stdin.buffer, channel)


if __name__ == "__main__":
    code = main()
    # The harness has every answer: ending here spares the frameworks' teardown (seconds for torch and TensorFlow,
    # which the harness would wait for at every close).
    sys.stderr.flush()
    os._exit(code)
