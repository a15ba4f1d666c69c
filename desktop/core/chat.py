"""The desktop's side of chats and email drafts (sans-I/O; ``AgentSession`` drives it).

Per interaction in hand: the transcript as the servers committed it (``seq`` -> line, each line
once), the agent's lines not yet committed (the *outbox*: journalled with their ``line_id``, sent
in order to the primary holding the chat, sent again after a failover until one is answered; a
server knows a line by its id, so a re-send is never a second line), and the reply draft (the
whole text, last write wins, carried by a failover login like the notes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server_stub import protocol as p

from . import events as ev

MAX_LINE_CHARS = 1_000  # server_stub/core/chat.py: MAX_CHAT_LINE_CHARS (the server refuses longer)


@dataclass(eq=False)
class OutLine:
    """An agent line typed and not yet committed by a server."""

    line_id: str
    text: str
    attempts: int = 0
    wire_id: str | None = None
    sent_on: ev.Link | None = None


@dataclass(eq=False)
class Chat:
    lines: dict[int, p.ChatLine] = field(default_factory=dict)  # seq -> line
    ids: set[str] = field(default_factory=set)  # line ids in ``lines``
    outbox: list[OutLine] = field(default_factory=list)
    draft: str = ""
    draft_saved: str = ""  # the draft text a server acknowledged (or a login carried)
    draft_wire: str | None = None  # request id of the draft save in flight
    draft_sent: str = ""  # and its text
    draft_on: ev.Link | None = None
    carried: str | None = None  # the draft the latest login request carried (saved once it is answered)

    def ordered(self) -> list[p.ChatLine]:
        return [self.lines[seq] for seq in sorted(self.lines)]


class ChatBook:
    """interaction id -> Chat, for the interactions in the agent's hands."""

    def __init__(self) -> None:
        self.chats: dict[str, Chat] = {}

    def chat(self, iid: str) -> Chat:
        chat = self.chats.get(iid)
        if chat is None:
            chat = self.chats[iid] = Chat()
        return chat

    def sending(self, iid: str) -> bool:
        """Has the agent lines of this chat not yet committed?"""
        chat = self.chats.get(iid)
        return chat is not None and bool(chat.outbox)

    def add(self, iid: str, line: p.ChatLine) -> bool:
        """A committed line; True when it is new here (not seen by seq or by id)."""
        chat = self.chat(iid)
        if line.seq in chat.lines or line.line_id in chat.ids:
            return False
        chat.lines[line.seq] = line
        chat.ids.add(line.line_id)
        chat.outbox = [out for out in chat.outbox if out.line_id != line.line_id]
        return True

    def carry(self, held: p.HeldInteraction) -> p.HeldInteraction:
        """The failover login's record of an interaction, with its transcript and draft."""
        chat = self.chats.get(held.interaction.interaction_id)
        if chat is None:
            return held
        chat.carried = chat.draft
        return p.HeldInteraction(interaction=held.interaction, accepted_ms=held.accepted_ms, notes=held.notes,
                                 transcript=chat.ordered(), draft=chat.draft)

    def forget_except(self, keep: set[str]) -> None:
        for iid in [i for i in self.chats if i not in keep]:
            del self.chats[iid]

    def info(self) -> tuple[ev.ChatInfo, ...]:
        return tuple(ev.ChatInfo(iid, tuple(chat.ordered()), tuple((o.line_id, o.text) for o in chat.outbox),
                                 chat.draft)
                     for iid, chat in self.chats.items())
