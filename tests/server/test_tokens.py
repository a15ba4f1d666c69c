"""Resume tokens: accepted by either server of the pair; forged, foreign and expired ones refused
with the documented codes (and no effect)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from tests.server.test_heartbeats import site_config
from tests.server.wire import WireClient, available, connect_registered, login, login_agent, run, subscribe
from tests.support.servers import SECRET, async_wait_until


def mint(agent_id: str, epoch: int, expires_ms: int, secret: str = SECRET, site: str | None = None) -> str:
    """A token in the documented format: base64url(json{a,e,x[,s]}) "." hex(hmac_sha256(secret, body))."""
    claims = {"a": agent_id, "e": epoch, "x": expires_ms, **({"s": site} if site is not None else {})}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=")
    return body.decode() + "." + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


async def refused(client: WireClient, message: dict, code: str) -> None:
    answer = await client.request(message)
    assert answer["type"] == "EventError" and answer["code"] == code, f"expected {code}, got {answer}"


def credentialed(kind: str, user: str, token: str) -> dict:
    if kind == "RequestSubscribeReporting":
        return {"type": kind, "user_id": user, "resume_token": token}
    return {"type": kind, "agent_id": user, "resume_token": token}


KINDS = ("RequestAgentLogin", "RequestAgentAvailable")


def test_token_from_one_server_is_accepted_by_the_other(pair):
    a, b = pair

    async def scenario():
        _, ack, _ = await login_agent(a.url, "1001")
        desk_b = await connect_registered(b.url)
        ack_b, status = await login(desk_b, "1001", token=ack["resume_token"])
        assert ack_b["epoch"] == 2 and status["server"] == "B"
        # A self-minted token in the documented format works too (the format is the contract).
        desk = await connect_registered(a.url)
        ack_c, _ = await login(desk, "1004", token=mint("1004", 5, now_ms() + 60_000))
        assert ack_c["epoch"] == 6  # at an epoch above the token's

    run(scenario())


def test_forged_and_malformed_tokens_are_invalid(pair):
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        _, ack, _ = await login_agent(a.url, "1001")
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        good = ack["resume_token"]
        body, _, mac = good.partition(".")
        flipped = body + "." + mac[:-1] + ("0" if mac[-1] != "0" else "1")
        tampered_body = mint("1002", 1, now_ms() + 60_000).partition(".")[0] + "." + mac  # 1002's claim, 1001's MAC
        wrong_secret = mint("1002", 1, now_ms() + 60_000, secret="not-the-pair-secret")
        forged = [flipped, tampered_body, wrong_secret, "garbage", "x.y", ".", good + "00",
                  "é" * 10 + "." + "ü" * 64, body + "." + "é" * 64]
        client = await connect_registered(a.url)
        for token in forged:
            agent = (
                "1001" if token in (flipped, good + "00") or token.startswith("é") or token.endswith("é") else "1002"
            )
            for kind in KINDS:
                await refused(client, credentialed(kind, agent, token), "invalid_token")
        await refused(client, credentialed("RequestSubscribeReporting", "sup1", "garbage"), "invalid_token")
        await refused(client, credentialed("RequestSubscribeReporting", "sup1", "é." + "é" * 64), "invalid_token")
        # None of that had an effect: the stream's next event is a later marker login.
        await login_agent(a.url, "1003")
        event = await sup.expect("EventAgentLogin", seq=snap["seq"] + 2)
        assert event["agent"]["agent_id"] == "1003"

    run(scenario())


def test_token_for_another_agent_is_invalid(pair):
    a, b = pair

    async def scenario():
        _, ack, _ = await login_agent(a.url, "1001")
        for url in (a.url, b.url):
            client = await connect_registered(url)
            for kind in KINDS:
                await refused(client, credentialed(kind, "1002", ack["resume_token"]), "invalid_token")
            await refused(
                client, credentialed("RequestSubscribeReporting", "sup1", ack["resume_token"]), "invalid_token"
            )
        # ... and a supervisor's token does not log an agent in.
        _, sub_ack, _ = await subscribe(a.url)
        client = await connect_registered(b.url)
        await refused(client, credentialed("RequestAgentLogin", "1002", sub_ack["resume_token"]), "invalid_token")
        # The supervisor's own token re-subscribes, at either server.
        answer = await client.request(credentialed("RequestSubscribeReporting", "sup1", sub_ack["resume_token"]))
        assert answer["type"] == "EventAck" and answer["server"] == "B", answer

    run(scenario())


def test_expired_self_minted_token(pair):
    a, _ = pair

    async def scenario():
        client = await connect_registered(a.url)
        token = mint("1001", 1, now_ms() - 1)
        for kind in KINDS:
            await refused(client, credentialed(kind, "1001", token), "token_expired")
        await refused(client, credentialed("RequestSubscribeReporting", "sup1", mint("sup1", 1, now_ms() - 1)),
                      "token_expired")

    run(scenario())


def test_server_issued_token_expires_and_is_refreshed(make_pair, tmp_path):
    a, b = make_pair(["--config", site_config(tmp_path, token_ttl_ms=1000)])

    async def scenario():
        desk, ack, _ = await login_agent(a.url, "1001")
        assert 900 <= ack["token_expires_ms"] - now_ms() <= 1000
        # The primary pushes a fresh token at half-life, for the same epoch and a later expiry.
        fresh = await desk.expect("EventResumeToken", timeout=3, epoch=ack["epoch"])
        assert fresh["token_expires_ms"] > ack["token_expires_ms"] and fresh["resume_token"] != ack["resume_token"]
        await async_wait_until(lambda: now_ms() > ack["token_expires_ms"] + 20, timeout=3, message="token expiry")
        client = await connect_registered(b.url)
        for kind in KINDS:
            await refused(client, credentialed(kind, "1001", ack["resume_token"]), "token_expired")
        if now_ms() < fresh["token_expires_ms"] - 200:
            answer = await client.request(credentialed("RequestAgentAvailable", "1001", fresh["resume_token"]))
            assert answer["type"] == "EventAck" and answer["role"] == "secondary", answer

    run(scenario())


async def voided_at(url: str, token: str, agent_id: str = "1001") -> bool:
    """Does ``url`` refuse ``token`` as logged out (each try on a fresh socket: no error budget)?"""
    client = await connect_registered(url)
    try:
        answer = await client.request(credentialed("RequestAgentAvailable", agent_id, token))
    finally:
        await client.close()
    if answer["type"] == "EventAck":
        return False
    assert answer["code"] == "invalid_token" and "logged out" in answer["message"], answer
    return True


async def log_out(client: WireClient, epoch: int, **extra) -> None:
    ack = await client.request({"type": "RequestAgentLogout", "epoch": epoch, **extra})
    assert ack["type"] == "EventAck" and ack["epoch"] == epoch, ack


def test_a_logout_voids_the_logins_tokens_here_and_at_the_peer(pair):
    """A copy of a token (the refreshed one too) cannot log the agent in again after its logout."""
    a, b = pair

    async def scenario():
        desk, ack, _ = await login_agent(a.url, "1001")
        standby = await connect_registered(b.url)
        assert (await available(standby, "1001", token=ack["resume_token"]))["role"] == "secondary"
        await log_out(desk, ack["epoch"])
        copy = await connect_registered(a.url)
        for kind in KINDS:
            await refused(copy, credentialed(kind, "1001", ack["resume_token"]), "invalid_token")
        refreshed = mint("1001", ack["epoch"], now_ms() + 60_000, site="A")  # a later copy of the same login's token
        assert await voided_at(a.url, refreshed)
        await async_wait_until(lambda: voided_at(b.url, ack["resume_token"]), timeout=5, message="B told of the logout")
        # The password still logs in, at a new epoch whose token both sites take.
        again, ack2, _ = await login_agent(b.url, "1001")
        assert ack2["epoch"] > ack["epoch"]
        assert not await voided_at(a.url, ack2["resume_token"])

    run(scenario())


def test_a_handover_logout_keeps_the_token_for_the_failback_login(pair):
    a, b = pair

    async def scenario():
        desk, ack, _ = await login_agent(b.url, "1001")
        await log_out(desk, ack["epoch"], handover=True)
        back = await connect_registered(a.url)
        ack_a, status = await login(back, "1001", token=ack["resume_token"], epoch=ack["epoch"] + 1)
        assert ack_a["epoch"] == ack["epoch"] + 1 and status["server"] == "A"

    run(scenario())


@pytest.mark.server_processes
def test_a_restarted_peer_learns_the_logouts_it_missed(pair):
    a, b = pair

    async def logged_out_while_b_is_down() -> str:
        desk, ack, _ = await login_agent(a.url, "1001")
        b.kill9()
        await log_out(desk, ack["epoch"])
        return ack["resume_token"]

    token = run(logged_out_while_b_is_down())
    b.start()

    async def after_restart():
        client = await connect_registered(b.url)
        await refused(client, credentialed("RequestAgentLogin", "1001", token), "invalid_token")

    run(after_restart())


def test_a_logout_voids_only_the_tokens_its_own_server_issued(pair):
    """Two sites cut off from each other can both hand out an epoch: A's logout at epoch 1 must not
    void B's login at epoch 1 (a token B issued), at A or at B."""
    a, b = pair

    async def scenario():
        desk, ack, _ = await login_agent(a.url, "1001")
        assert ack["epoch"] == 1
        await log_out(desk, 1)
        assert await voided_at(a.url, mint("1001", 1, now_ms() + 60_000, site="A"))
        await async_wait_until(lambda: voided_at(b.url, ack["resume_token"]), timeout=5, message="B told of the logout")
        from_b = mint("1001", 1, now_ms() + 60_000, site="B")
        assert not await voided_at(a.url, from_b) and not await voided_at(b.url, from_b)
        # A token naming no site (the format allows it) is never voided by a logout.
        assert not await voided_at(a.url, mint("1001", 1, now_ms() + 60_000))

    run(scenario())


def test_a_logout_also_voids_the_token_its_login_was_made_from(pair):
    """A failover login (at B, with A's token) and a failback login (at A, with B's token) were made
    from a token whose own login never logged out: their logout voids that token too, at both
    sites, for a standby and for the lost-ack retry alike."""
    a, b = pair

    async def scenario():
        _, at_a, _ = await login_agent(a.url, "1001")
        on_b = await connect_registered(b.url)
        at_b, _ = await login(on_b, "1001", token=at_a["resume_token"], epoch=at_a["epoch"] + 1)  # failover
        await log_out(on_b, at_b["epoch"])
        assert await voided_at(b.url, at_a["resume_token"])
        retry = await connect_registered(a.url)
        await refused(retry, {**credentialed("RequestAgentLogin", "1001", at_a["resume_token"]),
                              "epoch": at_b["epoch"] + 1}, "invalid_token")
        for url in (a.url, b.url):
            await async_wait_until(
                lambda url=url: voided_at(url, at_b["resume_token"]), timeout=5, message=f"{url} told"
            )

        # Failback (agent 1002): B's login handed over to A with B's token, then logged out at A.
        desk_b, at_b2, _ = await login_agent(b.url, "1002")
        await log_out(desk_b, at_b2["epoch"], handover=True)
        on_a = await connect_registered(a.url)
        at_a2, _ = await login(on_a, "1002", token=at_b2["resume_token"], epoch=at_b2["epoch"] + 1)
        await log_out(on_a, at_a2["epoch"])
        for url in (a.url, b.url):
            await async_wait_until(lambda url=url: voided_at(url, at_b2["resume_token"], "1002"), timeout=5,
                                   message=f"{url}: the handed-over token voided")

    run(scenario())
