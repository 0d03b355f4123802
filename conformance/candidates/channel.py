"""The worker's protocol channel: where it announces each call into the candidate before making it."""

from __future__ import annotations

from typing import BinaryIO

from optimizer_conformance.conformance.candidates import framing, messages

_STREAM: BinaryIO | None = None  # the protocol's output stream, once the worker serves


def open_channel(stream: BinaryIO) -> None:
    global _STREAM
    _STREAM = stream


def send(message: dict) -> None:
    """One message on the channel (:mod:`framing`)."""
    assert _STREAM is not None, "the channel is not open"
    framing.write(_STREAM, message)


def announce(call: str, step: int | None = None) -> None:
    """Tell the host which call into the candidate comes next (its deadline and its crash report use it)."""
    if _STREAM is not None:
        send(messages.call(call, step))
