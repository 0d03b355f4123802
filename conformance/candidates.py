"""Candidates as the harness sees them: a worker process per candidate, spoken to in JSON lines.

``parse_candidate("keras", backend="jax")`` is real Keras 3 on JAX; ``parse_candidate("pkg.mod:Name")``
is a Keras-style class or factory, a ``tf_keras.optimizers.legacy`` optimizer, or a
:mod:`conformance.adapter` adapter.  :class:`Worker` runs specs on it (see :mod:`conformance.worker`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

BACKENDS = ("tensorflow", "jax", "torch")


class CandidateError(RuntimeError):
    """The candidate cannot be loaded or its worker died: exit status 2."""


class RunError(RuntimeError):
    """The candidate raised while running a spec: a failed check, with its traceback."""

    def __init__(self, message: str, traceback: str = "") -> None:
        super().__init__(message)
        self.traceback = traceback


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
        return {"candidate": {"kind": "keras" if self.target is None else "import", "target": self.target,
                              "compile": self.compile}}


def parse_candidate(text: str, backend: str | None = None, compile: str = "eager") -> Candidate:
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if compile not in ("eager", "function", "jit"):
        raise ValueError(f"--compile must be eager, function or jit; got {compile!r}")
    backend = backend or os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if text == "keras":
        return Candidate(None, backend, compile)
    if ":" not in text and "." not in text:
        raise ValueError(f"candidate must be 'keras' or 'package.module:Name'; got {text!r}")
    return Candidate(text, backend, compile)


class Worker:
    """One running candidate."""

    def __init__(self, candidate: Candidate, timeout: float = 600) -> None:
        self.candidate = candidate
        self.timeout = timeout
        env = dict(os.environ, KERAS_BACKEND=candidate.backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore",
                   JAX_ENABLE_X64="1", PYTHONUNBUFFERED="1")
        # The current directory is importable in the worker, as it is for `python -c`.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), env.get("PYTHONPATH", "")) if p)
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([sys.executable, "-m", "conformance.worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env)
        reply = self._exchange(candidate.header())
        if "error" in reply:
            self.close()
            raise CandidateError(f"cannot load {candidate.label}: {reply['error']}")
        self.description: dict = reply["describe"]

    def _exchange(self, message: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            self._stderr.seek(0)
            tail = self._stderr.read()[-2000:]
            raise CandidateError(f"the worker for {self.candidate.label} died: {tail.strip() or 'no output'}")
        return json.loads(line)

    def switch(self, candidate: Candidate) -> dict:
        """Load another candidate in the same process (same backend): returns its description."""
        if candidate.backend != self.candidate.backend:
            raise ValueError("a worker keeps its backend; start another Worker")
        reply = self._exchange(candidate.header())
        if "error" in reply:
            raise CandidateError(f"cannot load {candidate.label}: {reply['error']}")
        self.candidate, self.description = candidate, reply["describe"]
        return self.description

    def run(self, spec: dict) -> list[dict]:
        reply = self._exchange({"spec": spec})
        if "error" in reply:
            raise RunError(reply["error"], reply.get("traceback", ""))
        return reply["states"]

    def api(self, algorithm: str, examples: int = 60, checks: list[str] | None = None) -> list[dict]:
        """The API/config checks (:mod:`conformance.api`), run in the worker next to real Keras."""
        reply = self._exchange({"api": {"algorithm": algorithm, "examples": examples, "checks": checks}})
        if "error" in reply:
            raise RunError(reply["error"], reply.get("traceback", ""))
        return reply["api"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
