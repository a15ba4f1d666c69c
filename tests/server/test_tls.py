"""TLS: with a certificate from a private CA (trustme) the pair serves wss://, clients that trust
the CA get in, clients that do not are refused by certificate verification, and the peer link runs
over wss:// too (verified with --ca-file)."""

from __future__ import annotations

import ssl

import pytest
import trustme

from tests.server.wire import WireClient, connect_registered, login, login_agent, run
from tests.support.servers import async_wait_until, linked


@pytest.fixture
def tls_pair(make_pair, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(key)
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(ca_file)
    a, b = make_pair(["--tls-cert", str(chain), "--tls-key", str(key), "--ca-file", str(ca_file)])
    trusting = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(trusting)
    return a, b, trusting


def test_client_trusting_the_ca_logs_in_over_wss(tls_pair):
    a, b, trusting = tls_pair
    assert a.url.startswith("wss://") and a.log_has("listening wss://127.0.0.1")

    async def scenario():
        desk = await connect_registered(a.url, ssl=trusting)
        ack, status = await login(desk, "1001")
        assert ack["server"] == "A" and status["state"] == "not_ready"
        assert desk.ws.transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        # The peer link runs over wss:// as well: a move to B fences the login on A.
        await async_wait_until(lambda: linked(a, b), message="wss peer link up")
        await login_agent(b.url, "1001", token=ack["resume_token"], epoch=2, ssl=trusting)
        await desk.expect("EventForcedLogout", reason="moved", epoch=1)

    run(scenario())


def test_client_without_the_ca_fails_verification(tls_pair):
    a, _, trusting = tls_pair

    async def scenario():
        with pytest.raises(ssl.SSLCertVerificationError):
            await WireClient.open(a.url, ssl=ssl.create_default_context())  # system store only
        # Plain ws:// to the TLS port does not get a WebSocket either.
        with pytest.raises(Exception) as info:
            await WireClient.open(a.url.replace("wss://", "ws://"), open_timeout=2)
        assert not isinstance(info.value, AssertionError)
        # ... and the server is fine afterwards.
        desk = await connect_registered(a.url, ssl=trusting)
        await login(desk, "1002")

    run(scenario())


def test_the_link_helper_dials_wss_with_a_ca_file(tls_pair, tmp_path):
    from server_stub import link

    a, _, _ = tls_pair

    async def scenario():
        conn = link.Link(await link.connect(a.url, ca_file=tmp_path / "ca.pem"))
        assert (await conn.register("tls-link-1", "link test")).server == "A"
        conn.abort()
        with pytest.raises(ssl.SSLCertVerificationError):
            await link.connect(a.url)  # the system store does not know the private CA

    run(scenario())
