"""Secrets and identifiers have the shape the rest of the code and the URLs rely on."""

from __future__ import annotations

import hashlib
import re

from chalicelib.domain.tokens import new_id, new_token, token_hash


def test_a_new_token_carries_256_random_bits_in_url_safe_characters():
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token  # 32 bytes, unpadded base64


def test_only_the_sha256_of_a_token_is_stored():
    assert token_hash("abc") == hashlib.sha256(b"abc").hexdigest()
    assert token_hash("abc") != token_hash("abd")


def test_identifiers_are_sixteen_hex_digits_and_unique():
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    for identifier in ids:
        assert re.fullmatch(r"[0-9a-f]{16}", identifier), identifier
