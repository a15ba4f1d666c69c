"""An in-memory keyring backend, so tests exercise the keyring path without an OS service."""

from __future__ import annotations

import threading

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import fail


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self):
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username), None)


class SpyKeyring(MemoryKeyring):
    """A memory keyring that notes every call: (method, user, name of the calling thread)."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple[str, str, str]] = []

    def _note(self, method: str, username: str) -> None:
        self.calls.append((method, username, threading.current_thread().name))

    def get_password(self, service, username):
        self._note("get_password", username)
        return super().get_password(service, username)

    def set_password(self, service, username, password):
        self._note("set_password", username)
        super().set_password(service, username, password)

    def delete_password(self, service, username):
        self._note("delete_password", username)
        super().delete_password(service, username)


def use_spy_keyring() -> SpyKeyring:
    backend = SpyKeyring()
    keyring.set_keyring(backend)
    return backend


def use_memory_keyring() -> MemoryKeyring:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend


def use_no_keyring() -> None:
    keyring.set_keyring(fail.Keyring())
