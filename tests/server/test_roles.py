"""The role-by-request matrix of docs/protocol.md ("Who may send what"), every cell, against the
server core in-process. A permitted cell is answered by the request's own logic (an EventAck, or a
refusal about its data); a refused cell gets the documented code and has no effect."""

from __future__ import annotations

import pytest

from tests.server.core_driver import PASSWORD, CoreDriver

ROLE_REFUSALS = {"forbidden", "not_authenticated", "not_logged_in"}
ROLES = ("agent", "supervisor", "carrier", "anonymous")
USER = {"agent": "1001", "supervisor": "sup1", "carrier": "carrier1"}

# request type -> role -> None (permitted) or the refusal code. The same table is in the document.
MATRIX: dict[str, dict[str, str | None]] = {
    "RequestAgentLogin": {"agent": None, "supervisor": None, "carrier": "forbidden"},
    "RequestAgentAvailable": {"agent": None, "supervisor": None, "carrier": "forbidden"},
    "RequestSubscribeReporting": {"agent": "forbidden", "supervisor": None, "carrier": None},
    "RequestAgentNotAvailable": {"agent": None, "supervisor": None, "carrier": "invalid_state",
                                 "anonymous": "invalid_state"},
    "RequestPrimaryCheck": {"agent": None, "supervisor": None, "carrier": "invalid_state",
                            "anonymous": "invalid_state"},
    "RequestAgentReady": {"agent": None, "supervisor": None, "carrier": "not_logged_in",
                          "anonymous": "not_authenticated"},
    "RequestAgentNotReady": {"agent": None, "supervisor": None, "carrier": "not_logged_in",
                             "anonymous": "not_authenticated"},
    "RequestAgentAfterCallWork": {"agent": None, "supervisor": None, "carrier": "not_logged_in",
                                  "anonymous": "not_authenticated"},
    "RequestAgentLogout": {"agent": None, "supervisor": None, "carrier": "not_logged_in",
                           "anonymous": "not_authenticated"},
    "RequestAccept": {"agent": None, "supervisor": None, "carrier": "not_logged_in", "anonymous": "not_authenticated"},
    "RequestReject": {"agent": None, "supervisor": None, "carrier": "not_logged_in", "anonymous": "not_authenticated"},
    "RequestUpdateNotes": {"agent": None, "supervisor": None, "carrier": "not_logged_in",
                           "anonymous": "not_authenticated"},
    "RequestCompleteInteraction": {"agent": None, "supervisor": None, "carrier": "not_logged_in",
                                   "anonymous": "not_authenticated"},
    "RequestSubmitInteraction": {"agent": "forbidden", "supervisor": None, "carrier": None,
                                 "anonymous": "not_authenticated"},
    "RequestForceNotReady": {"agent": "not_authenticated", "supervisor": None, "carrier": "forbidden",
                             "anonymous": "not_authenticated"},
    "RequestForceLogout": {"agent": "not_authenticated", "supervisor": None, "carrier": "forbidden",
                           "anonymous": "not_authenticated"},
    # An agent's line carries its epoch (a supervisor's too, on its login socket); a carrier's, the
    # customer's, has none.
    "RequestSendChatMessage": {"agent": None, "supervisor": None, "carrier": None, "anonymous": "not_authenticated"},
    "RequestUpdateDraft": {"agent": None, "supervisor": None, "carrier": "not_logged_in",
                           "anonymous": "not_authenticated"},
}
CREDENTIALED = ("RequestAgentLogin", "RequestAgentAvailable", "RequestSubscribeReporting")


def body(kind: str, epoch: int) -> dict[str, object]:
    """A well-formed request of ``kind`` (about interaction x-1 and agent 1002 where it names one)."""
    interaction: dict[str, object] = {"interaction_id": "x-1", "media": "voice", "queue": "sales", "created_ms": 1}
    fields: dict[str, dict[str, object]] = {
        "RequestAgentNotReady": {"epoch": epoch, "reason": "break"},
        "RequestAgentReady": {"epoch": epoch}, "RequestAgentAfterCallWork": {"epoch": epoch},
        "RequestAgentLogout": {"epoch": epoch}, "RequestAccept": {"epoch": epoch, "interaction_id": "x-1"},
        "RequestReject": {"epoch": epoch, "interaction_id": "x-1"},
        "RequestUpdateNotes": {"epoch": epoch, "interaction_id": "x-1", "notes": "n"},
        "RequestCompleteInteraction": {"epoch": epoch, "interaction_id": "x-1", "disposition": "resolved"},
        "RequestSubmitInteraction": {"interaction": interaction},
        "RequestForceNotReady": {"agent_id": "1002", "reason": "break"},
        "RequestForceLogout": {"agent_id": "1002"},
        "RequestAgentNotAvailable": {},
        "RequestSendChatMessage": {"epoch": epoch, "interaction_id": "x-1", "line_id": "l-1", "text": "hi"},
        "RequestUpdateDraft": {"epoch": epoch, "interaction_id": "x-1", "draft": "d"},
        "RequestPrimaryCheck": {"epoch": epoch},
    }
    return {"type": kind, **fields.get(kind, {})}


def chat_body(role: str, epoch: int) -> dict[str, object]:
    """A chat line as ``role`` sends one: the carrier's (the customer's) without an epoch."""
    message = body("RequestSendChatMessage", epoch)
    if role == "carrier":
        del message["epoch"]
    return message


def authenticated(driver: CoreDriver, role: str) -> tuple[int, int]:
    """A socket in the state where ``role`` normally works: (socket, epoch of its login or 1)."""
    conn = driver.registered()
    if role == "anonymous":
        return conn, 1
    user = USER[role]
    if role == "carrier":
        ack = driver.request(conn, {"type": "RequestSubscribeReporting", "user_id": user, "password": PASSWORD})
        return conn, 1
    if role == "supervisor":  # supervisors take interactions too: logged in, and subscribed
        login = driver.request(conn, {"type": "RequestAgentLogin", "agent_id": user, "password": PASSWORD})
        ack = driver.request(conn, {"type": "RequestSubscribeReporting", "user_id": user, "password": PASSWORD})
        assert ack["type"] == "EventAck", ack
        return conn, login["epoch"]
    ack = driver.request(conn, {"type": "RequestAgentLogin", "agent_id": user, "password": PASSWORD})
    assert ack["type"] == "EventAck", ack
    return conn, ack["epoch"]


@pytest.mark.parametrize("kind", sorted(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_every_cell_of_the_role_matrix(kind, role):
    driver = CoreDriver()
    other = driver.registered()  # the agent a supervisor acts on
    assert driver.request(other, {"type": "RequestAgentLogin", "agent_id": "1002", "password": PASSWORD})["type"] \
        == "EventAck"
    if kind in CREDENTIALED:
        conn = driver.registered()
        user = USER.get(role, "1001")
        field = "user_id" if kind == "RequestSubscribeReporting" else "agent_id"
        answer = driver.request(conn, {"type": kind, field: user, "password": PASSWORD})
        expected = MATRIX[kind].get(role, None)
        if role == "anonymous":  # a credentialed request is how a socket stops being anonymous
            expected = MATRIX[kind]["agent"]
    else:
        conn, epoch = authenticated(driver, role)
        if kind in ("RequestAgentNotAvailable", "RequestPrimaryCheck") and role in ("agent", "supervisor"):
            standby = driver.registered()
            driver.request(standby, {"type": "RequestAgentAvailable", "agent_id": USER[role], "password": PASSWORD})
            conn = standby
        answer = driver.request(conn, chat_body(role, epoch) if kind == "RequestSendChatMessage" else body(kind, epoch))
        expected = MATRIX[kind][role]
    if expected is None:
        assert answer["type"] == "EventAck" or answer["code"] not in ROLE_REFUSALS, (kind, role, answer)
    else:
        assert answer["type"] == "EventError" and answer["code"] == expected, (kind, role, answer)


def test_a_carrier_cannot_log_in_and_take_an_agents_interaction():
    """The review's attack: a carrier logged in, went Ready, adopted an interaction another agent
    held and completed it. Its login is refused, and nothing reaches the agent's interaction."""
    driver = CoreDriver()
    conn = driver.registered()
    held = [{"interaction": {"interaction_id": "x-1", "media": "voice", "queue": "sales", "created_ms": 1},
             "accepted_ms": 2}]
    answer = driver.request(conn, {"type": "RequestAgentLogin", "agent_id": "carrier1", "password": PASSWORD,
                                   "interactions": held})
    assert answer["code"] == "forbidden" and "carrier" in answer["message"], answer
    assert driver.core.sessions == {} and "x-1" not in driver.core.engine.interactions
