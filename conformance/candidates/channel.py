"""The worker's protocol channel: where it announces each call into the candidate before making it."""

from __future__ import annotations

import json
from typing import TextIO

from optimizer_conformance.conformance.candidates import messages

_STREAM: TextIO | None = None  # the protocol's output stream, once the worker serves


def open_channel(stream: TextIO) -> None:
    global _STREAM
    _STREAM = stream


def send(message: dict) -> None:
    """One JSON line on the channel."""
    assert _STREAM is not None, "the channel is not open"
    _STREAM.write(json.dumps(message) + "\n")
    _STREAM.flush()


def announce(call: str, step: int | None = None) -> None:
    """Tell the host which call into the candidate comes next (its deadline and its crash report use it)."""
    if _STREAM is not None:
        send(messages.call(call, step))
