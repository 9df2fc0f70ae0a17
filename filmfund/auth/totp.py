"""TOTP (RFC 6238) over HMAC-SHA1 (RFC 4226), as every authenticator app reads it: 6 digits, 30 s steps.

Small enough to keep here rather than add a dependency. `verify` accepts one step either side
(clock drift) and never the same step twice (a code seen over a shoulder cannot be replayed).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

from filmfund.typed import half_width

DIGITS, STEP, WINDOW = 6, 30, 1


def new_secret() -> str:
    """160 random bits in base32, without padding (RFC 4226's recommended key length)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    s = secret.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def hotp(secret: str, counter: int, digits: int = DIGITS) -> str:
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(when: float | None = None) -> int:
    return int((time.time() if when is None else when) // STEP)


def code_at(secret: str, when: float | None = None) -> str:
    """The code an authenticator shows at `when` (now by default)."""
    return hotp(secret, step_at(when))


def verify(secret: str, code: str, *, last_step: int | None = None, when: float | None = None) -> int | None:
    """The time step the code belongs to, or None. Steps at or before `last_step` are refused.

    A Chinese input method in full-width mode types "１２３４５６": the digits it stands for
    (`typed.half_width`). Other digits str.isdigit takes (Arabic-Indic "١٢٣٤٥٦", superscripts) are
    a wrong code like any other: hmac.compare_digest takes ASCII only, and would raise."""
    code = half_width(code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isascii() or not code.isdigit() or not secret:
        return None
    now = step_at(when)
    for step in range(now - WINDOW, now + WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def otpauth_uri(secret: str, account: str, issuer: str = "filmfund") -> str:
    """The URI authenticator apps import (as text or as a QR code)."""
    label = quote(f"{issuer}:{account}")
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP})
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str, title: str = "") -> str:
    """The URI as a QR code, drawn by segno as inline SVG (no script, no image request: the page's
    CSP allows it as is). White quiet zone and black modules, whatever the page's colours, so a
    phone's camera reads it in dark mode too."""
    import segno  # loaded at the first enrolment, not by every process at start

    return segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", title=title or None,
                                                 svgclass="qr-code", omitsize=True)
