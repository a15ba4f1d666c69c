"""The suite's servers listen on ports reserved for them (tests/support/servers.py): what that
relies on, checked on this machine's kernel, so a kernel that behaved otherwise would fail here
and not as a rare port clash in some other test."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

from tests.support.servers import release_ports, reserve_adjacent_ports, reserve_port


def test_a_reserved_port_is_given_to_no_one_else_and_a_server_may_listen_on_it_again_and_again():
    port = reserve_port()
    try:
        # Nothing that asks the kernel for a port gets it: a bind to port 0, an outgoing connection.
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(600)
            sockets = []
            try:
                for _ in range(250):
                    bound = socket.socket()
                    sockets.append(bound)
                    bound.bind(("127.0.0.1", 0))
                    client = socket.create_connection(listener.getsockname())
                    sockets += [client, listener.accept()[0]]
                    assert port not in (bound.getsockname()[1], client.getsockname()[1])
            finally:
                for s in sockets:
                    s.close()
        # Nor can another reservation (or any bind without SO_REUSEADDR) take it.
        with socket.socket() as other, pytest.raises(OSError) as taken:
            other.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE

        async def serve_twice():
            for _ in range(2):  # a server, then its restart (after a kill -9) on the same port
                server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port)
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                server.close()
                await server.wait_closed()
                # Between the two nobody listens: connecting is refused, as on a free port.
                with pytest.raises(ConnectionRefusedError):
                    await asyncio.open_connection("127.0.0.1", port)

        asyncio.run(serve_twice())
    finally:
        release_ports()
    # Given back: anyone may listen there now (with SO_REUSEADDR: the connections above linger in TIME_WAIT).
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_adjacent_reservations_are_adjacent_and_distinct():
    try:
        base = reserve_adjacent_ports(3)
        other = reserve_adjacent_ports(3)
        assert not {base, base + 1, base + 2} & {other, other + 1, other + 2}
    finally:
        release_ports()
