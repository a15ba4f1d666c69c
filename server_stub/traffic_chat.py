"""The customers of the traffic source's chats (``interaction-server traffic``).

Once a chat is in an agent's hands (reported ``accepted`` or ``adopted``), its customer types
``chat_lines`` scripted lines, one every ``chat_interval`` seconds, and answers each agent line
(``EventChatMessage``) after ``chat_reply_delay`` seconds, at most ``chat_replies`` times. A line is
sent to the site whose reporting stream last said the chat is in an agent's hands there
(``accepted``, ``adopted``), again (backing off from ``RETRY_S`` to ``RETRY_MAX_S``) until it
answers; the next line waits for that answer. A site that refuses a line (the chat is not, or no
longer, in hand there: each refusal counts in that socket's error budget) gets it again only once
its stream says it holds the chat, or when the back-off has reached its longest, when every site
is tried. So a failover neither loses nor reorders the customer's lines: they wait here while no
site holds the chat (docs/protocol.md, "Chat and email").

``ChatLedger`` is the bookkeeping, free of sockets and clocks: what the customer sent and had
answered, the agent lines it saw, and the final transcript the completing server sent
(``EventChatTranscript{final}``), checked line by line: every answered customer line and every
agent line seen is there once, in order, numbered 1..n. ``ChatCustomers`` is the asyncio part.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from . import protocol as p

RETRY_S = 0.3  # a line no site took is sent again after this, doubling up to RETRY_MAX_S
RETRY_MAX_S = 3.0
MAX_SAMPLES = 5  # lost (and duplicated or disordered) lines described in the summary, at most
_SCRIPT = ("Hi, I have a question about my order.", "It was due on Monday and has not arrived.",
           "The order number is in my account.", "Can you send it again or refund it?", "Thanks for your help.")
_REPLIES = ("OK, thank you.", "Yes, that's right.", "Sure, go ahead.", "I see.")


@dataclass
class ChatRecord:
    iid: str
    typed: list[tuple[str, str]] = field(default_factory=list)  # (line id, text) in the order typed
    acked: dict[str, int] = field(default_factory=dict)  # line id -> seq the server answered
    refused: dict[str, str] = field(default_factory=dict)  # line id -> a final refusal's code
    agent_lines: dict[str, int] = field(default_factory=dict)  # agent line id -> seq, as delivered
    agent_deliveries: int = 0  # EventChatMessage frames of agent lines, repeats included
    final: list[p.ChatLine] | None = None
    holder: str | None = None  # the site whose stream last said the chat is in hand there ("": it moved)
    # Where and when (wall ms) each answered customer line was acked and each agent line first
    # delivered, and the site that sent the final transcript: the samples of a loss say so.
    acked_at: dict[str, tuple[str, int]] = field(default_factory=dict)
    agent_at: dict[str, tuple[str, int]] = field(default_factory=dict)
    final_from: tuple[str, int] | None = None
    scripted: int = 0
    replies: int = 0
    ended: bool = False


class ChatLedger:
    def __init__(self) -> None:
        self.chats: dict[str, ChatRecord] = {}

    def chat(self, iid: str) -> ChatRecord:
        record = self.chats.get(iid)
        if record is None:
            record = self.chats[iid] = ChatRecord(iid)
        return record

    def next_line(self, iid: str) -> tuple[str, str] | None:
        """The customer's first line not yet answered (nor refused for good)."""
        record = self.chat(iid)
        return next(((i, t) for i, t in record.typed if i not in record.acked and i not in record.refused), None)

    def type(self, iid: str, text: str) -> str:
        record = self.chat(iid)
        line_id = f"cust-{iid}-{len(record.typed) + 1}"[:64]
        record.typed.append((line_id, text))
        return line_id

    def answered(self, iid: str, line_id: str, seq: int | None, code: str | None, site: str = "",
                 at_ms: int = 0) -> None:
        record = self.chat(iid)
        if code is None and seq is not None:
            record.acked.setdefault(line_id, seq)
            record.acked_at.setdefault(line_id, (site, at_ms))
        elif code in ("chat_line_too_long", "transcript_full", "not_a_chat"):
            record.refused[line_id] = code

    def agent_line(self, iid: str, line: p.ChatLine, site: str = "", at_ms: int = 0) -> bool:
        """An agent line delivered; True when it is new (the customer answers it)."""
        record = self.chat(iid)
        record.agent_deliveries += 1
        if line.line_id in record.agent_lines:
            return False
        record.agent_lines[line.line_id] = line.seq
        record.agent_at[line.line_id] = (site, at_ms)
        return True

    def final(self, iid: str, lines: list[p.ChatLine], site: str = "", at_ms: int = 0) -> None:
        record = self.chat(iid)
        if record.final is None:
            record.final_from = (site, at_ms)
        record.final = list(lines)
        record.ended = True

    def problems(self, record: ChatRecord) -> tuple[int, int, int]:
        """(lost, duplicated, out of order) lines of one chat with a final transcript."""
        final = record.final or []
        ids = [line.line_id for line in final]
        duplicated = len(ids) - len(set(ids)) + (len(final) - len({line.seq for line in final}))
        present = set(ids)
        lost = sum(1 for i in record.acked if i not in present) + sum(1 for i in record.agent_lines if i not in present)
        customer_order = [i for i in ids if i in record.acked]
        expected = [i for i, _ in record.typed if i in record.acked]
        seqs = [line.seq for line in final]
        out_of_order = int(customer_order != expected) + int(seqs != list(range(1, len(seqs) + 1)))
        return lost, duplicated, out_of_order

    def samples(self, record: ChatRecord) -> list[dict[str, object]]:
        """The lines of one chat missing from its final transcript: who sent each, which site
        answered (a customer line) or delivered (an agent line) it and when (wall ms), and what the
        final transcript held (seq, line id, sender), from which site, when."""
        present = {line.line_id for line in record.final or []}
        missing = [(i, "customer", seq, record.acked_at.get(i)) for i, seq in record.acked.items() if i not in present]
        missing += [(i, "agent", seq, record.agent_at.get(i)) for i, seq in record.agent_lines.items()
                    if i not in present]
        final_from = record.final_from or ("", 0)
        transcript = [[line.seq, line.line_id, line.sender] for line in record.final or []]
        return [{"chat": record.iid, "line_id": i, "sender": sender, "seq": seq,
                 "site": (where or ("", 0))[0], "at_ms": (where or ("", 0))[1],
                 "final_from": final_from[0], "final_at_ms": final_from[1], "final": transcript}
                for i, sender, seq, where in missing]

    def summary(self, chats_submitted: Iterable[str] = ()) -> dict[str, object]:
        records = list(self.chats.values())
        checked = [r for r in records if r.final is not None]
        lost = duplicated = disorder = 0
        samples: list[dict[str, object]] = []
        disordered: list[dict[str, object]] = []
        for record in checked:
            a, b, c = self.problems(record)
            lost, duplicated, disorder = lost + a, duplicated + b, disorder + c
            if a and len(samples) < MAX_SAMPLES:
                samples += self.samples(record)[:MAX_SAMPLES - len(samples)]
            if (b or c) and len(disordered) < MAX_SAMPLES:
                disordered.append({"chat": record.iid, "typed": [i for i, _ in record.typed if i in record.acked],
                                   "final": [[line.seq, line.line_id, line.sender] for line in record.final or []]})
        unchecked = sorted(r.iid for r in records if r.final is None and (r.acked or r.agent_lines))
        return {
            "chats": len(records),
            "chat_customer_lines": sum(len(r.acked) for r in records),
            "chat_agent_lines": sum(len(r.agent_lines) for r in records),
            "chat_transcripts_checked": len(checked),
            "chat_lines_lost": lost,
            "chat_lines_duplicated": duplicated,
            "chat_lines_out_of_order": disorder,
            "chat_lines_refused": sum(len(r.refused) for r in records),
            # Typed by the customer and never taken: the agent ended the chat first (not a loss).
            "chat_lines_after_end": sum(1 for r in records for i, _ in r.typed
                                        if i not in r.acked and i not in r.refused),
            "chats_without_final_transcript": unchecked,
            "chat_lost_samples": samples,
            "chat_disorder_samples": disordered,
        }


def _wall_ms() -> int:
    return int(time.time() * 1000)


class ChatSite(Protocol):
    """What a customer needs of the carrier's link to one site (``traffic.SiteLink``)."""

    @property
    def up(self) -> asyncio.Event: ...

    @property
    def name(self) -> str: ...

    async def send_chat(self, iid: str, line_id: str, text: str) -> bool: ...


@dataclass
class ChatOptions:
    lines: int = 3  # scripted customer lines per chat
    interval: float = 1.0  # seconds between them
    reply_delay: float = 0.3  # seconds before the customer answers an agent line
    replies: int = 3  # answers per chat at most


class ChatCustomers:
    """One task per chat in hand, typing and answering, until the chat ends."""

    def __init__(self, options: ChatOptions, ledger: ChatLedger, sites: Callable[[], list[ChatSite]]) -> None:
        self.options, self.ledger, self.sites = options, ledger, sites
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.wake: dict[str, asyncio.Event] = {}
        self._texts = itertools.count()

    def in_hand(self, iid: str, site: str | None = None) -> None:
        """The chat is in an agent's hands at ``site`` (its stream said ``accepted`` or ``adopted``)."""
        if site is not None:
            self.ledger.chat(iid).holder = site
            self._poke(iid)
        if iid not in self.tasks and not self.ledger.chat(iid).ended:
            self.wake[iid] = asyncio.Event()
            self.tasks[iid] = asyncio.get_running_loop().create_task(self._customer(iid))

    def answered(self, iid: str, line_id: str, seq: int | None, code: str | None, site: str | None = None) -> None:
        self.ledger.answered(iid, line_id, seq, code, site or "", _wall_ms())
        record = self.ledger.chat(iid)
        if code == "unknown_interaction" and site is not None and site == record.holder:
            record.holder = ""  # it moved: wait for a stream to say where (or for the longest back-off)
        if code is None or line_id in record.refused:
            self._poke(iid)  # the next line (a site not holding the chat refuses: the retry waits)

    def agent_line(self, iid: str, line: p.ChatLine, site: str = "") -> None:
        if self.ledger.agent_line(iid, line, site, _wall_ms()):
            record = self.ledger.chat(iid)
            if record.replies < self.options.replies:
                record.replies += 1
                asyncio.get_running_loop().call_later(self.options.reply_delay, self._reply, iid)

    def ended(self, iid: str, lines: list[p.ChatLine] | None, site: str = "") -> None:
        if lines is not None:
            self.ledger.final(iid, lines, site, _wall_ms())
        else:
            self.ledger.chat(iid).ended = True
        self._poke(iid)

    def _reply(self, iid: str) -> None:
        if not self.ledger.chat(iid).ended:
            self.ledger.type(iid, _REPLIES[next(self._texts) % len(_REPLIES)])
            self._poke(iid)

    def _poke(self, iid: str) -> None:
        wake = self.wake.get(iid)
        if wake is not None:
            wake.set()

    async def _customer(self, iid: str) -> None:
        record, loop, options = self.ledger.chat(iid), asyncio.get_running_loop(), self.options
        next_scripted = loop.time()
        wake = self.wake[iid]
        retry, last = RETRY_S, None
        while not record.ended:
            now = loop.time()
            if record.scripted < options.lines and now >= next_scripted and self.ledger.next_line(iid) is None:
                self.ledger.type(iid, _SCRIPT[record.scripted % len(_SCRIPT)])
                record.scripted += 1
                next_scripted = now + options.interval
            line = self.ledger.next_line(iid)
            if line is not None:
                # The same line again (no site took it): back off, so that many chats waiting out a
                # failover do not flood the sites' rate limits.
                retry = min(retry * 2, RETRY_MAX_S) if line == last else RETRY_S
                last = line
                everywhere = record.holder is None or retry >= RETRY_MAX_S
                for site in self.sites():
                    if site.up.is_set() and (everywhere or site.name == record.holder):
                        await site.send_chat(iid, *line)
            wait = retry if line is not None else max(0.01, next_scripted - now) if record.scripted < options.lines \
                else None
            wake.clear()
            try:
                async with asyncio.timeout(wait):
                    await wake.wait()
            except TimeoutError:
                pass

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
