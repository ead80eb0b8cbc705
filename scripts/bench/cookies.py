#!/usr/bin/env python3
"""Writes COUNT token-handler access-token cookies, one "shroud-at=<value>" a line, for opaque tokens
"<PREFIX>-1" .. "<PREFIX>-COUNT", in a format Shroud reads (token_handler.cookie_format):
base64url-no-padding(version || 12-byte random IV || AES-256-GCM(ciphertext || 16-byte tag)), the key being
the 32 bytes of the configured 64-hex cookie key (as tests/fixtures/make_cookie_kat.py).
- bound (the default): version 0x02, the cookie name "shroud-at" as associated data;
- curity_v1: version 0x01, no associated data (Curity's format, and Shroud builds before cookie binding).

Usage: cookies.py KEY_HEX PREFIX COUNT [bound|curity_v1] > FILE
"""
import base64
import os
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


NAME = "shroud-at"


def encrypt(aead: AESGCM, plaintext: str, bound: bool) -> str:
    iv = os.urandom(12)
    version, aad = (b"\x02", NAME.encode("ascii")) if bound else (b"\x01", None)
    sealed = aead.encrypt(iv, plaintext.encode("utf-8"), aad)
    return base64.urlsafe_b64encode(version + iv + sealed).rstrip(b"=").decode("ascii")


def main() -> None:
    key_hex, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cookie_format = sys.argv[4] if len(sys.argv) > 4 else "bound"
    if cookie_format not in ("bound", "curity_v1"):
        sys.exit(f"unknown cookie format {cookie_format!r}: bound or curity_v1")
    aead = AESGCM(bytes.fromhex(key_hex))
    out = sys.stdout
    for i in range(1, count + 1):
        out.write(f"{NAME}={encrypt(aead, f'{prefix}-{i}', cookie_format == 'bound')}\n")


if __name__ == "__main__":
    main()
