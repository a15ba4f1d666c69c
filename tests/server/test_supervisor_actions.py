"""Supervisor actions: authorized by role, acting on the agent's live session, naming who did it."""

from server_stub.protocol import CloseCode
from tests.server.wire import connect_registered, login_agent, run, still_works, subscribe


def test_force_not_ready_reaches_the_agent_and_reporting_with_the_supervisor_named(pair):
    a, _ = pair

    async def scenario():
        sup, _, snapshot = await subscribe(a.url)
        desk, ack, _ = await login_agent(a.url, "1001")
        await sup.expect("EventAgentLogin", seq=snapshot["seq"] + 1)

        # The supervisor's own socket carries the reporting stream: the change, then the answer.
        await sup.send(
            {"type": "RequestForceNotReady", "request_id": "force-1", "agent_id": "1001", "reason": "meeting"}
        )
        change = await sup.expect("EventAgentStateChanged", seq=snapshot["seq"] + 2)
        assert (change["agent_id"], change["reason"], change["forced_by"]) == ("1001", "meeting", "sup1")
        answer = await sup.expect("EventAck", request_id="force-1")
        assert answer["epoch"] == ack["epoch"], answer

        status = await desk.expect("EventCurrentAgentStatus")
        assert (status["state"], status["reason"], status["forced_by"]) == ("not_ready", "meeting", "sup1")

        refused = await sup.request({"type": "RequestForceNotReady", "agent_id": "1001", "reason": "nap"})
        assert refused["code"] == "invalid_reason", refused
        elsewhere = await sup.request({"type": "RequestForceNotReady", "agent_id": "1002", "reason": "break"})
        assert elsewhere["code"] == "not_logged_in", elsewhere

    run(scenario())


def test_force_logout_ends_the_login_and_is_reported_as_forced(pair):
    a, _ = pair

    async def scenario():
        sup, _, snapshot = await subscribe(a.url)
        desk, ack, _ = await login_agent(a.url, "1001")
        await sup.send({"type": "RequestForceLogout", "request_id": "force-2", "agent_id": "1001"})
        await sup.expect("EventAgentLogin", seq=snapshot["seq"] + 1)
        logout = await sup.expect("EventAgentLogout", seq=snapshot["seq"] + 2)
        assert logout["reason"] == "forced"
        await sup.expect("EventAck", request_id="force-2")
        forced = await desk.expect("EventForcedLogout")
        assert (forced["reason"], forced["by"], forced["epoch"]) == ("forced", "sup1", ack["epoch"])
        code, _ = await desk.expect_close()
        assert code == CloseCode.SUPERSEDED
        # Nor can the agent's token log it back in: the supervisor's logout stands.
        again = await connect_registered(a.url)
        answer = await again.request(
            {"type": "RequestAgentLogin", "agent_id": "1001", "resume_token": ack["resume_token"]}
        )
        assert answer["type"] == "EventError" and answer["code"] == "invalid_token", answer

    run(scenario())


def test_agents_and_unsubscribed_sockets_cannot_use_supervisor_actions(pair):
    a, _ = pair

    async def scenario():
        desk, ack, _ = await login_agent(a.url, "1001")
        refused = await desk.request({"type": "RequestForceLogout", "agent_id": "1001"})
        assert refused["code"] == "not_authenticated", refused
        bare = await connect_registered(a.url)
        refused = await bare.request({"type": "RequestForceNotReady", "agent_id": "1001", "reason": "break"})
        assert refused["code"] == "not_authenticated", refused
        await still_works(desk, ack["epoch"])  # the refused actions left the login alone

    run(scenario())
