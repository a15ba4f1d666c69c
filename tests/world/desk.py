"""An agent desktop of the world: the real ``AgentSession`` driven as desktop/runner drives it, plus
what the world checks at the moment a desktop could break it.

Checked as it runs (an AssertionError at that moment):

- a ``RequestAgentLogin`` never leaves the desktop while a server holds the agent's login on a link
  the desktop still holds open (never logged in at two servers at once, at the moment it could
  break);
- no wire request id is sent twice, and nothing is sent on a link that is not open;
- every intent gets at most one outcome; ``IntentApplied(endpoint, epoch)`` only after that server
  really applied it at that epoch (acknowledged the state request, or a login carrying that state);
- time in state survives failover: two consecutive ``AgentStateChanged`` in the same state and
  reason carry the same ``since_ms``;
- ``LoginFailed`` only as ``stale_epoch``, once no running server would take the session's resume
  token but one that refused it already; the "user" then types the password again. ``LoggedOut``
  never happens (nobody logs out);
- a completion is never sent again after its ack, nor twice on one link; ``InteractionStarted``
  follows an accept or adoption some server reported for this agent (or, for an accept unanswered
  when its primary was lost, the login that carried it); an interaction ends at most once, and
  ``completed`` only when some server completed it (reported it, or is about to: a repeat of a
  completion still waiting for the peer's confirmation is answered at once).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from desktop.core import events as ev
from desktop.core.config import SessionConfig
from desktop.core.session import AgentSession
from server_stub import protocol as p
from server_stub.tokens import verify_token

from .net import Link, Process
from .site import PASSWORD, SECRET

if TYPE_CHECKING:
    from .world import World

_STATE_REQUESTS = (p.RequestAgentReady, p.RequestAgentNotReady, p.RequestAgentAfterCallWork)


class Desk(Process):
    def __init__(self, world: World, agent_id: str, config: SessionConfig, seed: int) -> None:
        super().__init__(world.loop)
        self.world = world
        self.agent_id = agent_id
        self.session = AgentSession(config, random.Random(seed))
        self.timers: dict[Hashable, float] = {}
        self.links: dict[int, Link] = {}
        self.client_open: set[int] = set()  # links the desktop holds open
        self.requests: dict[str, p.Request] = {}  # wire id -> what was sent
        # intents: intent id -> [(site, incarnation, epoch)] where a state request of it was applied
        self.applications: defaultdict[str, list[tuple[str, int, int | None]]] = defaultdict(list)
        self.logins: list[tuple[str, int, int | None, p.StateSnapshot | None]] = []  # acknowledged logins, same
        self.issued: list[tuple[str, ev.StateIntent]] = []
        self.outcome: dict[str, ev.Event | None] = {}
        self.shown: ev.AgentStateChanged | None = None
        self.login_failures = 0
        self.token_epoch: int | None = None  # of the resume token in the session's last login request
        self.token: str | None = None  # that token
        self.token_refused: dict[str, set[str]] = {}  # token -> sites that refused it as stale
        # interactions
        self.acked_ids: set[str] = set()  # request ids whose EventAck reached the desktop
        self.typed: dict[str, str] = {}  # id -> the notes the user typed last
        self.completing: dict[str, str] = {}  # id -> the notes the user's completion was given
        self.in_hand: set[str] = set()  # InteractionStarted seen, InteractionEnded not yet
        self.carried: set[str] = set()  # what the last login request carried
        self.ended: defaultdict[str, list[ev.InteractionEnded]] = defaultdict(list)
        self.ix_outcome: dict[str, ev.Event | None] = {}
        self.complete_sent: defaultdict[str, list[tuple[str, int]]] = defaultdict(list)  # id -> [(wire id, link)]

    def __repr__(self) -> str:
        return f"desk-{self.agent_id}"

    # ------------------------------------------------------------------ driving the session

    def feed(self, method: Callable[..., list[ev.Output]], *args: Any, **kwargs: Any) -> None:
        for out in method(*args, now=self.loop.now, wall_ms=self.loop.wall_ms, **kwargs):
            self.execute(out)

    def act(self, method: Callable[..., list[ev.Output]], *args: Any, **kwargs: Any) -> bool:
        """What the user does; nothing while the desktop is frozen."""
        if self.frozen:
            return False
        self.feed(method, *args, **kwargs)
        return True

    def execute(self, out: ev.Output) -> None:
        if isinstance(out, ev.SetTimer):
            self.timers[out.key] = out.at
            self.loop.at(out.at, self.run, self.incarnation, self._fire, out.key, out.at)
        elif isinstance(out, ev.CancelTimer):
            self.timers.pop(out.key, None)
        elif isinstance(out, ev.OpenLink):
            self.links[out.link] = self.world.dial(self, self.world.sites[out.endpoint], "desk", self._opened,
                                                   self._received, self._closed, tag=out.link)
        elif isinstance(out, ev.Send):
            self._sends(out.link, out.message)
        elif isinstance(out, ev.CloseLink):
            self.client_open.discard(out.link)
            self.links[out.link].close()
        else:
            assert isinstance(out, ev.Event), out
            self.observe(out)

    def _fire(self, key: Hashable, at: float) -> None:
        if self.timers.get(key) == at:
            del self.timers[key]
            self.feed(self.session.timer_fired, key)

    def _opened(self, link: Link) -> None:
        self.client_open.add(link.tag)
        self.feed(self.session.link_opened, link.tag)

    def _received(self, link: Link, message: p.Message) -> None:
        if isinstance(message, p.EventAck):
            self.acked_ids.add(message.request_id)
        elif isinstance(message, p.EventError) and message.code == "stale_epoch" and message.request_id:
            login = self.requests.get(message.request_id)
            if isinstance(login, p.RequestAgentLogin) and login.resume_token is not None:
                self.token_refused.setdefault(login.resume_token, set()).add(link.site.name)
        self.feed(self.session.message_received, link.tag, message)

    def _closed(self, link: Link, code: int | None) -> None:
        self.client_open.discard(link.tag)
        self.feed(self.session.link_closed, link.tag, code=code)

    # ------------------------------------------------------------------ checks on what leaves

    def _sends(self, link_id: int, message: p.Message) -> None:
        what = type(message).__name__
        assert link_id in self.client_open, f"{self}: sent {what} on link {link_id}, which is not open"
        if isinstance(message, p.Request):
            assert message.request_id not in self.requests, f"{self}: request id {message.request_id} sent twice"
            self.requests[message.request_id] = message
        if isinstance(message, p.RequestCompleteInteraction):
            iid = message.interaction_id
            sent = self.complete_sent[iid]
            acked = [rid for rid, _ in sent if rid in self.acked_ids]
            assert not acked, f"{self}: {iid}: completion sent again after its ack"
            assert link_id not in [link for _, link in sent], f"{self}: {iid}: completion sent twice on link {link_id}"
            sent.append((message.request_id, link_id))
        if isinstance(message, p.RequestAgentLogin):
            holders = self.world.login_holders(self)
            assert holders == [], f"{self}: login sent on link {link_id} while {holders} hold the login on an open link"
            self.token_epoch, self.token = None, message.resume_token
            self.carried = {h.interaction.interaction_id for h in message.interactions}
            if message.resume_token is not None:
                self.token_epoch = verify_token(SECRET, message.resume_token, self.loop.wall_ms).epoch
        self.links[link_id].send(p.encode(message))

    def applied(self, site: str, incarnation: int, request: p.Request, ack: p.EventAck) -> None:
        """A server acknowledged ``request`` (the first time): it took effect there."""
        if isinstance(request, _STATE_REQUESTS):
            intent_id = request.request_id.rpartition("/")[0]
            self.applications[intent_id].append((site, incarnation, ack.epoch))
        elif isinstance(request, p.RequestAgentLogin):
            self.logins.append((site, incarnation, ack.epoch, request.state))

    # ------------------------------------------------------------------ checks on what the session says

    def observe(self, event: ev.Event) -> None:
        if isinstance(event, ev.IntentPending):
            assert event.request_id not in self.outcome
            self.issued.append((event.request_id, event.intent))
            self.outcome[event.request_id] = None
        elif isinstance(event, (ev.IntentApplied, ev.IntentSuperseded, ev.IntentFailed)):
            assert self.outcome.get(event.request_id, "unknown") is None, f"{self}: second outcome {event}"
            self.outcome[event.request_id] = event
            if isinstance(event, ev.IntentApplied):
                intent = event.intent
                done = {(site, epoch) for site, _, epoch in self.applications[event.request_id]}
                done |= {(site, epoch) for site, _, epoch, state in self.logins
                         if state is not None and (state.state, state.reason) == (intent.state, intent.reason)}
                assert (event.endpoint, event.epoch) in done, f"{self}: {event} but the server never applied it"
        elif isinstance(event, ev.AgentStateChanged):
            last = self.shown
            if last is not None and (last.state, last.reason) == (event.state, event.reason):
                assert last.since_ms == event.since_ms, f"{self}: time in state reset: {last} -> {event}"
            self.shown = event
        elif isinstance(event, ev.LoginFailed):
            assert event.code == "stale_epoch" and self.token_epoch is not None, f"{self}: {event}"
            # Given up on only once every site that would take the token has refused it meanwhile (one
            # restarted since takes it again, but the desktop cannot know).
            refused = self.token_refused.get(self.token or "", set())
            takers = [s.name for s in self.world.sites.values()
                      if s.name not in refused and self.takes_token(s, self.token_epoch)]
            assert takers == [], f"{self}: {event} but {takers} would take the token of epoch {self.token_epoch}"
            self.login_failures += 1
            self.later(0.5, self.feed, self.session.login, self.agent_id, PASSWORD)  # the user types it again
        elif isinstance(event, ev.LoggedOut):
            raise AssertionError(f"{self}: the session ended: {event}")
        elif isinstance(event, ev.InteractionPending):
            assert event.request_id not in self.ix_outcome
            self.ix_outcome[event.request_id] = None
        elif isinstance(event, (ev.InteractionApplied, ev.InteractionSuperseded, ev.InteractionFailed)):
            if event.request_id in self.ix_outcome:  # refused at once: no Pending before
                assert self.ix_outcome[event.request_id] is None, f"{self}: second outcome {event}"
            self.ix_outcome[event.request_id] = event
        elif isinstance(event, ev.InteractionStarted):
            iid = event.interaction.interaction_id
            assert iid not in self.in_hand, f"{self}: started twice: {event}"
            if iid in self.ended:  # it came back (a site that never heard how it ended offered it again)
                for notes in (self.completing, self.ended, self.complete_sent):
                    notes.pop(iid, None)
            # An accept unanswered when its primary was lost is carried by the next login, and started
            # on its ack: that login's first status says whether the server took it over.
            taken = (iid, self.agent_id) in self.world.reports.taken or iid in self.carried
            assert taken, f"{self}: {event} but no server accepted or adopted it"
            self.in_hand.add(iid)
            if event.interaction.notes:  # transferred to this agent: the notes it was handed count as typed
                self.typed.setdefault(iid, event.interaction.notes)
        elif isinstance(event, ev.InteractionEnded):
            iid = event.interaction_id
            self.in_hand.discard(iid)
            self.typed.pop(iid, None)  # what is typed next (it may come back, even while its accept is unsure) is new
            self.ended[iid].append(event)
            assert len(self.ended[iid]) == 1, f"{self}: ended twice: {self.ended[iid]}"
            if event.reason == "completed":
                assert self.world.completed_somewhere(iid), f"{self}: {event} but no server completed it"

    def takes_token(self, site: Any, token_epoch: int) -> bool:
        """Would this running site take the session's resume token (as ``ServerCore._login`` decides)?"""
        if not site.alive or site.frozen or site.core is None:
            return False
        fencing, agent = site.core.fencing, self.agent_id
        here = site.core.sessions.get(agent)
        newest = max(here.epoch if here else 0, fencing.peer_logged_in.get(agent, 0), fencing.known_epoch.get(agent, 0))
        retry = fencing.is_lost_ack_retry(agent, newest, token_epoch, newest + 1, self.loop.wall_ms)
        return token_epoch >= newest or retry

    # ------------------------------------------------------------------ what the user does

    def intent(self, state: str, reason: str = "break") -> None:
        session = self.session
        if state == "ready":
            self.act(session.set_ready)
        elif state == "not_ready":
            self.act(session.set_not_ready, reason)
        else:
            self.act(session.set_after_call_work)

    def answer(self, pick: int, take: bool) -> None:
        offers = self.session.snapshot().offers
        if offers:
            iid = offers[pick % len(offers)].interaction.interaction_id
            self.act(self.session.accept if take else self.session.reject, iid)

    def write_notes(self, pick: int) -> None:
        held = self.session.snapshot().held
        if held:
            iid = held[pick % len(held)].interaction.interaction_id
            text = self.world.next_notes(iid)
            if self.act(self.session.update_notes, iid, text) and self._taken():
                self.typed[iid] = text  # not refused at once (e.g. while completing)

    def complete(self, pick: int, final_notes: bool) -> None:
        held = self.session.snapshot().held
        if held:
            info = held[pick % len(held)]
            iid = info.interaction.interaction_id
            notes = f"final {iid}" if final_notes else None
            if self.act(self.session.complete, iid, "resolved", notes) and self._taken():
                self.completing.setdefault(iid, notes if notes is not None else info.notes)
                if notes is not None:
                    self.typed[iid] = notes

    def flow(self, step: str, final_notes: bool) -> None:
        """The agent's usual flow, so that calls happen often: answer what is offered, else type notes
        or complete what is in hand, else be Ready for the carrier's next call."""
        snap = self.session.snapshot()
        if snap.offers:
            self.answer(0, True)
        elif snap.held:
            self.write_notes(0) if step == "notes" else self.complete(0, final_notes)
        else:
            self.ready()
            self.world.carrier.new_interaction()

    def ready(self) -> None:
        if not self.issued or self.issued[-1][1].state != "ready":
            self.intent("ready")

    def work_through(self) -> None:
        """After healing: Ready, take every offer, complete what is in hand."""
        snap = self.session.snapshot()
        if self.frozen or snap.status != "logged_in":
            return
        answering = {e.interaction_id for _, e in snap.interaction_pending}
        for offer in snap.offers:
            if offer.interaction.interaction_id not in answering:
                self.act(self.session.accept, offer.interaction.interaction_id)
        for i, held in enumerate(snap.held):
            if not held.completing:
                self.complete(i, final_notes=False)
        self.ready()

    def _taken(self) -> bool:
        """Was the user's last interaction action taken (not refused at once)?"""
        last = self.ix_outcome[list(self.ix_outcome)[-1]]
        return not isinstance(last, ev.InteractionFailed)

