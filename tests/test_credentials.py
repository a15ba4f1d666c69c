"""Password sources of the headless agent and the desktop: env, keyring, prompt; no keyring at all."""

import pytest

from desktop import credentials
from tests.support.memory_keyring import use_memory_keyring, use_no_keyring


@pytest.fixture(autouse=True)
def restore_keyring():
    import keyring

    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


def test_without_a_keyring_backend_the_reason_is_plain_and_storing_fails_softly(monkeypatch):
    use_no_keyring()
    monkeypatch.delenv(credentials.PASSWORD_ENV, raising=False)
    reason = credentials.keyring_unavailable_reason()
    assert reason and "keyring" in reason.lower()
    assert credentials.store_password("1001", "pw") is not None  # a message, no exception
    assert credentials.load_password("1001") is None
    # auto falls through to the prompt
    assert credentials.obtain_password("1001", "auto", prompt=lambda text: "typed") == "typed"
    with pytest.raises(LookupError, match="keyring"):
        credentials.obtain_password("1001", "keyring")


def test_memory_keyring_round_trip_and_source_order(monkeypatch):
    use_memory_keyring()
    assert credentials.keyring_unavailable_reason() is None
    assert credentials.store_password("1001", "from-keyring") is None
    monkeypatch.delenv(credentials.PASSWORD_ENV, raising=False)
    assert credentials.obtain_password("1001", "auto", prompt=lambda t: pytest.fail("prompted")) == "from-keyring"
    monkeypatch.setenv(credentials.PASSWORD_ENV, "from-env")
    assert credentials.obtain_password("1001", "auto") == "from-env"
    assert credentials.obtain_password("1001", "keyring") == "from-keyring"
    credentials.forget_password("1001")
    assert credentials.load_password("1001") is None


def test_env_source_requires_the_variable(monkeypatch):
    monkeypatch.delenv(credentials.PASSWORD_ENV, raising=False)
    with pytest.raises(LookupError, match=credentials.PASSWORD_ENV):
        credentials.obtain_password("1001", "env")
