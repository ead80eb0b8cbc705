#!/usr/bin/env python3
"""Writes COUNT token-handler access-token cookies, one "shroud-at=<value>" a line, for opaque tokens
"<PREFIX>-1" .. "<PREFIX>-COUNT", in the Curity v1 format Shroud reads:
base64url-no-padding(0x01 || 12-byte random IV || AES-256-GCM(ciphertext || 16-byte tag)), the key being the
32 bytes of the configured 64-hex cookie key (as tests/fixtures/make_cookie_kat.py).

Usage: cookies.py KEY_HEX PREFIX COUNT > FILE
"""
import base64
import os
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def encrypt(aead: AESGCM, plaintext: str) -> str:
    iv = os.urandom(12)
    sealed = aead.encrypt(iv, plaintext.encode("utf-8"), None)
    return base64.urlsafe_b64encode(b"\x01" + iv + sealed).rstrip(b"=").decode("ascii")


def main() -> None:
    key_hex, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    aead = AESGCM(bytes.fromhex(key_hex))
    out = sys.stdout
    for i in range(1, count + 1):
        out.write(f"shroud-at={encrypt(aead, f'{prefix}-{i}')}\n")


if __name__ == "__main__":
    main()
