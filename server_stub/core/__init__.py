"""The interaction server's logic without I/O: fed inputs with the time, returns outputs.

No asyncio, no sockets, no clock reads (tests/server/test_core_imports.py keeps it so); the
asyncio transport (``server_stub.server``) and the simulated world (``tests/world``) drive it.
"""

from .io import CheckPassword, Close, ConnId, Now, Output, PeerClose, PeerRedial, PeerSend, Rehash, Send, StoreConfig
from .server_core import ServerCore

__all__ = ["CheckPassword", "Close", "ConnId", "Now", "Output", "PeerClose", "PeerRedial", "PeerSend", "Rehash",
           "Send", "ServerCore", "StoreConfig"]
