"""A run is a release step into a collection: what the launcher reads and writes around the
pipeline, on any Beam filesystem.

- `<output>/collection.json` says how the collection is made: the key's fingerprint (an HMAC
  of a fixed label: it tells keys apart and reveals nothing of the key), the profiles with the
  SHA-256 of their YAML (and of their lookup tables, keyed, since a table holds identifiers)
  and the Standard's edition. A run with another key or other profiles is refused unless it
  asks for a new version.
- `<output>/runs/<run id>.json` records each run: tool version, profiles, edition, key
  fingerprint, runner, start and end, status, counts by reason, and the inputs by scheme and
  a hash of their pattern. No input path (paths identify) and no value.
- `<quarantine>/ledger/` (deid.beam.ledger) says which inputs are done; it stays beside the
  quarantine because input paths identify.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from deid import __version__
from deid.beam import paths
from deid.keys import SecretKey
from deid.profile import Profile
from deid.profile.loader import load_documents

COLLECTION = "collection.json"
RUNS = "runs"
LEDGER = "ledger"
PENDING = "pending"  # in the linkage folder: crosswalk rows of runs not yet merged
BEAM_TEMP = "beam-temp-"
FORMAT = 1
_FINGERPRINT_LABEL = b"deid-pipeline collection key fingerprint v1"
FINISHED, RUNNING, INTERRUPTED, FAILED = "finished", "running", "interrupted", "failed"


def key_fingerprint(key: SecretKey) -> str:
    """HMAC-SHA256 of a fixed label with the key: the same key, the same fingerprint."""
    return key.digest(b"collection", _FINGERPRINT_LABEL).hex()


def profile_hashes(specs: list[str], profile: Profile, key: SecretKey) -> list[dict]:
    """Each profile file as applied (extends first), with the SHA-256 of its YAML text. Lookup
    tables hold original identifiers: their digest is keyed, so it can be published."""
    lookups: dict[str, list] = {}
    for rules in profile.by_tag.values():
        for rule in rules:
            if rule.lookup is not None:
                lookups.setdefault(rule.source.file, []).append(
                    sorted(rule.lookup.table.items()))
    found = []
    for document in load_documents(specs):
        if document.folder is None:  # built-in
            text = resources.files("deid.builtin_profiles").joinpath(
                Path(document.path).name).read_bytes()
        else:
            text = Path(document.path).read_bytes()
        entry = {"name": document.name, "sha256": hashlib.sha256(text).hexdigest()}
        if document.path in lookups:
            entry["lookup_hmac"] = key.digest(
                b"collection-lookup", json.dumps(lookups[document.path]).encode()).hex()
        found.append(entry)
    return found


@dataclass(frozen=True)
class Identity:
    """What makes two runs parts of one collection."""

    key_fingerprint: str
    profiles: tuple[tuple[str, str, str], ...]  # (name, sha256, lookup hmac)
    edition: tuple[str, ...]

    @classmethod
    def of(cls, specs: list[str], profile: Profile, key: SecretKey) -> Identity:
        hashes = profile_hashes(specs, profile, key)
        return cls(key_fingerprint(key),
                   tuple((h["name"], h["sha256"], h.get("lookup_hmac", "")) for h in hashes),
                   tuple(sorted(set(profile.editions))))

    @classmethod
    def from_json(cls, data: dict) -> Identity:
        return cls(data.get("key_fingerprint", ""),
                   tuple((p["name"], p["sha256"], p.get("lookup_hmac", ""))
                         for p in data.get("profiles", [])),
                   tuple(data.get("edition", [])))

    def profiles_json(self) -> list[dict]:
        return [{"name": n, "sha256": h, **({"lookup_hmac": lk} if lk else {})}
                for n, h, lk in self.profiles]

    def as_json(self) -> dict:
        return {"key_fingerprint": self.key_fingerprint, "profiles": self.profiles_json(),
                "edition": list(self.edition)}

    def differences(self, other: Identity) -> list[str]:
        found = []
        if self.key_fingerprint != other.key_fingerprint:
            found.append("another key")
        if self.profiles != other.profiles:
            names = "+".join(p[0] for p in other.profiles) or "no profiles"
            found.append(f"other profiles or profile contents ({names})")
        if self.edition != other.edition:
            found.append(f"another edition ({'/'.join(other.edition) or 'none'})")
        return found


# --- files on any filesystem ---------------------------------------------------------------

def read_json(path: str) -> dict | None:
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return json.loads(f.read().decode("utf-8"))
    except Exception:  # absent (or unreadable: treated as absent, the run then refuses)
        return None


def read_jsonl(path: str) -> list[dict]:
    """The records of a JSON Lines file (a manifest, a ledger file), blank lines skipped."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return [json.loads(line) for line in f.read().decode("utf-8").splitlines()
                if line.strip()]


def write_json(path: str, data: dict) -> None:
    """Whole or not at all: locally a temporary file renamed into place."""
    text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if paths.is_remote(path):
        with FileSystems.create(path, mime_type="application/json",
                                compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(text)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "wb") as f:
        f.write(text)
    os.replace(temporary, path)


def list_files(folder: str) -> list[str]:
    """Every file under a folder (an empty list when there is none)."""
    if not paths.is_remote(folder):
        if not os.path.isdir(folder):
            return []
        return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file())
    try:
        return sorted(m.path for m in FileSystems.match([paths.join(folder, "**")])[0]
                      .metadata_list)
    except Exception:
        return []


def delete_files(files: list[str]) -> None:
    for start in range(0, len(files), 500):
        with contextlib.suppress(Exception):
            FileSystems.delete(files[start:start + 500])


def delete_folder(folder: str) -> None:
    if paths.is_remote(folder):
        delete_files(list_files(folder))
    else:
        shutil.rmtree(folder, ignore_errors=True)


def prune_empty(folder: str) -> None:
    """Remove the empty folders under a local folder (buckets have none)."""
    if paths.is_remote(folder) or not os.path.isdir(folder):
        return
    for parent, _, _ in sorted(os.walk(folder), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(parent)


def holds_anything(folder: str) -> bool:
    """Whether a folder holds files other than this tool's probes (one object is enough)."""
    if not paths.is_remote(folder):
        return os.path.isdir(folder) and any(
            not name.startswith(".deid-probe-") for name in os.listdir(folder))
    try:
        found = FileSystems.match([paths.join(folder, "**")], limits=[2])[0].metadata_list
    except Exception:
        return False
    return any(".deid-probe-" not in m.path for m in found)


def remove_leftovers(folders: list[str]) -> int:
    """Beam's temporary folders (`beam-temp-*`, left by an interrupted write) and the staging
    folders of earlier runs. Call only when no other run writes these folders."""
    removed = 0
    for folder in folders:
        if paths.is_remote(folder):
            leftovers = [p for p in list_files(folder)
                         if p[len(folder):].lstrip("/").startswith((BEAM_TEMP, paths.STAGING))]
            delete_files(leftovers)
            removed += len(leftovers)
            continue
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith(BEAM_TEMP) or name == paths.STAGING:
                target = os.path.join(folder, name)
                removed += sum(len(files) for _, _, files in os.walk(target))
                shutil.rmtree(target, ignore_errors=True)
    return removed


def is_instance_path(relative: str) -> bool:
    """`<Study>/<Series>/<SOP>.dcm`, UIDs only: a file this tool writes into the tree."""
    parts = relative.split("/")
    return (len(parts) == 3 and parts[2].endswith(".dcm")
            and all(p.replace(".", "").isdigit() for p in (parts[0], parts[1], parts[2][:-4])))


# --- run records -----------------------------------------------------------------------------

def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def pattern_summary(patterns: list[str]) -> list[dict]:
    """Inputs without their paths: the scheme and a hash of the pattern (reruns compare)."""
    return [{"scheme": FileSystems.get_scheme(p) or "file",
             "pattern_sha256": hashlib.sha256(p.encode("utf-8")).hexdigest()[:16]}
            for p in patterns]


@dataclass
class RunRecord:
    """`<output>/runs/<run id>.json`, written when the run starts and when it ends."""

    folder: str  # the collection's root: the output folder (or the DICOMweb manifest folder)
    data: dict

    @property
    def path(self) -> str:
        return paths.join(self.folder, RUNS, f"{self.data['run']}.json")

    def save(self) -> None:
        write_json(self.path, self.data)

    def end(self, status: str, counts: dict[str, int] | None = None) -> None:
        self.data.update(status=status, ended=now())
        if counts is not None:
            self.data["counts"] = dict(sorted(counts.items()))
        with contextlib.suppress(Exception):  # a record must never turn a run into a failure
            self.save()


def previous_runs(folder: str) -> list[dict]:
    """The run records of a collection, oldest first."""
    records = [read_json(p) for p in list_files(paths.join(folder, RUNS))
               if p.endswith(".json")]
    return sorted((r for r in records if r and "run" in r), key=lambda r: r["run"])


def unfinished(records: list[dict]) -> list[dict]:
    """Runs that did not finish and that no later run has resumed."""
    return [r for r in records if r.get("status") != FINISHED and not r.get("resumed_by")]


def lock_path(quarantine: str) -> str:
    """The lock a run holds on its collection, beside the ledger."""
    return paths.join(quarantine, LEDGER, "lock.json")


def lock_owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def lock_is_live(lock: dict | None) -> bool:
    """Another process on this machine is writing the collection right now."""
    if not lock or lock.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(lock.get("pid", 0)), 0)
    except (OSError, ValueError):
        return False
    return int(lock["pid"]) != os.getpid()


def tool_version() -> str:
    return __version__
