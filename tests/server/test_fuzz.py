"""Property tests against one live server (started once for the module): random bytes, random
JSON and random messages of real types never crash it, every frame gets a documented answer (an
EventError or EventAck, or a documented close code), and a well-behaved logged-in client on the
same server keeps working throughout."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import threading
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from server_stub.protocol import CloseCode
from tests.server.test_tokens import mint
from tests.server.wire import Closed, WireClient, connect_registered, login, login_agent, still_works
from tests.support.inprocess import InProcessServer
from tests.support.servers import SECRET, start_pair

CLIENT_TYPES = ["RequestRegisterClient", "RequestAgentLogin", "RequestAgentLogout", "RequestAgentAvailable",
                "RequestAgentNotAvailable", "RequestAgentReady", "RequestAgentNotReady", "RequestAgentAfterCallWork",
                "RequestSubscribeReporting", "RequestForceNotReady", "RequestForceLogout", "Heartbeat", "PeerHello",
                "PeerAgentEpochs", "RequestAccept", "RequestReject", "RequestUpdateNotes", "RequestCompleteInteraction",
                "RequestSubmitInteraction", "PeerInteractions", "PeerInteractionsAck", "PeerChallenge", "PeerProof"]
SERVER_TYPES = ["EventAck", "EventError", "EventCurrentAgentStatus", "EventResumeToken", "EventForcedLogout",
                "EventReportingSnapshot", "EventAgentLogin", "EventAgentLogout", "EventAgentStateChanged", "Heartbeat",
                "EventInvite", "EventInviteRevoked", "EventInteraction", "EventQueueStatistics", "PeerChallenge"]
ERROR_CODES = {"bad_json", "bad_message", "unknown_type", "not_a_request", "unsupported_version", "not_registered",
               "already_registered", "not_authenticated", "forbidden", "bad_credentials", "invalid_token",
               "token_expired", "already_logged_in", "not_logged_in", "stale_epoch", "invalid_reason",
               "invalid_state", "rate_limited", "internal", "unknown_queue", "duplicate_interaction",
               "unknown_interaction", "invalid_disposition"}
CLOSE_CODES = {
    CloseCode.INVALID_DATA,
    CloseCode.MESSAGE_TOO_BIG,
    CloseCode.TOO_MANY_ERRORS,
    CloseCode.UNSUPPORTED_VERSION,
    CloseCode.PEER_AUTH,
    CloseCode.RATE_LIMITED,
    CloseCode.SUPERSEDED,
}
FIELDS = ["request_id", "protocol_version", "client_name", "heartbeat_interval_ms", "agent_id", "password",
          "resume_token", "place", "epoch", "state", "user_id", "resume", "reason", "server", "proof", "epochs",
          "logged_out", "full", "since_ms", "stream_id", "seq", "interaction_id", "interaction", "notes", "disposition",
          "records", "ack_id", "refused", "interactions"]
MARKER = "~marker~"
BYSTANDER = "1010"  # the well-behaved agent; the fuzz vocabulary never names it
PRIMED = "1004"  # logged in before the fuzz frame for the "logged_in" stage; not in the vocabulary either
_primed_epoch = [1]

# More examples: FUZZ_EXAMPLES=5000. No deadline: each example is a round trip to a real process.
FUZZ_SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=24))
json_values = st.recursive(scalars, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12)
plausible = st.one_of(
    json_values,
    st.sampled_from(["1001", "1002", "sup1", "demo", "lunch", "nap", "A", "B", "r-1", "", "x" * 65, "é"]),
    st.integers(min_value=-3, max_value=3) | st.sampled_from([1, 2**53, 2**53 + 1, 2**63, 100, 60_000]),
    st.fixed_dictionaries({"state": st.sampled_from(["ready", "not_ready", "after_call_work", "gone"]),
                           "since_ms": st.integers(min_value=-1, max_value=2**62)},
                          optional={"reason": st.sampled_from(["lunch", "nap", ""])}),
    st.fixed_dictionaries({"stream_id": st.text(max_size=8), "seq": st.integers(min_value=-1, max_value=2**40)}),
    st.dictionaries(st.sampled_from(["1001", "1002", "bad id"]), st.integers(min_value=-1, max_value=9), max_size=2),
)
typed_messages = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    st.sampled_from(CLIENT_TYPES + SERVER_TYPES + ["RequestTeleport", ""]),
    st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), plausible, max_size=7),
)


# Well-typed messages (they pass validation, so the fuzz reaches the handlers), with random values
# and random extra fields.
agent_ids = (st.sampled_from(["1001", "1002", "1003", "sup1", "9999"])
             | st.from_regex(r"[A-Za-z0-9_.@-]{1,12}", fullmatch=True)).filter(lambda x: x not in (BYSTANDER, PRIMED))
request_ids = st.text(min_size=1, max_size=64)
epochs = st.integers(min_value=1, max_value=2**53)
tokens = st.one_of(
    st.text(min_size=1, max_size=80),
    st.builds(lambda a, e, x, secret: mint(a, e, x, secret), agent_ids, epochs,
              st.integers(min_value=0, max_value=2**45), st.sampled_from([SECRET, "wrong-secret"])),
)
credentials: st.SearchStrategy[dict[str, str]] = st.one_of(
    st.fixed_dictionaries({"resume_token": tokens}),
    st.fixed_dictionaries({"password": st.sampled_from(["demo", "wrong"])}),
    st.fixed_dictionaries({"resume_token": tokens, "password": st.just("demo")}),
    st.just({}),
)
states = st.fixed_dictionaries({"state": st.sampled_from(["ready", "not_ready", "after_call_work"]),
                                "since_ms": st.integers(min_value=0, max_value=2**62)},
                               optional={"reason": st.sampled_from(["lunch", "break", "nap"])})
reasons = st.sampled_from(["lunch", "break", "nap", "x" * 64])
interaction_ids = st.sampled_from(["call-1", "call-2", "nope"]) | st.from_regex(
    r"[A-Za-z0-9_.:@-]{1,16}", fullmatch=True
)
interactions = st.fixed_dictionaries(
    {
        "interaction_id": interaction_ids,
        "media": st.sampled_from(["voice", "chat", "email"]),
        "queue": st.sampled_from(["sales", "support", "nowhere"]),
        "created_ms": st.integers(min_value=0, max_value=2**45),
    },
    optional={
        "customer": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
        "subject": st.text(max_size=20),
    },
)
held = st.fixed_dictionaries({"interaction": interactions, "accepted_ms": st.integers(min_value=0, max_value=2**45)},
                             optional={"notes": st.text(max_size=40)})
peer_records = st.fixed_dictionaries(
    {"interaction_id": interaction_ids, "status": st.sampled_from(["held", "completed", "ended"]),
     "queue": st.sampled_from(["sales", "x"]), "media": st.sampled_from(["voice", "chat"])},
    optional={"agent_id": agent_ids, "claim": st.sampled_from(["accept", "adopt", "complete", "sync"])})


def typed(kind, fields, creds=st.just({})):
    return st.builds(lambda f, c, extra, rid: {**extra, **f, **c, "type": kind, "request_id": rid},
                     st.fixed_dictionaries({k: v for k, v in fields.items() if not k.startswith("?")},
                                           optional={k[1:]: v for k, v in fields.items() if k.startswith("?")}),
                     creds, st.dictionaries(st.text(max_size=8), json_values, max_size=2), request_ids)


well_typed = st.one_of(
    typed(
        "RequestRegisterClient",
        {
            "protocol_version": st.sampled_from([1, 1, 2, 99]),
            "client_name": st.text(max_size=40),
            "?heartbeat_interval_ms": st.integers(min_value=100, max_value=60_000),
        },
    ),
    typed(
        "RequestAgentLogin",
        {
            "agent_id": agent_ids,
            "?place": st.text(max_size=20),
            "?epoch": epochs,
            "?state": states,
            "?interactions": st.lists(held, max_size=2),
        },
        credentials,
    ),
    typed("RequestAccept", {"epoch": epochs, "interaction_id": interaction_ids}),
    typed("RequestReject", {"epoch": epochs, "interaction_id": interaction_ids}),
    typed("RequestUpdateNotes", {"epoch": epochs, "interaction_id": interaction_ids, "notes": st.text(max_size=40)}),
    typed(
        "RequestCompleteInteraction",
        {
            "epoch": epochs,
            "interaction_id": interaction_ids,
            "disposition": st.sampled_from(["resolved", "nope"]),
            "?notes": st.text(max_size=20),
        },
    ),
    typed("RequestSubmitInteraction", {"interaction": interactions}),
    st.builds(
        lambda srv, recs, ack: {"type": "PeerInteractions", "server": srv, "records": recs, **ack},
        st.text(max_size=8),
        st.lists(peer_records, max_size=3),
        st.just({}) | st.fixed_dictionaries({"ack_id": st.integers(min_value=1, max_value=2**40)}),
    ),
    typed("RequestAgentAvailable", {"agent_id": agent_ids}, credentials),
    typed("RequestAgentNotAvailable", {}),
    typed("RequestAgentReady", {"epoch": epochs}),
    typed("RequestAgentNotReady", {"epoch": epochs, "reason": reasons}),
    typed("RequestAgentAfterCallWork", {"epoch": epochs}),
    typed("RequestAgentLogout", {"epoch": epochs}),
    typed(
        "RequestSubscribeReporting",
        {
            "user_id": agent_ids,
            "?resume": st.fixed_dictionaries(
                {"stream_id": st.text(min_size=1, max_size=16), "seq": st.integers(min_value=0, max_value=2**40)}
            ),
        },
        credentials,
    ),
    typed("RequestForceNotReady", {"agent_id": agent_ids, "reason": reasons}),
    typed("RequestForceLogout", {"agent_id": agent_ids}),
    typed(
        "PeerAgentEpochs",
        {
            "server": st.text(max_size=8),
            "epochs": st.dictionaries(agent_ids, epochs, max_size=3),
            "?logged_out": st.lists(agent_ids, max_size=3),
            "?full": st.booleans(),
        },
    ),
    st.builds(
        lambda srv, nonce: {"type": "PeerHello", "server": srv, "nonce": nonce},
        st.text(max_size=8),
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    ),
    st.builds(lambda proof: {"type": "PeerProof", "proof": proof}, st.text(min_size=1, max_size=70)),
)


class LoopThread:
    """One event loop for the module, so the bystander's heartbeats run between examples."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop).result(timeout + 5)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def live():
    a, b = start_pair(kind=InProcessServer)
    runner = LoopThread()

    async def bystander():
        desk, ack, _ = await login_agent(a.url, BYSTANDER)
        return desk, ack["epoch"]

    desk, epoch = runner.run(bystander())
    yield a, runner, desk, epoch
    runner.run(still_works(desk, epoch))
    runner.run(desk.close())
    runner.close()
    assert a.alive(), "server A died during fuzzing:\n" + "\n".join(a.lines[-30:])
    assert not any("Traceback" in line for line in a.lines), "\n".join(a.lines)
    assert b.stop() == 0 and a.stop() == 0


def check_server_frame(frame: dict) -> None:
    assert frame["type"] in SERVER_TYPES, frame
    if frame["type"] == "EventError":
        assert frame["code"] in ERROR_CODES and isinstance(frame["message"], str), frame
        assert frame["code"] != "internal", f"the server hit a bug: {frame}"


async def probe(url: str, frame: str | bytes | dict, registered: bool, silent_ok: bool, logged_in: bool = False,
                fix_epoch: bool = False, as_text: bool = False) -> str:
    """Send ``frame`` then a marker request; the frame must be answered (or the socket closed).
    ``logged_in``: first log agent PRIMED in on the socket (a dict frame's ``epoch`` may then be set
    to the login's). ``as_text``: send bytes as a text frame, as they are (1007 if not UTF-8).
    Returns what happened, for Hypothesis' statistics."""
    client = await (connect_registered(url, heartbeat=None) if registered or logged_in
                    else WireClient.open(url, heartbeat=None))
    try:
        if logged_in:
            token = mint(PRIMED, _primed_epoch[0], int(time.time() * 1000) + 60_000)
            ack, _ = await login(client, PRIMED, token=token)
            _primed_epoch[0] = ack["epoch"]
            if fix_epoch and isinstance(frame, dict) and "epoch" in frame:
                frame["epoch"] = ack["epoch"]
        if isinstance(frame, dict):
            frame = json.dumps(frame)
        if as_text:
            await client.ws.send(frame, text=True)
        else:
            await client.send_raw(frame)
        try:
            await client.send({"type": "RequestAgentNotAvailable", "request_id": MARKER})
        except ConnectionClosed:
            pass
        answers, marker_seen, outcome = 0, False, "silent"
        try:
            while not (marker_seen and (answers or silent_ok)):
                message = await client.recv(timeout=5)
                check_server_frame(message)
                if message["type"] in ("EventAck", "EventError", "PeerChallenge"):  # the last answers a PeerHello
                    if message.get("request_id") == MARKER and not marker_seen:
                        marker_seen = True
                    else:
                        answers += 1
                        outcome = message.get("code", message["type"])
        except Closed as closed:
            assert closed.code in CLOSE_CODES, f"closed with undocumented code {closed.code} after {frame!r}"
            assert (closed.code == CloseCode.INVALID_DATA) == (as_text and not is_utf8(frame)), (
                f"closed {closed.code} after {frame!r}"
            )
            return f"close {closed.code}"
        assert not (as_text and not is_utf8(frame)), f"invalid UTF-8 was not refused with 1007: {frame!r}"
        if silent_ok:
            assert answers == 0, f"a Heartbeat was answered: {frame!r}"
        return outcome
    finally:
        client.abort()


def is_utf8(data: str | bytes) -> bool:
    try:
        data.decode("utf-8") if isinstance(data, bytes) else data.encode("utf-8")
    except UnicodeError:
        return False
    return True


def _strict(constant):
    raise ValueError(f"{constant} is not JSON")  # Python's json accepts NaN/Infinity, the wire does not


def is_heartbeat(frame: str) -> bool:
    """A valid Heartbeat (any extra fields): the one frame that gets no answer."""
    try:
        value = json.loads(frame, parse_constant=_strict)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("type") == "Heartbeat"


_examples = itertools.count(1)


def after_example(live) -> None:
    server, runner, desk, epoch = live
    assert server.alive()
    if next(_examples) % 25 == 0:
        runner.run(still_works(desk, epoch))


@FUZZ_SETTINGS
@given(data=st.binary(max_size=300), registered=st.booleans())
def test_random_binary_frames(live, data, registered):
    server, runner, _, _ = live
    event(runner.run(probe(server.url, data, registered, silent_ok=False)))
    after_example(live)


@FUZZ_SETTINGS
@given(text=st.text(max_size=300), registered=st.booleans())
def test_random_text_frames(live, text, registered):
    server, runner, _, _ = live
    event(runner.run(probe(server.url, text, registered, silent_ok=is_heartbeat(text))))
    after_example(live)


# Text that is mostly UTF-8 JSON with invalid bytes spliced in (a lone continuation byte, an overlong
# form, an encoded surrogate, a truncated sequence); random bytes are now and then valid after all.
invalid_utf8 = st.sampled_from(
    [b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"]
)
spliced_text = st.builds(
    lambda head, bad, tail: head.encode() + bad + tail.encode(),
    st.sampled_from(['{"type": "Heartbeat", "x": "', '{"type": "RequestAgentReady", "request_id": "', "", "{"])
    | st.text(max_size=40),
    invalid_utf8,
    st.text(max_size=40) | st.just('"}'),
)


@FUZZ_SETTINGS
@given(data=spliced_text | st.binary(max_size=120), registered=st.booleans())
def test_text_frames_that_are_not_utf8(live, data, registered):
    server, runner, _, _ = live
    event(runner.run(probe(server.url, data, registered, silent_ok=is_utf8(data) and is_heartbeat(data.decode()),
                           as_text=True)))
    after_example(live)


@FUZZ_SETTINGS
@given(value=json_values, registered=st.booleans())
def test_random_json(live, value, registered):
    server, runner, _, _ = live
    frame = json.dumps(value)
    event(runner.run(probe(server.url, frame, registered, silent_ok=is_heartbeat(frame))))
    after_example(live)


@FUZZ_SETTINGS
@given(message=typed_messages, registered=st.booleans())
def test_messages_of_real_types_with_random_fields(live, message, registered):
    server, runner, _, _ = live
    if message.get("request_id") == MARKER:
        message["request_id"] = "not-the-marker"
    frame = json.dumps(message)
    event(runner.run(probe(server.url, frame, registered, silent_ok=is_heartbeat(frame))))
    after_example(live)


@FUZZ_SETTINGS
@given(message=well_typed, stage=st.sampled_from(["fresh", "registered", "logged_in"]), fix_epoch=st.booleans())
def test_well_typed_messages_with_random_values(live, message, stage, fix_epoch):
    server, runner, _, _ = live
    if message.get("request_id") == MARKER:
        message["request_id"] = "not-the-marker"
    event(runner.run(probe(server.url, message, stage == "registered", silent_ok=False,
                           logged_in=stage == "logged_in", fix_epoch=fix_epoch)))
    after_example(live)
