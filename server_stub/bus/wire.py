"""Fewer socket writes on a site's broker connection: one per burst of the event loop, not one per AMQP frame.

aiormq's writer hands every frame it sends (each publish, acknowledgement, channel call) to the
socket at once: one ``send()`` system call each. On loopback a ``send()`` also runs the broker's
side of TCP and wakes it, and py-spy on a site during ``bench/multisite.py --modes amqp`` (100
interactions/s) put 15-44 % of the process's samples in that call (docs/multisite.md,
"Per-message CPU"). ``CoalescingTransportFactory`` (aiormq's own extension point for transports)
opens the same connection as aiormq's TCP and TLS factories, but the writer it returns collects
what is written and gives it to the socket as one write once the event loop has no other callback
due (at most ``MAX_DEFER`` passes later, or at ``MAX_HELD`` bytes): the bytes and their order are
unchanged, only the number of system calls shrinks, and nothing waits on a timer (a pass runs the
callbacks that were due when it began; an idle loop writes at the next pass).

``connect`` is ``aio_pika.connect`` with this factory (aio-pika does not pass a transport factory
through to aiormq by itself).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection
from yarl import URL

# Passes a write may wait while more callbacks are due (their writes join it), and bytes held at
# most. A busy site's loop runs many short passes; writing once per pass still woke the broker
# (and, on 2 cores, often lost the CPU to it) for every few frames. Measured on bench/multisite.py
# (RabbitMQ, 2,000 agents, 100/s) back to back, 0 then 8: the write's share of a site's samples
# 34 % -> 13 %; docs/multisite.md, "Per-message CPU".
MAX_DEFER = 8
MAX_HELD = 256 * 1024


class _CoalescingTransport(asyncio.Transport):
    """Stands in front of the socket's transport for the ``StreamWriter``: ``write`` appends, and
    one callback writes what was appended once no other callback is due (the module docstring).
    Everything else is the real transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []
        self._size = 0
        self._scheduled = False
        self._deferred = 0
        self.writes = 0  # socket writes made (one per loop pass with something to write)
        self.frames = 0  # writes asked for

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self.frames += 1
        self._buffer.append(bytes(data))
        self._size += len(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        # asyncio's own loop keeps the callbacks due in ``_ready`` (another loop: written at once).
        ready = getattr(self._loop, "_ready", None)
        if ready and self._deferred < MAX_DEFER and self._size < MAX_HELD:
            self._deferred += 1  # more of this pass's work is due: what it writes goes along
            self._loop.call_soon(self._flush)
            return
        self._scheduled = False
        self._deferred = 0
        if not self._buffer:
            return
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        if not self._transport.is_closing():
            self.writes += 1
            self._transport.write(data)

    def close(self) -> None:
        self._deferred = MAX_DEFER
        self._flush()  # what was written before the close goes first (Connection.Close, say)
        self._transport.close()

    def abort(self) -> None:
        self._buffer.clear()
        self._size = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._deferred = MAX_DEFER
        self._flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._buffer))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingTransportFactory(aiormq.TransportFactory):
    """aiormq's TCP (``amqp://``) or TLS (``amqps://``) connection, written through
    ``_CoalescingTransport``. Built as ``asyncio.open_connection`` builds its pair."""

    def __init__(self) -> None:
        self.transports: list[_CoalescingTransport] = []  # the last one is the live connection's

    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        provider = kwargs.pop("ssl_context_provider", None)
        ssl = await provider.get_context() if url.scheme == "amqps" and provider is not None else None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(lambda: protocol, url.host or "localhost", url.port or 5672,
                                                        ssl=ssl, **kwargs)
        except OSError as e:
            raise aiormq.exceptions.AMQPConnectionError(*e.args) from e
        coalescing = _CoalescingTransport(transport, loop)
        self.transports[:] = [coalescing]
        return reader, asyncio.StreamWriter(coalescing, protocol, reader, loop)


class _Connection(aio_pika.Connection):
    """aio-pika's connection, with the transport factory handed to aiormq."""

    def __init__(self, url: URL, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        factory = kwargs.pop("transport_factory")
        super().__init__(url, loop, **kwargs)
        self.kwargs["transport_factory"] = factory


async def connect(url: URL, *, timeout: float, client_properties: dict[str, Any],
                  factory: CoalescingTransportFactory | None = None) -> AbstractConnection:
    """What ``aio_pika.connect(url, timeout=…, client_properties=…)`` does, with socket writes
    coalesced (the module docstring). Not through ``aio_pika.connect``: it would put the factory
    into the URL's query too."""
    connection = _Connection(url, client_properties=client_properties,
                             transport_factory=factory or CoalescingTransportFactory())
    await connection.connect(timeout=timeout)
    return connection
