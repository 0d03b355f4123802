"""The settings of a run: one type for the command line, the pytest plugin and the ``optconf`` fixture.

:class:`Settings` holds every setting with its default, written once here; :meth:`Settings.parse` validates the
raw strings (or lists) each entry point gathers, and every bad value is one ``ValueError`` whose message names the
setting as that entry point spells it, the value and what is accepted.  :meth:`Settings.report_block` is the
``settings`` block of the JSON report, the same from every entry point.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimizer_conformance.conformance.model import LACKABLE, PROFILES
from optimizer_conformance.reference.formats import FORMATS
from optimizer_conformance.reference.rules import ALGORITHMS, DIALECT_RULES, translation

CHECK_FAMILIES = ("pipeline", "one-step", "fixtures", "explore", "scale", "api")
# What a candidate may run under as Keras's floatx() (the dtype of its learning-rate variable and schedules).
FLOATX = ("float32", "float64")
DIALECTS = DIALECT_RULES
BACKENDS = ("tensorflow", "jax", "torch")
# How a candidate runs: Keras eagerly, under tf.function or jax.jit; torch.optim's foreach and fused implementations.
COMPILE_MODES = ("eager", "function", "jit", "foreach", "fused")
# The deadline of one call into the candidate: a hang past it fails the check and restarts the worker.  Far above
# what any honest candidate needs for one call on the 2-core CI machine (loading TensorFlow and compiling a JAX step
# take seconds).
DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Settings:
    """What to check, and how: every setting of a run, with its default."""

    candidate: str
    algorithms: list[str] | None = None  # None: what the candidate claims
    dtypes: list[str] | None = None  # None: what the candidate computes in
    dialect: str | None = None  # None: every dialect the candidate claims rules of
    backend: str | None = None  # None: $KERAS_BACKEND, else tensorflow
    profile: str = "ci"
    checks: tuple[str, ...] = CHECK_FAMILIES
    compile: str = "eager"
    timeout: float = DEFAULT_TIMEOUT
    floatx: str | None = None  # None: what the candidate declares, else float32
    strict: bool = False
    xfail: Mapping[str, str] = field(default_factory=dict)
    # The features the port lacks (model.LACKABLE), each with why: their trajectories are not applicable.
    lacks: Mapping[str, str] = field(default_factory=dict)
    # Directories of fixtures of one's own (shrunk failures written by --write-failures, a third party's corpus),
    # replayed by the fixtures check beside the bundled corpus.
    fixtures: tuple[Path, ...] = ()
    # Where explore keeps the shrunk failures it replays first on the next run (None: nowhere).
    explore_database: Path | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any], spelled: Callable[[str], str] = lambda key: f"--{key}",
              base: Path | None = None, **given: Any) -> Settings:
        """Settings from raw values (strings, or lists for the list settings; None or absent: the default), each
        validated; ``spelled(key)`` is how the entry point names a setting in its messages; relative directories
        are under ``base`` (the plugin's rootdir; None: the current directory)."""
        def text(key: str) -> str | None:
            value = raw.get(key)
            if isinstance(value, (list, tuple)):
                return ",".join(map(str, value))
            return None if value is None else str(value)

        lacks = text("lacks")
        lacked = () if lacks is None else choices(lacks, LACKABLE, spelled("lacks")) or LACKABLE
        strict = raw.get("strict")
        if not isinstance(strict, bool):
            strict = one_of(text("strict"), ("true", "false"), spelled("strict"), "false") == "true"
        return cls(
            candidate=str(raw["candidate"]),
            algorithms=choices(text("algorithms"), ALGORITHMS, spelled("algorithms")),
            dtypes=choices(text("dtypes"), FORMATS, spelled("dtypes")),
            dialect=one_of(text("dialect"), DIALECTS, spelled("dialect"), None),
            backend=one_of(text("backend"), BACKENDS, spelled("backend"), None),
            profile=one_of(text("profile"), PROFILES, spelled("profile"), cls.profile),
            checks=tuple(choices(text("checks"), CHECK_FAMILIES, spelled("checks")) or CHECK_FAMILIES),
            compile=one_of(text("compile"), COMPILE_MODES, spelled("compile"), cls.compile),
            timeout=timeout_seconds(text("timeout") or cls.timeout, spelled("timeout")),
            floatx=one_of(text("floatx"), FLOATX, spelled("floatx"), None),
            strict=strict,
            lacks={feature: f"declared with {spelled('lacks')}" for feature in lacked},
            fixtures=directories(text("fixtures"), spelled("fixtures"), base),
            **given,
        )

    def report_block(self, algorithms: list[str], dtypes: list[str], floatx: str, interrupted: bool) -> dict:
        """The JSON report's ``settings``: these settings, with what the run covered and under which floatx."""
        return {"profile": self.profile, "algorithms": list(algorithms), "dtypes": list(dtypes),
                "checks": list(self.checks), "dialect": self.dialect, "backend": self.backend,
                "compile": self.compile, "timeout": self.timeout, "strict": self.strict, "floatx": floatx,
                "lacks": list(self.lacks), "fixtures": [str(p) for p in self.fixtures], "interrupted": interrupted}


def directories(value: str | None, name: str, base: Path | None = None) -> tuple[Path, ...]:
    """Comma-separated directories that exist, relative ones under ``base`` (``None``: none given)."""
    if value is None:
        return ()
    given = [v.strip() for v in value.split(",") if v.strip()]
    paths = tuple(Path(base, v) if base is not None else Path(v) for v in given)
    missing = [v for v, p in zip(given, paths) if not p.is_dir()]
    if missing or not paths:
        where = f" (under {base})" if base is not None else ""
        raise ValueError(f"{name}: {', '.join(map(repr, missing)) or repr(value)} is not a directory{where}; give "
                         "directories of fixture files (*.json), comma-separated or the option repeated")
    return paths


def choices(value: str | None, accepted: Iterable[str], name: str) -> list[str] | None:
    """A comma-separated setting, each item one of ``accepted`` (``None`` or ``all``: not restricted)."""
    if value is None or value == "all":
        return None
    accepted = tuple(accepted)
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in accepted]
    if bad or not items:
        raise ValueError(f"{name}: {', '.join(map(repr, bad)) or repr(value)} is not accepted; accepted: "
                         f"{', '.join(accepted)} (comma-separated) or 'all'")
    return items


def one_of(value: str | None, accepted: Iterable[str], name: str, default: str | None) -> str | None:
    """A setting with one value from ``accepted`` (``default`` when not given)."""
    if value is None:
        return default
    accepted = tuple(accepted)
    if value not in accepted:
        raise ValueError(f"{name}: {value!r} is not accepted; accepted: {', '.join(accepted)}")
    return value


def timeout_seconds(value: str | float, name: str = "--timeout") -> float:
    """A deadline in seconds: a positive, finite number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds; got {value!r}")
    return seconds


def chosen(asked: list[str] | None, claimed: list[str], dialect: str | None = None) -> list[str]:
    """What a run covers: what was asked for, else what the candidate claims, within ``dialect``; in another
    library's dialect, its rules that the candidate's Keras rules compute (Keras's Adam is torch's Adam without
    maximize or an L2 decay: :mod:`reference.rules.translation`)."""
    out = list(asked or (translation.reachable(claimed) if dialect else claimed))
    return [a for a in out if a in DIALECTS[dialect]] if dialect else out


def is_pattern(entry: str) -> bool:
    """An expected-failures entry with shell wildcards (``adam/float32/fixtures/*``)."""
    return any(c in entry for c in "*?[")


def expected_failure(entries: Mapping[str, str], key: str) -> tuple[str, str] | None:
    """The entry that expects the check ``key`` to fail, and its reason: the exact entry, else the first pattern
    that matches it."""
    if key in entries:
        return key, entries[key]
    return next(((entry, reason) for entry, reason in entries.items()
                 if is_pattern(entry) and fnmatch.fnmatchcase(key, entry)), None)


def write_xfail(path: Path, entries: Mapping[str, str]) -> None:
    """The expected-failures file, written atomically, one ``<entry>: <reason>`` per line."""
    from optimizer_conformance.conformance.files import write_atomically

    header = "# Expected failures of the optconf conformance items: '<algorithm>/<dtype>/<check>: <reason>' per line\n"
    write_atomically(path, header + "".join(f"{entry}: {reason}\n" for entry, reason in entries.items()),
                     encoding="utf-8")


def read_xfail(path: Path) -> dict[str, str]:
    """An expected-failures file: ``<algorithm>/<dtype>/<check>: <reason>`` per line, ``#`` comments.

    A missing, unreadable, non-UTF-8 or malformed file is a ``ValueError`` naming the file (and line).
    """
    if not path.exists():
        raise ValueError(f"optconf_xfail: {path} does not exist (pytest --optconf-xfail-update writes it from a run)")
    if not path.is_file():
        raise ValueError(f"optconf_xfail: {path} is not a file")
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte {error.start}); expected "
                         "'<algorithm>/<dtype>/<check>: <reason>' lines") from None
    except OSError as error:
        raise ValueError(f"optconf_xfail: {path} cannot be read: {error.strerror or error}") from None
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, reason = line.partition(":")
        if "\x00" in line or not sep or not reason.strip() or key.count("/") < 2:
            raise ValueError(f"{path}:{number}: expected '<algorithm>/<dtype>/<check>: <reason>'; got {line!r}")
        entries[key.strip()] = reason.strip()
    return entries
