"""Decoding reporting frames, including reporting events of types this client does not know.

Every known type is decoded with the wire models of ``server_stub.protocol``, which already ignore
unknown fields. The protocol says a client must skip a message type it does not know, not drop the
socket; on a reporting stream a skipped event still carries a ``seq``, and ignoring that would look
like a gap, so an unknown reporting event becomes an ``UnknownReportingEvent`` that only advances
the stream.
"""

from __future__ import annotations

import msgspec

from server_stub import protocol as p


class UnknownReportingEvent(msgspec.Struct):
    """A numbered reporting event of a type this client does not know: it only advances ``seq``."""

    type: str
    server: str
    seq: int


def decode_frame(frame: str | bytes) -> p.ServerMessage | UnknownReportingEvent:
    """A server frame as a message; unknown reporting types are tolerated (see module doc).

    Raises ``p.ProtocolError`` for frames that are not valid messages of a known type.
    """
    try:
        return p.decode_server(frame)
    except p.ProtocolError as exc:
        if exc.code != "unknown_type":
            raise
        raw = msgspec.json.decode(frame)  # valid JSON with a string ``type``: _classify checked it
        if isinstance(raw.get("seq"), int) and isinstance(raw.get("server"), str):
            return UnknownReportingEvent(raw["type"], raw["server"], raw["seq"])
        raise
