"""The harness's own files: the JSON Schemas it ships (read as package data), and the files it writes (fixtures,
reports), written atomically so that a failed write leaves the old file whole."""

from __future__ import annotations

import json
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path


@cache
def schema(name: str) -> dict:
    """A JSON Schema shipped in ``conformance/schemas/`` (``fixture-1``, ``report-1``)."""
    text = resources.files("optimizer_conformance.conformance").joinpath(f"schemas/{name}.schema.json").read_text()
    return json.loads(text)


def write_atomically(path: Path, text: str, encoding: str = "ascii") -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename (ASCII unless told:
    the fixtures and JSON reports are ASCII by construction).

    A failed write (disk full, a file-size limit, an interruption) leaves the old file as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding=encoding) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
