"""Build fixture documents with the oracle: ``optconf generate`` (the corpus, or a check that it regenerates
byte for byte), a shrunk failure written as a fixture, and the re-derivation of any fixture from its inputs.

Generation is deterministic: the data come from generators seeded by each fixture's name, the oracle is
exact, and the JSON text is written with a fixed layout.  Fixtures are generated in parallel across
cores, with a progress bar on stderr when it is a terminal (or when asked).

Imports: the oracle, the data model, the catalogue and the fixture format.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from optimizer_conformance.conformance.cases.catalogue import CORPUS, Trajectory
from optimizer_conformance.conformance.files import write_atomically
from optimizer_conformance.conformance.golden.format import (
    FORMAT,
    FORMAT_VERSION,
    Fixture,
    content_hash,
    dumps,
    encode_budget,
    encode_exact,
    encode_values,
)
from optimizer_conformance.conformance.model import spec_inputs
from optimizer_conformance.reference import DEFAULT_PRECISION, ReferenceOptimizer, __version__, get_config, normalize

KERAS_SEMANTICS = "3.15.1"
# The corpus was regenerated once when its inputs became exact constructions, identical on every CPU.
INPUTS = "exact: seeded integers scaled by powers of two (conformance/cases/inputs.py), rounded to the input dtype"
WIDER = {"float64": ["float64"], "float32": ["float32", "float64"], "float16": ["float16", "float32", "float64"],
         "bfloat16": ["bfloat16", "float32", "float64"]}


def build_document(entry: Trajectory, precision: int = DEFAULT_PRECISION, inputs=None,
                   budget_dtypes: list[str] | None = None) -> dict:
    variables, gradients = inputs if inputs is not None else entry.inputs()
    budget_dtypes = budget_dtypes or WIDER[entry.input_dtype]
    runs = {dtype: _run(entry, variables, gradients, dtype, precision) for dtype in budget_dtypes}
    reference = runs[budget_dtypes[0]]
    states = []
    for k, (label, iterations, exact) in enumerate(reference):
        for dtype in budget_dtypes[1:]:
            other = runs[dtype][k][2]
            # Compared as written (NaN is not equal to itself, but the same NaN is written the same).
            if any(list(map(encode_exact, other[q].exact)) != list(map(encode_exact, exact[q].exact)) for q in exact):
                raise AssertionError(f"{entry.name}: exact values differ between budget dtypes at state {k}")
        states.append({
            "after": label,
            "iterations": iterations,
            "exact": {q: [encode_exact(x) for x in v.exact] for q, v in exact.items()},
            "budget": {dtype: {q: [encode_budget(b, x) for b, x in zip(v.budget.tolist(), v.exact)]
                               for q, v in runs[dtype][k][2].items()}
                       for dtype in budget_dtypes},
        })
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": entry.name,
        "description": entry.description,
        "algorithm": entry.algorithm,
        "dialect": entry.dialect,
        "config": get_config(entry.algorithm, normalize(entry.algorithm, entry.config)),
        "input_dtype": entry.input_dtype,
        "floatx": "float32",
        "budget_dtypes": budget_dtypes,
        "exclude_from_weight_decay": entry.exclude,
        **({"overwrite_with_gradient": list(entry.overwrite_with_gradient)} if entry.overwrite_with_gradient else {}),
        **({"constraints": {str(i): c for i, c in entry.constraints.items()}} if entry.constraints else {}),
        **({"loss_scale_optimizer": dict(entry.loss_scale_optimizer)} if entry.loss_scale_optimizer else {}),
        **({"sparse_gradients": list(entry.sparse_gradients)} if entry.sparse_gradients else {}),
        **({"sparse_duplicate_rows": True} if entry.sparse_duplicate_rows else {}),
        **({"variable_dtypes": {str(i): d for i, d in entry.dtypes_in(entry.input_dtype).items()}}
           if entry.variable_dtypes else {}),
        "variables": [{"name": n, "shape": list(a.shape), "initial": encode_values(a)} for n, a in variables],
        "gradients": [[None if g is None else encode_values(g) for g in step] for step in gradients],
        "finalize": entry.finalize,
        "states": states,
        "provenance": {
            "generator": (f"optconf generate --only {entry.name}" if inputs is None
                          else "optconf check (shrunk failure)"),
            "oracle_version": __version__,
            "precision_bits": precision,
            "keras_semantics": KERAS_SEMANTICS,
            "inputs": INPUTS,
        },
    }
    document["sha256"] = content_hash(document)
    return document


def _run(entry: Trajectory, variables, gradients, dtype: str, precision: int):
    opt = ReferenceOptimizer(entry.algorithm, entry.config, dtype=dtype, precision=precision,
                             loss_scale_optimizer=entry.loss_scale_optimizer or None)
    opt.build(variables, overwrite_with_gradient=entry.overwrite_with_gradient, constraints=entry.constraints,
              variable_dtypes=entry.dtypes_in(dtype))
    if entry.exclude:
        opt.exclude_from_weight_decay(**entry.exclude)
    out = []

    def record(label: str) -> None:
        state = opt.state()
        state.pop("iterations")
        out.append((label, opt.iterations, state))

    for k, grads in enumerate(gradients, start=1):
        opt.apply(grads)
        record(f"apply {k}")
    if entry.finalize:
        opt.finalize_variable_values()
        record("finalize_variable_values")
    return out


def _render(entry: Trajectory) -> tuple[str, str]:
    return entry.name, dumps(build_document(entry))


def select(patterns: Iterable[str] | None) -> list[Trajectory]:
    """The corpus entries whose names match any of the shell-style ``patterns`` (all when none)."""
    patterns = list(patterns or [])
    if not patterns:
        return list(CORPUS)
    chosen = [e for e in CORPUS if any(fnmatch.fnmatchcase(e.name, p) for p in patterns)]
    if not chosen:
        names = ", ".join(e.name for e in CORPUS)
        raise ValueError(f"--only {' '.join(patterns)!r} matches no fixture; the fixtures are: {names}")
    return chosen


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled, self.start = total, 0, enabled, time.perf_counter()

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        width = 30
        filled = width * self.done // self.total
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                         f"{elapsed:5.1f}s {label[:40]:<40}")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def generate(entries: list[Trajectory], jobs: int | None = None, progress: bool | None = None):
    """Yield ``(name, text)`` for each entry, computed on ``jobs`` processes."""
    jobs = jobs or os.cpu_count() or 1
    bar = Progress(len(entries), sys.stderr.isatty() if progress is None else progress)
    # The longest first, so the cores finish together.
    ordered = sorted(entries, key=lambda e: -e.steps)
    if jobs == 1 or len(entries) == 1:
        results = map(_render, ordered)
        for name, text in results:
            bar.advance(name)
            yield name, text
        return
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        for name, text in pool.imap_unordered(_render, ordered):
            bar.advance(name)
            yield name, text


def write(directory: Path, entries: list[Trajectory], jobs: int | None = None, progress: bool | None = None) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in generate(entries, jobs, progress):
        write_atomically(directory / f"{name}.json", text)
    return len(entries)


def check(directory: Path, entries: list[Trajectory], jobs: int | None = None,
          progress: bool | None = None) -> list[str]:
    """Regenerate ``entries`` and list every difference from the files in ``directory``."""
    problems = []
    for name, text in generate(entries, jobs, progress):
        path = directory / f"{name}.json"
        if not path.exists():
            problems.append(f"{path}: missing (run: optconf generate --only {name})")
            continue
        stored = path.read_text(encoding="ascii", errors="replace")
        if stored != text:
            problems.append(f"{path}: differs from its regeneration at {_first_difference(stored, text)}")
    if len(entries) == len(CORPUS):
        known = {f"{e.name}.json" for e in CORPUS}
        problems += [f"{p}: not in the corpus (remove it, or add a Golden to its rule's descriptor in "
                     "reference/rules/<rule>.py or a Trajectory to conformance/cases/catalogue.py)"
                     for p in sorted(directory.glob("*.json")) if p.name not in known]
    return problems


def _first_difference(a: str, b: str) -> str:
    for line, (x, y) in enumerate(zip(a.splitlines(), b.splitlines()), start=1):
        if x != y:
            return f"line {line}: stored {x.strip()[:60]!r}, regenerated {y.strip()[:60]!r}"
    return f"length {len(a)} vs {len(b)} characters"


def _trajectory(name: str, description: str, spec: dict) -> tuple[Trajectory, tuple]:
    """A trajectory and its inputs for a worker spec (a trajectory given by its own data)."""
    variables, gradients = spec_inputs(spec)
    trajectory = Trajectory(name, description, spec["algorithm"], spec["config"], input_dtype=spec["dtype"],
                            steps=len(gradients), exclude=spec.get("exclude") or {},
                            finalize=bool(spec.get("finalize")),
                            overwrite_with_gradient=tuple(spec.get("overwrite_with_gradient") or ()),
                            constraints=spec.get("constraints") or {},
                            loss_scale_optimizer=spec.get("loss_scale_optimizer") or {},
                            sparse_gradients=tuple(spec.get("sparse_gradients") or ()),
                            sparse_duplicate_rows=bool(spec.get("sparse_duplicate_rows")),
                            variable_dtypes={int(i): d for i, d in (spec.get("variable_dtypes") or {}).items()})
    return trajectory, (variables, gradients)


def write_spec_fixture(directory: Path, spec: dict) -> Path:
    """A failing trajectory (a worker spec) written as a fixture file the port author can keep."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    name = f"failure-{spec['algorithm']}-{spec['dtype']}-{digest}"
    entry, inputs = _trajectory(name, "the smallest failing example hypothesis found", spec)
    path = directory / f"{name}.json"
    write_atomically(path, dumps(build_document(entry, inputs=inputs)))
    return path


def rederive(fixture: Fixture) -> str | None:
    """Re-run the oracle on ``fixture``'s own inputs; the first stored exact value or budget that differs, or None.

    This, not the hash, is what makes a fixture trustworthy: ``sha256`` only shows that the file is as it was
    written, and anyone can recompute it after editing a value.
    """
    doc = fixture.document
    if doc["input_dtype"] not in fixture.budget_dtypes:
        return f"{fixture.path}: input_dtype {doc['input_dtype']} has no budgets"
    entry = Trajectory(fixture.name, doc["description"], fixture.algorithm, fixture.config,
                       input_dtype=doc["input_dtype"], steps=len(doc["gradients"]),
                       exclude=doc["exclude_from_weight_decay"], finalize=doc["finalize"],
                       overwrite_with_gradient=tuple(doc.get("overwrite_with_gradient") or ()),
                       constraints=doc.get("constraints") or {},
                       loss_scale_optimizer=doc.get("loss_scale_optimizer") or {},
                       sparse_gradients=tuple(doc.get("sparse_gradients") or ()),
                       sparse_duplicate_rows=bool(doc.get("sparse_duplicate_rows")),
                       variable_dtypes={int(i): d for i, d in (doc.get("variable_dtypes") or {}).items()})
    inputs = (fixture.variables(), fixture.gradients())
    try:
        fresh = build_document(entry, doc["provenance"]["precision_bits"], inputs, fixture.budget_dtypes)
    except (ValueError, TypeError, KeyError) as error:
        return f"{fixture.path}: the oracle cannot re-derive it: {type(error).__name__}: {error}"
    for k, (stored, derived) in enumerate(zip(doc["states"], fresh["states"])):
        for key in ("after", "iterations"):
            if stored[key] != derived[key]:
                return f"{fixture.path}: states[{k}].{key}: stored {stored[key]!r}, the oracle gives {derived[key]!r}"
        if set(stored["exact"]) != set(derived["exact"]):
            return (f"{fixture.path}: states[{k}].exact: stored quantities {sorted(stored['exact'])}, the oracle "
                    f"gives {sorted(derived['exact'])}")
        for q, values in derived["exact"].items():
            for j, (a, b) in enumerate(zip(stored["exact"][q], values)):
                if a != b:
                    return f"{fixture.path}: states[{k}].exact.{q}[{j}]: stored {a}, the oracle gives {b}"
        for dtype in fixture.budget_dtypes:
            for q, values in derived["budget"][dtype].items():
                for j, (a, b) in enumerate(zip(stored["budget"][dtype][q], values)):
                    if a != b:
                        return (f"{fixture.path}: states[{k}].budget.{dtype}.{q}[{j}]: stored {a!r}, the oracle "
                                f"gives {b!r}")
    return None
