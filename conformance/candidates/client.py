"""The harness's side of a candidate: a worker process per candidate, spoken to in JSON lines (:mod:`framing`).

``parse_candidate("keras", backend="jax")`` is real Keras 3 on JAX; ``parse_candidate("pkg.mod:Name")``
is a Keras-style class or factory, a ``tf_keras.optimizers.legacy`` optimizer, or an adapter
(:mod:`conformance.candidates.protocol`).  :class:`Worker` runs specs on it (the protocol:
:mod:`conformance.candidates.server`).

A spec of another library's rule (torch.optim's, optax's) that the candidate does not claim but whose Keras
equivalent it does is run as that Keras rule, its states brought back in the dialect's names
(:mod:`reference.rules.translation`): Keras in torch's dialect.

Imports: the data model, and the rules' translation between dialects.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from optimizer_conformance.conformance.candidates import framing, messages
from optimizer_conformance.conformance.model import CandidateLost, NotApplicable, RunError
from optimizer_conformance.conformance.settings import BACKENDS, COMPILE_MODES, DEFAULT_TIMEOUT
from optimizer_conformance.reference.rules import translation

__all__ = ["BACKENDS", "COMPILE_MODES", "DEFAULT_TIMEOUT", "Candidate", "CandidateError", "Worker", "parse_candidate",
           "start_workers"]
# The worker is this project's module under its own import root, so nothing in the current directory (first
# on the worker's path, so the candidate's own modules are found) can stand in for it.
WORKER = [sys.executable, "-m", "optimizer_conformance.conformance.candidates.server"]


class CandidateError(RuntimeError):
    """The candidate cannot be imported or constructed at all: exit status 2."""


@dataclass(frozen=True)
class Candidate:
    target: str | None  # None: real Keras
    backend: str
    compile: str = "eager"

    @property
    def label(self) -> str:
        what = "keras" if self.target is None else self.target
        mode = "" if self.compile == "eager" else f", {self.compile}"
        return f"{what} [{self.backend}{mode}]"

    def header(self) -> dict:
        return messages.load("keras" if self.target is None else "import", self.target, self.compile)


def jax_cache_environment() -> dict[str, str]:
    """JAX's persistent compilation cache for the worker, every compilation kept (not only those over a second).

    Keras's JAX backend compiles each primitive for each new shape and dtype, and retraces ``lax.cond`` branches on
    every eager call: measured on the 2-core machine, Adam's pipeline cases in float32 take 28.6 s cold without the
    cache, 22.2 s with it (identical computations found in the cache within the run) and 11.3 s on the next run.
    The cache holds compiled executables keyed by their content, so results are the same.  It lives in
    ``$XDG_CACHE_HOME/optimizer-conformance/jax`` (``~/.cache`` by default); ``JAX_COMPILATION_CACHE_DIR`` set by
    the user wins, and ``OPTCONF_JAX_CACHE=off`` turns it off."""
    turned_off = os.environ.get("OPTCONF_JAX_CACHE", "").lower() in ("off", "0", "no")
    if turned_off or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return {}
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return {"JAX_COMPILATION_CACHE_DIR": os.path.join(home, "optimizer-conformance", "jax"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def parse_candidate(text: str, backend: str | None = None, compile: str = "eager") -> Candidate:
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if compile not in COMPILE_MODES:
        raise ValueError(f"--compile must be one of {', '.join(COMPILE_MODES)}; got {compile!r}")
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if text == "keras":
        return Candidate(None, backend, compile)
    if ":" not in text and "." not in text:
        raise ValueError(f"candidate must be 'keras' or 'package.module:Name'; got {text!r}")
    return Candidate(text, backend, compile)


class Worker:
    """One running candidate, in a worker process of its own.

    Every call into the candidate has a deadline (``timeout`` seconds, counted from the worker's last sign of
    life: it announces each call it makes into the candidate).  A candidate that hangs, crashes the
    interpreter or exits is a :class:`RunError` naming the call, the step and the signal or exit status; the
    worker is then restarted on the next request, so the run goes on.  The worker runs in a process group of
    its own (a Ctrl-C meant for the harness does not reach the candidate) and is killed with the harness.
    """

    def __init__(self, candidate: Candidate, timeout: float = DEFAULT_TIMEOUT,
                 meanwhile: Callable[[], object] | None = None, *, handshake: bool = True) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds; got {timeout!r}")
        self.candidate = candidate
        self.timeout = timeout
        self.process: subprocess.Popen | None = None
        self.lost_in_a_row, self.last_loss = 0, ""  # requests in a row that hung or killed the worker
        # Where the time went, in seconds: starting workers and loading the candidate (the framework's import
        # included), and waiting for the candidate's answers beyond what the host did meanwhile.
        self.timing = {"startup": 0.0, "candidate": 0.0}
        self._waited = 0.0
        self.ended = False  # by end(): no request restarts it
        # ``meanwhile``: the host's own work done while the worker starts (the framework's import takes seconds).
        self._spawned_at = time.perf_counter()
        self._spawn()
        self.description: dict = self._handshake(meanwhile) if handshake else {}

    # -- the process --------------------------------------------------------------------------------------
    def _start(self, meanwhile: Callable[[], object] | None = None) -> dict:
        self._spawned_at = time.perf_counter()
        self._spawn()
        return self._handshake(meanwhile)

    def _handshake(self, meanwhile: Callable[[], object] | None = None) -> dict:
        """The spawned worker's answer to the candidate's loading: its description."""
        self._waited = 0.0
        try:
            return self._loaded(meanwhile)
        finally:
            self.timing["startup"] += time.perf_counter() - self._spawned_at
            self.timing["candidate"] -= self._waited  # counted as start-up

    def _spawn(self) -> None:
        """Start the worker process and ask it to load the candidate.

        The process is spawned by the thread that will outlive it (the harness's main thread, or the one that
        restarts it): Linux's parent-death signal, which ends a worker with its harness, follows the thread that
        spawned it."""
        env = dict(os.environ, KERAS_BACKEND=self.candidate.backend, TF_CPP_MIN_LOG_LEVEL="3",
                   PYTHONWARNINGS="ignore", JAX_ENABLE_X64="1", PYTHONUNBUFFERED="1", **jax_cache_environment())
        self._stderr = tempfile.TemporaryFile(mode="w+b")
        self.process = subprocess.Popen(WORKER, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._stderr, env=env,
                                        start_new_session=True)
        _LIVE.add(self)
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(self.process.stdout, self._lines), daemon=True).start()
        self._send(self.candidate.header())

    def _loaded(self, meanwhile: Callable[[], object] | None = None) -> dict:
        try:
            reply = self._answer("loading the candidate", meanwhile)
        except RunError as error:
            raise CandidateError(f"cannot load {self.candidate.label}: {error}") from None
        if messages.ERROR in reply:
            self.close()
            raise CandidateError(f"cannot load {self.candidate.label}: {reply[messages.ERROR]}")
        return reply[messages.DESCRIBE]

    def _ensure_running(self) -> None:
        if self.process is not None:
            return
        if self.ended:
            raise CandidateLost("not run: the run was ended")
        try:
            self._start()
        except CandidateError as error:
            raise RunError(f"the worker could not be restarted: {error}") from None

    def _request(self, message: dict, doing: str, meanwhile: Callable[[], object] | None = None) -> dict:
        """A request to the candidate (not a load), counting how many in a row lost the worker."""
        self._ensure_running()
        try:
            reply = self._exchange(message, doing, meanwhile)
        except CandidateLost as error:
            self.lost_in_a_row, self.last_loss = self.lost_in_a_row + 1, str(error).splitlines()[0]
            raise
        self.lost_in_a_row = 0
        return reply

    def _exchange(self, message: dict, doing: str, meanwhile: Callable[[], object] | None = None) -> dict:
        self._send(message)
        return self._answer(doing, meanwhile)

    def _send(self, message: dict) -> None:
        assert self.process is not None
        self.call, self._last = "", {}
        try:
            framing.write(self.process.stdin, message)
        except (BrokenPipeError, OSError):
            pass  # the worker is gone: reading says how

    def _answer(self, doing: str, meanwhile: Callable[[], object] | None = None) -> dict:
        """The reply to the message just sent, doing ``meanwhile`` first."""
        if meanwhile is not None:
            # The host's own work on this request (the oracle on the same spec) while the worker runs the candidate:
            # two cores at once.  What it raises is raised again where its result is needed.
            try:
                meanwhile()
            except Exception:  # noqa: BLE001, S110
                pass
        waiting = time.perf_counter()
        try:
            return self._reply(doing)
        finally:
            self._waited = time.perf_counter() - waiting
            self.timing["candidate"] += self._waited

    def _reply(self, doing: str) -> dict:
        while True:
            try:
                frame = self._lines.get(timeout=self.timeout)
            except queue.Empty:
                self.kill()
                raise CandidateLost(f"no answer from {doing} within {self.timeout:g} s (the worker was killed)",
                                    call=self.call) from None
            if frame is None:
                raise CandidateLost(f"the worker died in {doing}: {self._death()}", call=self.call)
            line, attachments = frame
            try:
                reply = framing.parse(line, attachments)
                if not isinstance(reply, dict):
                    raise ValueError("not an object")
            except ValueError:
                self.kill()
                text = line.decode(errors="replace").rstrip("\n")
                raise CandidateLost(f"the worker's protocol channel carried junk in {doing}: {text[:120]!r}",
                                    call=self.call) from None
            if messages.CALL in reply:
                self._last = reply
                doing, self.call = _describe_call(reply), str(reply[messages.CALL])
                continue
            return reply

    def _death(self) -> str:
        """How the worker ended (signal or exit status) and the last lines of its stderr; it is then gone."""
        process = self.process
        try:
            status = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            status = process.wait()
        self._forget()
        how = (f"killed by signal {_signal_name(-status)}" if status < 0 else f"exited with status {status}")
        tail = self._stderr_tail()
        self._stderr.close()
        return how + (f"; its last stderr lines:\n{tail}" if tail else "; it wrote nothing to stderr")

    def _stderr_tail(self, lines: int = 8) -> str:
        self._stderr.seek(0)
        text = self._stderr.read()[-4000:].decode(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def kill(self) -> None:
        """Kill the worker's whole process group at once (whatever the candidate is doing)."""
        process = self.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        self._forget()
        self._stderr.close()

    def _forget(self) -> None:
        if self.process is not None:
            for stream in (self.process.stdin, self.process.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self.process = None
        _LIVE.discard(self)

    # -- requests -----------------------------------------------------------------------------------------
    def switch(self, candidate: Candidate) -> dict:
        """Load another candidate in the same process (same backend): returns its description."""
        if candidate.backend != self.candidate.backend:
            raise ValueError("a worker keeps its backend; start another Worker")
        self._ensure_running()
        try:
            reply = self._exchange(candidate.header(), "loading the candidate")
        except RunError as error:
            raise CandidateError(f"cannot load {candidate.label}: {error}") from None
        if messages.ERROR in reply:
            raise CandidateError(f"cannot load {candidate.label}: {reply[messages.ERROR]}")
        self.candidate, self.description = candidate, reply[messages.DESCRIBE]
        return self.description

    def run(self, spec: dict, meanwhile: Callable[[], object] | None = None) -> list[dict]:
        """The candidate's states along ``spec``; :class:`RunError` if it raised, hung or died;
        :class:`NotApplicable` if the worker's Keras itself rejects the spec's configuration.  ``meanwhile`` is
        called while the worker runs (its deadline counts from when it returns).

        A rule the candidate does not claim is run as the Keras rule it claims that computes it, if any (a
        candidate that claims nothing runs what it is given)."""
        claimed = self.description.get("algorithms", ()) if self.description else ()
        algorithm = spec.get("algorithm")
        if claimed and algorithm in translation.RULES and algorithm not in claimed \
                and translation.keras_rules(algorithm):
            translated = translation.keras_spec(spec)
            if isinstance(translated, str):
                raise NotApplicable(f"as Keras's optimizer: {translated}")
            if translated["algorithm"] not in claimed:
                raise NotApplicable(f"these arguments are Keras's {translated['algorithm']}, which the candidate does "
                                    f"not implement (it implements {', '.join(claimed) or 'nothing it names'})")
            return [translation.from_keras(state, algorithm) for state in self._run(translated, meanwhile)]
        return self._run(spec, meanwhile)

    def _run(self, spec: dict, meanwhile: Callable[[], object] | None = None) -> list[dict]:
        reply = self._request(messages.run(spec), "the candidate", meanwhile)
        if messages.ERROR in reply:
            error = reply[messages.ERROR]
            raise RunError(f"{error} (in {_describe_call(self._last)})" if self.call else error,
                           reply.get(messages.TRACEBACK, ""), self.call)
        if messages.NOT_APPLICABLE in reply:
            raise NotApplicable(reply[messages.NOT_APPLICABLE])
        states = reply.get(messages.STATES)
        if not isinstance(states, list) or not all(isinstance(s, dict) for s in states):
            raise RunError(f"the worker's reply holds no list of states: {str(reply)[:120]}")
        return states

    def api(self, algorithm: str, examples: int = 60, checks: list[str] | None = None) -> list[dict]:
        """The API/config checks (:mod:`conformance.checks.api`), run in the worker next to real Keras.

        Their outcomes, as JSON (:meth:`Outcome.to_json`)."""
        reply = self._request(messages.api(algorithm, examples, checks), "the API checks")
        if messages.ERROR in reply:
            raise RunError(reply[messages.ERROR], reply.get(messages.TRACEBACK, ""), self.call)
        return reply[messages.API]

    def end(self, now: bool = False) -> None:
        """End the worker for good (a request still on its way in another thread fails, and nothing restarts it):
        at once (``now``: killed, whatever the candidate is doing), else politely (:meth:`close`)."""
        self.ended = True
        self.kill() if now else self.close()

    def close(self) -> None:
        """End the worker: politely (end of input), and killed if it does not end within a few seconds."""
        process = self.process
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout=10)
        except (subprocess.TimeoutExpired, OSError):
            pass
        self.kill() if process.poll() is None else self._forget()
        if not self._stderr.closed:
            self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None and not issubclass(exc[0], Exception):
            self.kill()  # KeyboardInterrupt, SystemExit: no waiting on a candidate that may hang
        else:
            self.close()


def start_workers(candidate: Candidate, timeout: float = DEFAULT_TIMEOUT, count: int = 1,
                  meanwhile: Callable[[], object] | None = None) -> list[Worker]:
    """``count`` workers of ``candidate``, started at once (the framework's import takes seconds in each), all by the
    calling thread; the host does ``meanwhile`` while they start.  If one cannot load the candidate, the others
    are ended and its :class:`CandidateError` is raised."""
    if count < 1:
        raise ValueError(f"the number of workers must be a positive integer; got {count!r}")
    workers = [Worker(candidate, timeout, handshake=False) for _ in range(count)]
    try:
        for i, worker in enumerate(workers):
            worker.description = worker._handshake(meanwhile if i == 0 else None)
    except BaseException:
        for worker in workers:
            worker.end(now=True)
        raise
    return workers


def _pump(stream, lines: queue.Queue) -> None:
    """Move the worker's protocol messages (a line and its attachments: :mod:`framing`) into a queue (``None`` at its
    end), so reading can have a deadline."""
    try:
        while (frame := framing.read(stream)) is not None:
            lines.put(frame)
    except ValueError as error:  # a malformed attachments header: junk, which the reader reports
        lines.put((str(error).encode(), []))
    except OSError:
        pass
    lines.put(None)


def _describe_call(announcement: dict) -> str:
    call, step = announcement[messages.CALL], announcement.get(messages.STEP)
    return f"{call}()" + (f" at step {step}" if step is not None else "") if not call.startswith("api/") else call


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


# Every worker still running; killed when the harness exits, however it exits short of SIGKILL (and the
# worker kills itself when its parent is gone: see conformance.candidates.server).
_LIVE: set[Worker] = set()


@atexit.register
def _kill_live_workers() -> None:
    for worker in list(_LIVE):
        worker.kill()
