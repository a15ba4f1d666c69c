"""Where an agent's password comes from: the OS keyring, an environment variable or a prompt.

The password is only needed for the first login of a working day; after that the session holds a
resume token. Headless Linux usually has no keyring backend: that is reported in one plain sentence
and everything else keeps working.
"""

from __future__ import annotations

import getpass
import os

from .ui.i18n import translate

SERVICE = "agent-desktop"
PASSWORD_ENV = "AGENT_PASSWORD"


def _keyring():
    """The keyring package, imported at first use: its import (~40 ms of CPU, entry points scanned)
    is start-up time a headless agent-cli given its password in the environment never needs."""
    import keyring
    import keyring.errors  # store_password catches keyring.errors.NoKeyringError

    return keyring


def keyring_unavailable_reason() -> str | None:
    """None when a usable keyring backend exists, else a one-line reason for the user."""
    try:
        backend = _keyring().get_keyring()
    except Exception as exc:  # a broken backend configuration must not stop the app
        return translate("Credentials", "The system keyring cannot be used ({0}).").format(exc)
    if backend.priority <= 0 or type(backend).__module__.startswith("keyring.backends.fail"):
        return translate("Credentials", "No system keyring is available on this computer, so passwords cannot be "
                                        "remembered.")
    return None


# These three can block (a locked collection asks the user to unlock it; D-Bus may be slow): the
# Qt applications call them on a chores thread only (desktop.gui_calls.Chores), never on the GUI
# thread. NoKeyringError (headless Linux) is a KeyringError; a backend's own failure (D-Bus gone,
# a dismissed prompt) may be anything else, and must not stop the application either.


def load_password(user_id: str) -> str | None:
    try:
        return _keyring().get_password(SERVICE, user_id)
    except Exception:  # KeyringError (NoKeyringError included) or a backend's own
        return None


def store_password(user_id: str, password: str) -> str | None:
    """Store in the keyring; returns None on success, else why it could not be stored."""
    keyring = _keyring()
    try:
        keyring.set_password(SERVICE, user_id, password)
    except keyring.errors.NoKeyringError:
        return translate("Credentials", "The password was not remembered: no system keyring is available on this "
                                        "computer.")
    except Exception as exc:  # KeyringError or a backend's own
        return translate("Credentials", "The password was not remembered: {0}").format(exc)
    return None


def forget_password(user_id: str) -> None:
    try:
        _keyring().delete_password(SERVICE, user_id)
    except Exception:  # nothing stored (PasswordDeleteError), no keyring, or a backend's own failure
        pass


def obtain_password(user_id: str, source: str = "auto", prompt=getpass.getpass) -> str:
    """Password for a headless program. ``source``: env, keyring, prompt, or auto (that order)."""
    if source in ("env", "auto") and os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if source in ("keyring", "auto"):
        stored = load_password(user_id)
        if stored:
            return stored
        if source == "keyring":
            raise LookupError(keyring_unavailable_reason() or f"no password stored in the keyring for {user_id}")
    if source == "env":
        raise LookupError(f"${PASSWORD_ENV} is not set")
    return prompt(f"Password for {user_id}: ")
