"""Resume tokens and peer proofs: HMAC-SHA256 with the secret the server pair shares.

A resume token lets the desktop log in again (on either server) without the password: no scrypt
during a failover storm, and no password kept in the desktop's memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass


class TokenError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code  # "invalid_token" or "token_expired"


@dataclass(frozen=True)
class ResumeClaim:
    agent_id: str
    epoch: int
    expires_ms: int
    site: str | None = None  # the server that issued it: a logout there voids it (absent: never voided)


def _mac(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def issue_token(secret: bytes, agent_id: str, epoch: int, expires_ms: int, site: str | None = None) -> str:
    claims = {"a": agent_id, "e": epoch, "x": expires_ms}
    if site is not None:
        claims["s"] = site
    payload = json.dumps(claims, separators=(",", ":")).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=")
    return f"{body.decode()}.{_mac(secret, body)}"


def verify_token(secret: bytes, token: str, now_ms: int) -> ResumeClaim:
    body, _, mac = token.partition(".")
    # bytes, not str: compare_digest raises TypeError on non-ASCII text (a hostile token)
    if not body or not hmac.compare_digest(_mac(secret, body.encode()).encode(), mac.encode()):
        raise TokenError("invalid_token", "resume token is not valid for this server pair")
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        site = data.get("s")
        if site is not None and not isinstance(site, str):
            raise TypeError("site")
        claim = ResumeClaim(str(data["a"]), int(data["e"]), int(data["x"]), site)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TokenError("invalid_token", "resume token is malformed") from None
    if claim.expires_ms <= now_ms:
        raise TokenError("token_expired", "resume token has expired; log in with the password")
    return claim


def peer_proof(secret: bytes, role: str, prover: str, verifier: str, nonce: str) -> str:
    """Proof that ``prover`` holds the pair's secret, over ``verifier``'s fresh ``nonce``: a copy
    is worth nothing on the next link (the nonce is new), nor in the other direction (``role``)."""
    message = json.dumps([f"peer-{role}", prover, verifier, nonce], separators=(",", ":"))
    return _mac(secret, message.encode())
