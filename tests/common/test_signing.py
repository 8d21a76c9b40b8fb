import pytest
from cryptography.fernet import Fernet

from apps.common.signing import UnsealError, seal, unseal


def test_a_sealed_secret_opens_to_the_same_text_and_does_not_show_it():
    token = seal("sk_test_abc123")

    assert unseal(token) == "sk_test_abc123"
    assert "sk_test_abc123" not in token
    assert seal("sk_test_abc123") != token  # a fresh nonce each time


def test_a_tampered_token_is_refused():
    token = seal("sk_test_abc123")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]

    with pytest.raises(UnsealError):
        unseal(tampered)
    with pytest.raises(UnsealError):
        unseal("not a token")


def test_another_secret_key_cannot_open_what_was_sealed(settings):
    token = seal("sk_live_xyz")
    settings.SECRET_KEY = "another deployment's secret key, long enough to matter"

    with pytest.raises(UnsealError):
        unseal(token)


def test_a_dedicated_key_can_be_introduced_and_rotated_without_losing_sealed_values(settings):
    settings.SIGNING_SECRETS_KEY = ""
    from_secret_key = seal("one")
    settings.SIGNING_SECRETS_KEY = "first passphrase"
    from_first = seal("two")
    settings.SIGNING_SECRETS_KEY = f"{Fernet.generate_key().decode()},first passphrase"

    assert unseal(from_secret_key) == "one"
    assert unseal(from_first) == "two"
    assert unseal(seal("three")) == "three"


def test_a_value_sealed_under_a_dedicated_key_needs_that_key(settings):
    settings.SIGNING_SECRETS_KEY = Fernet.generate_key().decode()
    token = seal("four")
    settings.SIGNING_SECRETS_KEY = Fernet.generate_key().decode()

    with pytest.raises(UnsealError):
        unseal(token)
