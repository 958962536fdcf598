"""Signatures of thinking blocks: the proof the API checks that a thinking block sent back is the one it produced.

The real API's signature is opaque (encrypted reasoning); the simulator's is an HMAC over the thinking text, so that
a block changed by the client is detected exactly as the real API detects it. The key is fixed, so a history saved
in one session still verifies in the next, and committed notebook outputs do not change between runs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_KEY = b"streaming-with-claude simulator: thinking signatures v1"
_MAC_BYTES = 32
_DIGEST_BYTES = 32
# The documented test prompt that makes the real API return a redacted_thinking block.
REDACTED_TRIGGER = (
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB"  # noqa: E501 - kept whole so it can be searched for
)


def _mac(kind: bytes, digest: bytes) -> bytes:
    return hmac.new(_KEY, kind + b"|" + digest, hashlib.sha256).digest()


def sign_thinking(thinking: str) -> str:
    """The `signature` of a thinking block whose full (summarized) text is `thinking`."""
    digest = hashlib.sha256(thinking.encode()).digest()
    return "Eu" + base64.b64encode(_mac(b"thinking", digest) + digest).decode()


def verify_thinking(thinking: str, signature: str) -> bool:
    """True if `signature` is one the simulator made and `thinking` is its text, or empty (display `omitted`)."""
    raw = _decode(signature)
    if raw is None or len(raw) != _MAC_BYTES + _DIGEST_BYTES:
        return False
    mac, digest = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(b"thinking", digest)):
        return False
    return thinking == "" or hmac.compare_digest(hashlib.sha256(thinking.encode()).digest(), digest)


def redacted_data(seed: str) -> str:
    """The opaque `data` of a redacted_thinking block (encrypted reasoning on the real API)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return "Eo" + base64.b64encode(_mac(b"redacted", digest) + digest).decode()


def verify_redacted(data: str) -> bool:
    """True if `data` is a redacted_thinking payload the simulator made, unmodified."""
    raw = _decode(data)
    if raw is None or len(raw) != _MAC_BYTES + _DIGEST_BYTES:
        return False
    return hmac.compare_digest(raw[:_MAC_BYTES], _mac(b"redacted", raw[_MAC_BYTES:]))


def _decode(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) < 3:
        return None
    try:
        return base64.b64decode(value[2:], validate=True)
    except (binascii.Error, ValueError):
        return None
