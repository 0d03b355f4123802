"""The settings of a run, validated alike for the command line and the pytest plugin.

Every bad value is one ``ValueError`` whose message names the setting, the value and what is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from optimizer_conformance.reference.rules import DIALECT_RULES

CHECK_FAMILIES = ("pipeline", "one-step", "fixtures", "explore", "api")
# What a candidate may run under as Keras's floatx() (the dtype of its learning-rate variable and schedules).
FLOATX = ("float32", "float64")
DIALECTS = DIALECT_RULES


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
    """What a run covers: what was asked for, else what the candidate claims, within ``dialect``."""
    out = list(asked or claimed)
    return [a for a in out if a in DIALECTS[dialect]] if dialect else out


def read_xfail(path: Path) -> dict[str, str]:
    """An expected-failures file: ``<algorithm>/<dtype>/<check>: <reason>`` per line, ``#`` comments.

    A missing, unreadable, non-UTF-8 or malformed file is a ``ValueError`` naming the file (and line).
    """
    if not path.exists():
        raise ValueError(f"optconf_xfail: {path} does not exist")
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
