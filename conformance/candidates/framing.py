"""The worker protocol's framing: one JSON line per message, and its large arrays beside it as raw bytes.

A message is one line of JSON.  Its packed arrays (:class:`conformance.model.PackedArray`: a million elements as
``float.hex`` strings or base64 would take seconds to write, parse and read back) stand in the JSON as
``{"$attachment": k}``, and travel before the line as raw little-endian float64 bytes, announced by a header line::

    #attachments 8388616 524296
    <8388616 bytes><524296 bytes>{"states": [{"variables/large": {"$attachment": 0}, ...}, ...]}

Both sides write with :func:`write` and read with :func:`read` and :func:`parse`; nothing is unpickled.

Imports: the data model.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from optimizer_conformance.conformance.model import PackedArray

HEADER = b"#attachments"
ATTACHMENT = "$attachment"


def write(stream: BinaryIO, message: dict) -> None:
    """``message`` on ``stream``: its attachments' header and bytes, then its JSON line."""
    attachments: list[bytes] = []

    def attach(value: Any) -> dict:
        if isinstance(value, PackedArray):
            attachments.append(value.to_bytes())
            return {ATTACHMENT: len(attachments) - 1}
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    line = json.dumps(message, default=attach).encode() + b"\n"
    if attachments:
        stream.write(b" ".join([HEADER, *(str(len(a)).encode() for a in attachments)]) + b"\n")
        for attachment in attachments:
            stream.write(attachment)
    stream.write(line)
    stream.flush()


def read(stream: BinaryIO) -> tuple[bytes, list[bytes]] | None:
    """The next message's JSON line and its attachments; None at the end of the stream (or inside a message cut
    short).  ``ValueError`` on a header that is not one."""
    line = stream.readline()
    attachments = []
    if line.startswith(HEADER):
        sizes = line[len(HEADER):].split()
        if not sizes or not all(size.isdigit() for size in sizes):
            raise ValueError(f"a malformed attachments header: {line[:120]!r}")
        for size in map(int, sizes):
            data = stream.read(size)
            if len(data) != size:
                return None
            attachments.append(data)
        line = stream.readline()
    return (line, attachments) if line else None


def parse(line: bytes | str, attachments: list[bytes]) -> Any:
    """A message's JSON with each ``{"$attachment": k}`` its packed array; ``ValueError`` on junk."""
    def placed(obj: dict) -> Any:
        if ATTACHMENT not in obj:
            return obj
        k = obj[ATTACHMENT]
        if len(obj) != 1 or not isinstance(k, int) or not 0 <= k < len(attachments):
            raise ValueError(f"an attachment reference {obj!r} with {len(attachments)} attachments")
        return PackedArray.from_bytes(attachments[k])

    return json.loads(line, object_hook=placed)
