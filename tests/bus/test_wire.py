"""The broker connection's coalescing writer (server_stub/bus/wire.py), without a broker: the broker
gets every byte aiormq wrote, in order, in fewer socket writes, and nothing is left behind at a
close. (On a real broker every test in this folder runs through it.)"""

from __future__ import annotations

import asyncio
from typing import Any

from server_stub.bus.wire import MAX_HELD, _CoalescingTransport


class Socket(asyncio.Transport):
    """What the socket's transport was asked to do."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_burst_reaches_the_socket_as_one_write_in_order():
    async def main() -> None:
        socket = Socket()
        wire = _CoalescingTransport(socket, asyncio.get_running_loop())
        for n in range(5):
            wire.write(b"frame%d;" % n)
        assert socket.writes == [], "nothing yet: the rest of the burst may come"
        await settle()
        assert socket.writes == [b"frame0;frame1;frame2;frame3;frame4;"]
        wire.write(b"later")
        await settle()
        assert socket.writes[1:] == [b"later"], "an idle loop writes at once"

    asyncio.run(main())


def test_a_busy_loop_does_not_hold_writes_back_for_long():
    """Other callbacks due all the time (a busy site) or a big burst: written anyway."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        socket = Socket()
        wire = _CoalescingTransport(socket, loop)
        busy = True

        def spin() -> None:
            if busy:
                loop.call_soon(spin)

        spin()
        wire.write(b"offer")
        await settle()
        assert socket.writes == [b"offer"], "written within a few passes though the loop never idles"
        wire.write(b"x" * MAX_HELD)
        wire.write(b"y")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert b"".join(socket.writes) == b"offer" + b"x" * MAX_HELD + b"y"
        busy = False

    asyncio.run(main())


def test_a_close_writes_what_was_written_before_it_first():
    async def main() -> None:
        socket = Socket()
        wire = _CoalescingTransport(socket, asyncio.get_running_loop())
        wire.write(b"Connection.Close")
        wire.close()
        assert socket.writes == [b"Connection.Close"] and socket.closed
        await settle()
        assert socket.writes == [b"Connection.Close"], "once"

    asyncio.run(main())
