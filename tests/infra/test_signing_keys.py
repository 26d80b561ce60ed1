"""The signing key ring: read from Secrets Manager (as provisioned from infra/), rotated
without signing anyone out or voiding a pending link or code."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from chalicelib import signing_keys
from chalicelib.config import get_settings
from infra.signing_keys import promote, stage

SECRET = "checkos-test-signing-keys"  # provisioned by tests/conftest.py from infra/


@pytest.fixture
def key_ring(aws, monkeypatch) -> Iterator[object]:
    """The app reads its keys from the provisioned secret, as a deployed function does."""
    monkeypatch.setenv("SIGNING_SECRET_ARN", SECRET)
    get_settings.cache_clear()
    signing_keys.forget()
    client = boto3.client("secretsmanager")

    def rotate_now() -> None:
        stage(client, SECRET)
        signing_keys.forget()  # what REFRESH_SECONDS does in a warm function
        promote(client, SECRET)
        signing_keys.forget()

    yield rotate_now
    monkeypatch.undo()
    get_settings.cache_clear()
    get_settings()  # read back now, outside any request (see tests/conftest.py)
    signing_keys.forget()


def test_the_keys_come_from_the_provisioned_secret(key_ring):
    stored = json.loads(
        boto3.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    )
    keys = signing_keys.accepted()
    assert keys[0] == stored["current"]  # signs with current
    assert set(keys) == {key for key in stored.values() if key}  # accepts the whole ring
    assert len(stored["current"]) >= signing_keys.MIN_KEY_LENGTH


def test_a_cookie_signed_before_a_rotation_still_verifies_after_it(key_ring):
    from chalicelib.web import http

    before = http.pack(["token", "user", "company", 1], "session")
    key_ring()
    assert http.unpack(before, "session") == ["token", "user", "company", 1]
    after = http.pack(["token", "user", "company", 1], "session")
    assert after != before  # new signatures use the new current key
    key_ring()  # a second rotation drops the oldest key
    assert http.unpack(before, "session") is None
    assert http.unpack(after, "session") == ["token", "user", "company", 1]


def test_an_opt_out_link_and_a_pending_code_survive_a_rotation(key_ring):
    from chalicelib.services import delivery, email_codes

    link = delivery.opt_out_token("c1", "o1", "ana@example.com")
    stored_code = email_codes._code_digest("c1", "123456")
    key_ring()
    assert delivery.read_opt_out_token(link) is not None
    assert email_codes._code_matches(stored_code, "c1", "123456")
    assert not email_codes._code_matches(stored_code, "c1", "654321")


def test_a_function_still_on_the_staged_ring_accepts_the_promoted_key(key_ring):
    """Between the two steps every function learns the next key before anyone signs with it."""
    from chalicelib.web import http

    client = boto3.client("secretsmanager")
    staged = stage(client, SECRET)
    signing_keys.forget()
    before = http.pack("x", "csrf")
    assert staged["next"] in signing_keys.accepted()[1:]  # cached: the warm function
    promote(client, SECRET)  # ...which has not re-read the ring yet
    raw = before.rpartition(".")[0]
    made_after = f"{raw}.{http._sign_with(staged['next'], raw, 'csrf')}"
    assert http.unpack(made_after, "csrf") == "x"
    signing_keys.forget()
    assert signing_keys.current() == staged["next"]
    assert http.unpack(before, "csrf") == "x"  # the old current is now previous


def test_promoting_without_a_staged_key_is_refused(key_ring):
    with pytest.raises(SystemExit, match="no staged key"):
        promote(boto3.client("secretsmanager"), SECRET)


def test_a_forged_signature_fails_with_either_key(key_ring):
    from chalicelib.web import http

    key_ring()
    raw = http.pack({"a": 1}, "csrf").rpartition(".")[0]
    assert http.unpack(raw + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "csrf") is None


def test_a_secret_without_a_usable_current_key_is_refused():
    with pytest.raises(signing_keys.SigningKeysError, match="shorter than"):
        signing_keys.parse(json.dumps({"current": "short", "previous": "x" * 64}))
    with pytest.raises(signing_keys.SigningKeysError, match="JSON"):
        signing_keys.parse("k" * 64)  # a bare string, as the old template generated
