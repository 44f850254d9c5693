"""The secret key behind UID hashing, text hashing and date shifting.

The key comes from the environment (``DEID_SECRET``) or a file, never from the command line,
and is never logged, printed or written out: its ``repr`` hides it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

ENV_VAR = "DEID_SECRET"
MIN_LENGTH = 16


class KeyUnavailable(Exception):
    """No usable key: the message says how to provide one."""


class SecretKey:
    """An HMAC-SHA256 key. Same key, same mappings, in every process and run."""

    __slots__ = ("_key", "origin")

    def __init__(self, key: bytes, origin: str):
        if len(key) < MIN_LENGTH:
            raise KeyUnavailable(f"the key from {origin} is shorter than {MIN_LENGTH} bytes; "
                            "use e.g. `openssl rand -hex 32`")
        self._key = key
        self.origin = origin

    def __repr__(self) -> str:
        return f"SecretKey(origin={self.origin!r})"

    def __reduce__(self):  # picklable for worker processes; never serialized to text
        return (SecretKey, (self._key, self.origin))

    def digest(self, purpose: bytes, value: bytes) -> bytes:
        """HMAC-SHA256 of a value, separated by purpose so mappings cannot be confused."""
        return hmac.new(self._key, purpose + b"\x00" + value, hashlib.sha256).digest()

    @classmethod
    def from_env(cls, var: str = ENV_VAR) -> SecretKey:
        value = os.environ.get(var)
        if not value:
            raise KeyUnavailable(f"{var} is not set")
        return cls(value.encode("utf-8"), f"${var}")

    @classmethod
    def from_file(cls, path: str | Path) -> SecretKey:
        try:
            data = Path(path).read_bytes().strip()
        except OSError as exc:
            raise KeyUnavailable(f"cannot read key file {path}: {exc.strerror}") from None
        return cls(data, f"file {path}")

    @classmethod
    def throwaway(cls) -> SecretKey:
        """A random key for a trial run: its mappings can never be reproduced."""
        return cls(secrets.token_bytes(32), "a throwaway random key")


def resolve_key(secret_file: str | None = None, throwaway: bool = False) -> SecretKey:
    """The key a command should use: a file if given, else $DEID_SECRET, else a throwaway key
    only when asked for. Raises KeyUnavailable with a message on how to provide one."""
    if secret_file:
        return SecretKey.from_file(secret_file)
    if os.environ.get(ENV_VAR):
        return SecretKey.from_env()
    if throwaway:
        return SecretKey.throwaway()
    raise KeyUnavailable(f"no secret key: set {ENV_VAR} or pass --secret-file FILE "
                    "(or --throwaway-key for a trial run whose mappings cannot be reproduced)")
