"""Where workers find the secret key.

The launcher validates the key, then hands workers only *where* it is: the environment
variable's name or the secret file's path (local or in a bucket). Each worker reads the key in
`DoFn.setup()`, so the key never enters the pipeline graph a runner such as Dataflow stores.
Only a throwaway key, allowed on local runners alone, travels in the (in-memory) graph.
"""

from __future__ import annotations

import os

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from deid.keys import ENV_VAR, KeyUnavailable, SecretKey

HOW = (f"set {ENV_VAR} (e.g. `export {ENV_VAR}=$(openssl rand -hex 32)`) or pass "
       "--secret_file PATH (a local file or a gs:// or s3:// object); for a trial run on this "
       "machine, --throwaway_key")


def read_secret_file(path: str) -> SecretKey:
    """The key in a file on any Beam filesystem. Errors name the file, never the content."""
    try:
        with FileSystems.open(path, mime_type="application/octet-stream",
                              compression_type=CompressionTypes.UNCOMPRESSED) as f:
            data = f.read()
    except Exception as exc:
        raise KeyUnavailable(f"cannot read the key file {path} ({type(exc).__name__})") from None
    return SecretKey(data.strip(), f"file {path}")


class KeySource:
    """A picklable pointer to the key: ('env', NAME), ('file', PATH) or ('throwaway', key)."""

    __slots__ = ("kind", "location", "_key")

    def __init__(self, kind: str, location: str = "", key: SecretKey | None = None):
        if kind not in ("env", "file", "throwaway"):
            raise ValueError(f"unknown key source {kind!r}")
        self.kind, self.location, self._key = kind, location, key

    def __repr__(self) -> str:
        return f"KeySource({self.describe()})"

    def __getstate__(self):
        return {"kind": self.kind, "location": self.location, "_key": self._key}

    def __setstate__(self, state):
        for name, value in state.items():
            setattr(self, name, value)

    @classmethod
    def choose(cls, secret_file: str | None, throwaway: bool) -> KeySource:
        """The same precedence as `deid file`: a secret file, else $DEID_SECRET, else a
        throwaway key when asked for. Raises KeyUnavailable saying how to provide one."""
        if secret_file:
            return cls("file", secret_file)
        if os.environ.get(ENV_VAR):
            return cls("env", ENV_VAR)
        if throwaway:
            return cls("throwaway", key=SecretKey.throwaway())
        raise KeyUnavailable(f"no secret key: {HOW}")

    def describe(self) -> str:
        if self.kind == "env":
            return f"${self.location}"
        if self.kind == "file":
            return f"file {self.location}"
        return "a throwaway random key"

    def resolve(self) -> SecretKey:
        """The key itself: call in the launcher to validate, and in DoFn.setup()."""
        if self.kind == "env":
            return SecretKey.from_env(self.location)
        if self.kind == "file":
            return read_secret_file(self.location)
        assert self._key is not None
        return self._key
