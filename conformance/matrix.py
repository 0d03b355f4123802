"""``optconf matrix``: every installed implementation against every rule, as one Markdown table.

The public answer to "which of these Adams are the same?": each implementation (Keras on each backend, tf_keras's
legacy Nadam, torch.optim in each mode, optax eager and under jit, the bundled fast implementation) is checked as
``optconf check`` checks it (the pipeline and fixtures families, ``quick`` profile, float32 by default), and each
cell says whether it conforms to that rule, fails only by known upstream bugs of its library, or differs, with the
worst ratio and the explanation the diagnosis gives (the commonest among its failing checks).

Imports: the runner, the settings, the client and the file writer.
"""

from __future__ import annotations

import datetime
import fnmatch
import importlib.util
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from optimizer_conformance.conformance.candidates.client import CandidateError, Worker, parse_candidate
from optimizer_conformance.conformance.files import write_atomically
from optimizer_conformance.conformance.model import Outcome, first_line
from optimizer_conformance.conformance.runner import plan_for, run_plan
from optimizer_conformance.conformance.settings import Settings
from optimizer_conformance.reference.rules import ALL, translation


@dataclass(frozen=True)
class Implementation:
    label: str
    candidate: str
    backend: str = "tensorflow"
    compile: str = "eager"
    needs: tuple[str, ...] = ()  # the modules it imports

    @property
    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in self.needs)


TORCH_MODES = {"Adam": ("eager", "foreach", "fused"), "AdamW": ("eager", "foreach", "fused"),
               "NAdam": ("eager", "foreach"), "Adamax": ("eager", "foreach")}

IMPLEMENTATIONS = (
    *(Implementation(f"Keras 3 ({b})", "keras", b, needs=("keras", b)) for b in ("tensorflow", "jax", "torch")),
    Implementation("tf_keras legacy Nadam", "tf_keras.optimizers.legacy:Nadam", needs=("tf_keras",)),
    Implementation("tf_keras legacy Adam", "tf_keras.optimizers.legacy:Adam", needs=("tf_keras",)),
    *(Implementation(f"tf_keras.optimizers.{name} (Keras 2)", f"tf_keras.optimizers:{name}", needs=("tf_keras",))
      for name in ("Adam", "AdamW", "Nadam", "Adamax")),
    *(Implementation(f"torch.optim.{name} ({mode})", f"torch.optim:{name}", compile=mode, needs=("torch",))
      for name, modes in TORCH_MODES.items() for mode in modes),
    *(Implementation(f"optax.{name} ({mode})", f"optax:{name}", compile=mode, needs=("optax", "jax"))
      for name in ("adam", "adamw", "amsgrad", "nadam", "adamax") for mode in ("eager", "jit")),
    Implementation("fast_optimizers (NumPy)", "optimizer_conformance.fast_optimizers.conformance:NumpyAdapter"),
)


def cell(outcomes: list[Outcome]) -> str:
    """One implementation on one rule: conforms, known upstream bugs, differs (worst ratio, explanation), or n/a."""
    applicable = [o for o in outcomes if o.not_applicable is None]
    if not applicable:
        return "n/a"
    failed = [o for o in applicable if o.failed]
    if not failed:
        upstream = sorted({o.upstream for o in applicable if o.known_upstream_bug and o.upstream})
        passed = sum(o.passed for o in applicable)
        if upstream:
            return f"known upstream bugs in {len(applicable) - passed}/{len(applicable)}: {', '.join(upstream)}"
        return f"conforms ({passed}/{len(applicable)})"
    ratios = [o.worst.ratio for o in failed if o.worst is not None]
    worst = f"worst ratio {max(ratios):.3g}" if ratios else "errors"
    named = Counter(o.diagnosis for o in failed if o.diagnosis)
    unexplained = sum(1 for o in failed if not o.diagnosis)
    why = ", ".join(f"`{d}` ({n})" for d, n in named.most_common())
    if unexplained:
        why = f"{why}; unexplained ({unexplained})" if why else f"unexplained ({unexplained})"
    return f"**differs** in {len(failed)}/{len(applicable)}: {worst}; {why}"


def run(implementations: list[Implementation], dtypes: list[str], profile: str,
        progress: Callable[[str], None] = lambda line: None) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """Each implementation's cells by rule, and the versions its worker reported."""
    rows: dict[str, dict[str, str]] = {}
    versions: dict[str, str] = {}
    for implementation in implementations:
        progress(implementation.label)
        settings = Settings(implementation.candidate, dtypes=dtypes, backend=implementation.backend,
                            profile=profile, checks=("pipeline", "fixtures"), compile=implementation.compile)
        try:
            with Worker(parse_candidate(settings.candidate, settings.backend, settings.compile)) as worker:
                description = worker.description
                versions.update(description.get("versions", {}))
                # Its own rules, and every other library's rule one of them computes (Keras's Adam in torch's).
                plan = plan_for(replace(settings, algorithms=translation.reachable(description["algorithms"])),
                                description)
                outcomes = run_plan(worker, plan)
        except CandidateError as error:
            rows[implementation.label] = {"*": f"cannot load: {first_line(error, 120)}"}
            continue
        rows[implementation.label] = {a: cell([o for o in outcomes if o.algorithm == a]) for a in plan.algorithms}
    return rows, versions


def render(rows: dict[str, dict[str, str]], versions: dict[str, str], dtypes: list[str], profile: str) -> str:
    """The Markdown document: what was run, when, on what, then one table per dialect."""
    today = datetime.date.today().isoformat()
    lines = ["# Conformance matrix", "",
             f"Generated by `optconf matrix` on {today}: every installed implementation against each rule, checked "
             f"as `optconf check` checks it (pipeline and fixtures, profile `{profile}`, {', '.join(dtypes)}). "
             "A cell conforms (checks passed of those applicable), fails only by catalogued upstream bugs of the "
             "implementation's library (named), or **differs**, with its worst |candidate − exact| / budget and the "
             "known deviations the diagnosis names (how many checks each explains). What a library leaves to the "
             "training loop (EMA, accumulation, clipping, Keras's schedules) is not applicable to it and left out. "
             "An implementation is checked against another library's rule where one of its own rules computes it "
             "under some arguments (Keras's Adam is torch.optim's Adam without `maximize` or an L2 decay): those "
             "specs go to it in its own terms and its states come back in that library's names; the arguments "
             "that have no counterpart are not applicable.  — : none of its rules computes that rule.",
             "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), ""]
    dialects: dict[str, list[str]] = {}
    for rule in ALL:
        dialects.setdefault(rule.dialect.name, []).append(rule.name)
    for dialect, rules in dialects.items():
        lines += [f"## Dialect `{dialect}`", "", "| implementation | " + " | ".join(rules) + " |",
                  "|---|" + "---|" * len(rules)]
        for label, cells in rows.items():
            if "*" in cells:
                lines.append(f"| {label} | {cells['*']} |" + " |" * (len(rules) - 1))
            elif any(r in cells for r in rules):
                lines.append(f"| {label} | " + " | ".join(cells.get(r, "—") for r in rules) + " |")
        lines.append("")
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    write_atomically(path, text, encoding="utf-8")


def select(patterns: list[str] | None) -> list[Implementation]:
    """The installed implementations whose label or candidate matches one of ``patterns`` (all: None)."""
    return [i for i in IMPLEMENTATIONS if i.installed and (
        patterns is None or any(fnmatch.fnmatchcase(i.label, p) or fnmatch.fnmatchcase(i.candidate, p)
                                for p in patterns))]
