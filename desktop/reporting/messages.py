"""Decoding reporting frames, including types this checkout's protocol module may not know yet.

The protocol says a client must skip a message type it does not know, not drop the socket. On a
reporting stream a skipped event still carries a ``seq``, and ignoring that would look like a gap;
so an unknown reporting event becomes an ``UnknownReportingEvent`` that only advances the stream.
``EventQueueStatistics`` is decoded here when ``server_stub.protocol`` does not define it yet.
"""

from __future__ import annotations

import msgspec

from server_stub import protocol as p


class QueueStatistics(msgspec.Struct, forbid_unknown_fields=False):
    queue: str
    waiting: int
    longest_wait_ms: int
    offered: int
    answered: int
    abandoned: int
    service_level: float | None
    service_level_target_ms: int


class EventQueueStatistics(msgspec.Struct, forbid_unknown_fields=False):
    """Fallback for servers ahead of this checkout's protocol module (same name, same fields)."""

    server: str
    seq: int
    queues: list[QueueStatistics]
    at_ms: int | None = None


class UnknownReportingEvent(msgspec.Struct):
    """A numbered reporting event of a type this client does not know: it only advances ``seq``."""

    type: str
    server: str
    seq: int


_FALLBACKS = {"EventQueueStatistics": EventQueueStatistics}


def decode_frame(frame: str | bytes):
    """A server frame as a message; unknown reporting types are tolerated (see module doc).

    Raises ``p.ProtocolError`` for frames that are not valid messages of a known type.
    """
    try:
        return p.decode_server(frame)
    except p.ProtocolError as exc:
        if exc.code != "unknown_type":
            raise
        raw = msgspec.json.decode(frame)
        kind = raw.get("type")
        fallback = _FALLBACKS.get(kind)
        try:
            if fallback is not None:
                return msgspec.convert(raw, fallback)
            if isinstance(raw.get("seq"), int) and isinstance(raw.get("server"), str):
                return UnknownReportingEvent(kind, raw["server"], raw["seq"])
        except msgspec.ValidationError as bad:
            raise p.ProtocolError("bad_message", f"{kind}: {bad}") from None
        raise
