"""The world's clock, its processes and the links between them (see tests/world/world.py).

``Loop`` is a fake clock with an event heap: nothing runs unless the test advances time. A
``Process`` (a server, a desktop, the carrier) runs what reaches it at once, buffers it while frozen
(SIGSTOP: the kernel keeps the bytes, the process reads them all when thawed) and drops it once
killed. A ``Link`` is one connection from a dialling process to a site: two FIFO directions with
the site's latency, a close that follows what was queued before it, a cut that holds both
directions until it is restored (TCP retransmits: a cut link delays, it never loses a frame of a
connection that survives), and a reset that both ends learn at once.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .site import Site

WALL0 = 1_700_000_000_000
BASE_LATENCY = 0.002


class Loop:
    """Simulated time: ``now`` in seconds, ``wall_ms`` derived from it, and what is due when."""

    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()

    @property
    def wall_ms(self) -> int:
        return WALL0 + round(self.now * 1000)

    def at(self, when: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (max(when, self.now), next(self._seq), fn, args))

    def soon(self, fn: Callable[..., None], *args: Any) -> None:
        """After what is already due now (an asynchronous callback of a transport)."""
        self.at(self.now, fn, *args)

    def run_until(self, end: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= end:
            when, _, fn, args = heapq.heappop(heap)
            self.now = max(self.now, when)
            fn(*args)
        self.now = max(self.now, end)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)


class Process:
    """Something that runs inputs: at once, or (frozen) when thawed, or (killed) never. Every
    input is addressed to one incarnation, so nothing of a killed process reaches its restart."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.alive = True
        self.frozen = False
        self.incarnation = 1
        self._inbox: list[tuple[Callable[..., None], tuple[Any, ...]]] = []

    def run(self, incarnation: int, fn: Callable[..., None], *args: Any) -> None:
        if not self.alive or incarnation != self.incarnation:
            return
        if self.frozen:
            self._inbox.append((fn, args))
        else:
            fn(*args)

    def later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        """A timer of this incarnation (late while frozen, gone if killed)."""
        self.loop.at(self.loop.now + delay, self.run, self.incarnation, fn, *args)

    def soon(self, fn: Callable[..., None], *args: Any) -> None:
        """Run after what is due now: a transport's asynchronous callback."""
        self.later(0.0, fn, *args)

    def freeze(self) -> None:
        self.frozen = True

    def thaw(self) -> None:
        """SIGCONT: everything that arrived meanwhile is processed now, in arrival order."""
        self.frozen = False
        while self._inbox and self.alive and not self.frozen:
            fn, args = self._inbox.pop(0)
            fn(*args)

    def die(self) -> None:
        self.alive = False
        self.frozen = False
        self._inbox.clear()

    def reborn(self) -> None:
        self.alive = True
        self.incarnation += 1


@dataclass(eq=False)
class Link:
    """One connection from ``dialler`` to ``site`` (a desktop's, a reporting client's or a peer's
    outbound link). The dialler's callbacks run in the dialler's process; the site's side is a
    connection id of the site's transport."""

    site: Site
    dialler: Process
    on_open: Callable[[Link], None]
    on_frame: Callable[[Link, Any], None]
    on_close: Callable[[Link, int | None], None]
    kind: str  # "desk", "report" or "peer"
    tag: Any = None  # the dialler's own name for it (a desktop's link id)
    dialler_incarnation: int = 0
    site_incarnation: int = 0
    conn_id: int = 0  # the site's connection id, once it accepted
    accepted: bool = False  # the site's transport holds it
    dialler_open: bool = True
    cut: bool = False
    cut_down: bool = False  # only the site's frames to the dialler are held (a starved reader)
    held: list[tuple[str, Callable[..., None], tuple[Any, ...]]] = field(default_factory=list)
    _due: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dialler_incarnation = self.dialler.incarnation

    @property
    def latency(self) -> float:
        return self.site.latency_to(self)

    # ------------------------------------------------------------------ one direction

    def _fifo(self, direction: str, extra: float = 0.0) -> float:
        at = max(self.site.loop.now + self.latency + extra, self._due.get(direction, 0.0))
        self._due[direction] = at
        return at

    def _carry(self, direction: str, fn: Callable[..., None], *args: Any, extra: float = 0.0,
               fifo: bool = True) -> None:
        if self.cut or (self.cut_down and direction == "down"):
            self.held.append((direction, fn, args))
            return
        loop = self.site.loop
        loop.at(self._fifo(direction, extra) if fifo else loop.now + self.latency + extra, fn, *args)

    def _to_site(self, fn: Callable[..., None], *args: Any) -> None:
        self.site.run(self.site_incarnation, fn, *args)

    def _to_dialler(self, fn: Callable[..., None], *args: Any) -> None:
        self.dialler.run(self.dialler_incarnation, fn, *args)

    # ------------------------------------------------------------------ the dialler's side

    def send(self, payload: Any, extra: float = 0.0, fifo: bool = True) -> None:
        """From the dialler to the site (text, as the site's core reads it)."""
        if self.dialler_open:
            self._carry("up", self._to_site, self.site.link_frame, self, payload, extra=extra, fifo=fifo)

    def close(self) -> None:
        """The dialler closes (or gives up) the link; the site hears it after what was sent."""
        if self.dialler_open:
            self.dialler_open = False
            self._carry("up", self._to_site, self.site.link_gone, self)

    # ------------------------------------------------------------------ the site's side

    def deliver(self, payload: Any, extra: float = 0.0, fifo: bool = True) -> None:
        """From the site to the dialler (a decoded message for desktops, text otherwise)."""
        if self.accepted:
            self._carry("down", self._to_dialler, self._frame_arrived, payload, extra=extra, fifo=fifo)

    def _frame_arrived(self, payload: Any) -> None:
        if self.dialler_open:
            self.on_frame(self, payload)

    def closed_by_site(self, code: int | None) -> None:
        """The site's transport closes it (after what it queued) or dies (reset, code 1006)."""
        if not self.accepted:
            return
        self.accepted = False
        self._carry("down", self._to_dialler, self._close_arrived, code)

    def _close_arrived(self, code: int | None) -> None:
        if self.dialler_open:
            self.dialler_open = False
            self.on_close(self, code)

    def opened(self) -> None:
        """The site accepted: the dialler learns it one latency later."""
        self.accepted = True
        self._carry("down", self._to_dialler, self._open_arrived)

    def _open_arrived(self) -> None:
        if self.dialler_open:
            self.on_open(self)

    def refused(self) -> None:
        """Nobody listens (the site is down): the dialler learns it one latency later."""
        self.site.loop.at(self.site.loop.now + self.latency, self._to_dialler, self._close_arrived, None)

    # ------------------------------------------------------------------ faults

    def hold(self) -> None:
        self.cut = True

    def hold_down(self) -> None:
        """Only the site's frames to the dialler are held (the dialler reads nothing, the site hears
        it): a live server the desktop cannot hear for a while, a false suspicion in the making."""
        self.cut_down = True

    def restore(self) -> None:
        """The cut heals: what was held goes on, in order, as TCP retransmits it."""
        self.cut = self.cut_down = False
        held, self.held = self.held, []
        for direction, fn, args in held:
            self._carry(direction, fn, *args)

    def reset(self) -> None:
        """A reset (RST): both ends learn it now; what was in flight is lost."""
        self.held.clear()
        self._due.clear()
        if self.accepted:
            self.accepted = False
            self.site.run(self.site_incarnation, self.site.link_gone, self)
        if self.dialler_open:
            self.site.loop.soon(self._to_dialler, self._close_arrived, 1006)
