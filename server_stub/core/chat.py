"""Chat transcripts and reply drafts, kept beside the interactions (sans-I/O).

A transcript belongs to an interaction: the server where the interaction is in an agent's hands
numbers its lines (``seq`` from 1) and replicates them to its peers (``PeerChat``) before it
answers or delivers them, so a line anybody has seen survives the loss of either server. The peer
keeps its copy here too, under the same id, and a failover login that adopts the chat merges it
with the copy the desktop carries (``HeldInteraction.transcript``).

A line is known by its sender's ``line_id``: the same id sent again (a retry, a re-send after a
failover) is the same line, answered with its ``seq`` and never added twice.

Bounds (docs/protocol.md, "Limits"): a line is at most ``MAX_CHAT_LINE_CHARS`` characters, a
transcript at most ``MAX_TRANSCRIPT_LINES`` lines and ``MAX_TRANSCRIPT_CHARS`` characters (so a
failover login carrying it fits a frame); the store keeps at most ``MAX_CHATS`` transcripts,
forgetting the least recently touched first (an ended chat's copy is dropped when it ends).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .. import protocol as p

MAX_CHAT_LINE_CHARS = 1_000
MAX_TRANSCRIPT_LINES = 200
MAX_TRANSCRIPT_CHARS = 10_000
MAX_CHATS = 4_096


class ChatRefusal(Exception):
    def __init__(self, code: p.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: p.ErrorCode = code
        self.message = message


@dataclass(eq=False)
class Transcript:
    lines: list[p.ChatLine] = field(default_factory=list)
    by_id: dict[str, p.ChatLine] = field(default_factory=dict)
    chars: int = 0
    draft: str = ""
    # Line ids answered here or taken over by an adopting login: such a line is never taken back
    # (a refusal of another copy of it by a peer does not remove it).
    committed: set[str] = field(default_factory=set)

    @property
    def last_seq(self) -> int:
        return self.lines[-1].seq if self.lines else 0

    def _add(self, line: p.ChatLine) -> None:
        self.lines.append(line)
        self.by_id[line.line_id] = line
        self.chars += len(line.text)


def check_line(text: str, transcript: Transcript | None) -> None:
    """Refuse a line over the bounds (ChatRefusal with the error code to answer)."""
    if len(text) > MAX_CHAT_LINE_CHARS:
        raise ChatRefusal("chat_line_too_long", f"a chat line is at most {MAX_CHAT_LINE_CHARS} characters; this one "
                                                f"has {len(text)}: split it")
    if transcript is not None and (len(transcript.lines) >= MAX_TRANSCRIPT_LINES
                                   or transcript.chars + len(text) > MAX_TRANSCRIPT_CHARS):
        raise ChatRefusal("transcript_full", f"the transcript holds {len(transcript.lines)} lines, "
                                             f"{transcript.chars} characters (at most {MAX_TRANSCRIPT_LINES} lines, "
                                             f"{MAX_TRANSCRIPT_CHARS} characters): continue by another channel")


class ChatStore:
    """interaction id -> Transcript, for chats held here and copies of chats held at a peer."""

    def __init__(self, max_chats: int = MAX_CHATS) -> None:
        self.max_chats = max_chats
        self._chats: OrderedDict[str, Transcript] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chats)

    def get(self, iid: str) -> Transcript | None:
        return self._chats.get(iid)

    def _touch(self, iid: str) -> Transcript:
        chat = self._chats.get(iid)
        if chat is None:
            chat = self._chats[iid] = Transcript()
            while len(self._chats) > self.max_chats:
                self._chats.popitem(last=False)
        self._chats.move_to_end(iid)
        return chat

    def append(self, iid: str, line_id: str, sender: p.ChatSender, text: str, now_ms: int) -> tuple[p.ChatLine, bool]:
        """The line with this id: (line, True) when new (numbered next), (line, False) when known."""
        chat = self._chats.get(iid)
        known = chat.by_id.get(line_id) if chat is not None else None
        if known is not None:
            return known, False
        check_line(text, chat)
        chat = self._touch(iid)
        line = p.ChatLine(seq=chat.last_seq + 1, line_id=line_id, sender=sender, text=text, at_ms=now_ms)
        chat._add(line)
        return line, True

    def set_draft(self, iid: str, draft: str) -> None:
        self._touch(iid).draft = draft

    def replicated(self, iid: str, lines: list[p.ChatLine], draft: str | None, full: bool) -> None:
        """What a peer told of a chat held there (``full``: the whole transcript)."""
        if full:
            self._chats.pop(iid, None)
        chat = self._touch(iid)
        self._merge(chat, lines)
        if draft is not None:
            chat.draft = draft

    def adopt(self, iid: str, carried: list[p.ChatLine], draft: str) -> Transcript:
        """A failover login brings the chat with the lines its desktop has: the union of those and
        this server's copy, by ``line_id``. The desktop's draft wins (it is the newest text)."""
        chat = self._touch(iid)
        self._merge(chat, carried)
        if draft:
            chat.draft = draft
        return chat

    @staticmethod
    def _merge(chat: Transcript, lines: list[p.ChatLine]) -> None:
        """Add the lines not known by id. Every copy's numbers come from the one server that held
        the chat at the time, so they agree; a line whose number is taken by another line (a copy
        that missed a commit made while the peers were apart) is numbered after the last."""
        new = [line for line in sorted(lines, key=lambda line: line.seq) if line.line_id not in chat.by_id]
        if not new:
            return
        taken = {line.seq for line in chat.lines}
        merged = list(chat.lines)
        late = []
        for line in new:
            if line.seq in taken:
                late.append(line)
            else:
                merged.append(line)
                taken.add(line.seq)
        merged.sort(key=lambda line: line.seq)
        chat.lines, chat.by_id, chat.chars = [], {}, 0
        for line in merged:
            chat._add(line)
        for line in late:
            chat._add(p.ChatLine(seq=chat.last_seq + 1, line_id=line.line_id, sender=line.sender, text=line.text,
                                 at_ms=line.at_ms))

    def discard(self, iid: str, line_id: str) -> None:
        """Forget a line that was never committed (its sender is told to send it elsewhere)."""
        chat = self._chats.get(iid)
        if chat is not None and line_id in chat.by_id:
            kept = [line for line in chat.lines if line.line_id != line_id]
            chat.lines, chat.by_id, chat.chars = [], {}, 0
            for line in kept:
                chat._add(line)

    def drop(self, iid: str) -> Transcript | None:
        return self._chats.pop(iid, None)
