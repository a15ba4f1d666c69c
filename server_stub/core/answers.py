"""Answers to retried requests: a request id answered once is answered the same way again.

Kept per socket and per agent (a retry may come on the agent's next socket, after a failover of
the link), bounded so a client cannot grow them.
"""

from __future__ import annotations

from collections import OrderedDict

ANSWER_CACHE = 256  # request ids remembered per socket and per agent


class AnswerCache:
    """The last ``capacity`` answers by request id, oldest forgotten first."""

    def __init__(self, capacity: int = ANSWER_CACHE) -> None:
        self._frames: OrderedDict[str, str] = OrderedDict()
        self._capacity = capacity

    def get(self, request_id: str) -> str | None:
        return self._frames.get(request_id)

    def remember(self, request_id: str, frame: str) -> None:
        self._frames[request_id] = frame
        if len(self._frames) > self._capacity:
            self._frames.popitem(last=False)

    def __len__(self) -> int:
        return len(self._frames)
