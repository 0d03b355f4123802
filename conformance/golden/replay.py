"""Fixtures as cases of the ``fixtures`` check: found, loaded once, re-derived by the oracle, made into specs.

Imports: the data model, the catalogue, the fixture format and the generator (for re-derivation).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from optimizer_conformance.conformance.cases.catalogue import CORPUS
from optimizer_conformance.conformance.golden.format import Fixture, FixtureError, load
from optimizer_conformance.conformance.golden.generate import WIDER, rederive
from optimizer_conformance.conformance.model import Case, Profile, make_spec

# The corpus as installed: package data of optimizer_conformance.fixtures (the repository's fixtures/ folder).
FIXTURES = Path(str(resources.files("optimizer_conformance.fixtures")))
# A fixture longer than this runs in the deep profile only.
LONG = 100


def spec_for(fixture: Fixture, dtype: str, compile: str = "eager") -> dict:
    """A worker spec that replays ``fixture`` in ``dtype``."""
    if dtype not in fixture.budget_dtypes:
        raise ValueError(f"{fixture.path}: no budgets for {dtype}; it has {fixture.budget_dtypes}")
    doc = fixture.document
    return make_spec(fixture.algorithm, fixture.config, dtype, fixture.variables(), fixture.gradients(),
                     exclude=doc["exclude_from_weight_decay"], compile=compile, finalize=doc["finalize"],
                     floatx=doc["floatx"], **fixture.spec_options)


_VERIFIED: dict[tuple[str, str], str | None] = {}


def verify_against_oracle(fixture: Fixture) -> str | None:
    """Why ``fixture`` cannot be trusted (its first value or budget the oracle does not reproduce), or None.

    Re-derived once per file and content in a process: the fixtures check never judges against a file it
    has not re-derived, so a value or budget edited and re-hashed cannot make a candidate pass.
    """
    key = (fixture.path, fixture.document["sha256"])
    if key not in _VERIFIED:
        _VERIFIED[key] = rederive(fixture)
    return _VERIFIED[key]


_LOADED: dict[tuple[Path, int, int], Fixture | FixtureError] = {}


def _load(path: Path) -> Fixture:
    """A fixture loaded once per process and content (the corpus is read for every algorithm and dtype)."""
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        try:
            _LOADED[key] = load(path)
        except FixtureError as error:
            _LOADED[key] = error
    loaded = _LOADED[key]
    if isinstance(loaded, FixtureError):
        raise loaded
    return loaded


def replayed_in(name: str, budget_dtypes: Sequence[str], dtype: str, profile: Profile,
                dtypes: Sequence[str] | None = None) -> bool:
    """Whether the fixture ``name``, with budgets for ``budget_dtypes``, is replayed in ``dtype`` in a run of
    ``dtypes``: in each of them in a profile that runs every combination (and when the run's dtypes are not known);
    otherwise once, in one of the run's dtypes it has budgets for, turning with its name (as the pipeline's
    features turn through the dtypes), so every fixture is replayed and each dtype gets its share."""
    if dtype not in budget_dtypes:
        return False
    if profile.every_combination or dtypes is None:
        return True
    usable = [d for d in dtypes if d in budget_dtypes]
    return not usable or usable[zlib.crc32(name.encode()) % len(usable)] == dtype


def fixture_cases(algorithm: str, dtype: str, profile: Profile, directory: Path = FIXTURES,
                  dtypes: Sequence[str] | None = None) -> list[Case]:
    """A case per fixture of ``algorithm`` replayed in ``dtype`` in a run of ``dtypes`` (:func:`replayed_in`); a
    damaged one is a case with a problem."""
    cases = []
    for path in sorted(directory.glob("*.json")):
        try:
            fixture = _load(path)
        except FixtureError as error:
            cases.append(Case("fixtures", algorithm, dtype, None, path.stem, problem=str(error)))
            continue
        if fixture.algorithm != algorithm or not replayed_in(fixture.name, fixture.budget_dtypes, dtype, profile,
                                                             dtypes):
            continue
        if not profile.long_fixtures and len(fixture.document["gradients"]) > LONG:
            continue
        # A hash proves only that the file is as written: a value or budget edited and re-hashed would pass.
        problem = verify_against_oracle(fixture)
        if problem is not None:
            cases.append(Case("fixtures", algorithm, dtype, None, fixture.name, problem=problem))
            continue
        cases.append(Case("fixtures", algorithm, dtype, spec_for(fixture, dtype), fixture.name, fixture=fixture))
    return cases


def prepare(algorithms: list[str] | None = None, directory: Path = FIXTURES, profile: Profile | None = None) -> None:
    """Load and re-derive the fixtures of ``algorithms`` (all: None) that ``profile`` replays (every one: None)
    ahead of the check, into this process's caches: the command line does it while the worker starts (the
    framework's import takes seconds)."""
    for path in sorted(directory.glob("*.json")):
        try:
            fixture = _load(path)
        except FixtureError:
            continue  # reported by the check, with its case
        long = len(fixture.document["gradients"]) > LONG
        if (algorithms is None or fixture.algorithm in algorithms) and not (
                long and profile is not None and not profile.long_fixtures):
            verify_against_oracle(fixture)


def expected_fixtures(algorithm: str, dtype: str, profile: Profile, dtypes: Sequence[str] | None = None) -> int:
    """How many fixtures of the bundled corpus the fixtures check of ``algorithm`` in ``dtype`` should find in a run
    of ``dtypes``."""
    return sum(1 for t in CORPUS if t.algorithm == algorithm
               and replayed_in(t.name, WIDER[t.input_dtype], dtype, profile, dtypes)
               and (profile.long_fixtures or t.steps <= LONG))
