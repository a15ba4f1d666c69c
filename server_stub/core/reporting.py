"""The reporting stream of one server: numbered events, a bounded replay buffer, its subscribers.

Every reporting event (agent logins, logouts, state changes, interaction events and queue
statistics) takes the next ``seq`` of one counter; a consumer that lost its socket resumes after
the last ``seq`` it saw, or gets a snapshot when the buffer no longer reaches back that far.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from .. import protocol as p
from .io import ConnId


class ReportingStream:
    def __init__(self, server_name: str, capacity: int, stream_id: str) -> None:
        self.server = server_name
        self.stream_id = stream_id  # new on every start: a resume across restarts gets a snapshot
        self.seq = 0
        self.buffer: deque[tuple[int, str]] = deque(maxlen=capacity)
        self.subscribers: set[ConnId] = set()

    def publish(self, make: Callable[[int], p.Message]) -> str:
        """Number, encode and keep the event ``make(seq)``; the caller fans the frame out."""
        self.seq += 1
        frame = p.encode(make(self.seq))
        self.buffer.append((self.seq, frame))
        return frame

    def replay_from(self, seq: int) -> list[str] | None:
        """Frames after ``seq``, or None when the buffer no longer reaches back that far."""
        if seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.buffer or self.buffer[0][0] > seq + 1:
            return None
        return [frame for s, frame in self.buffer if s > seq]
