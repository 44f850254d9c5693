"""Verify a set: pair originals with their de-identified files, check each pair, check the
set for consistency, and account for every file on both sides.

Pairing (see "Verifying" in README.md): two files are a pair; otherwise each original's new
SOP Instance UID (the key's replacement, or the UID itself where the profile keeps it) is
looked up among the outputs, indexed by the pipeline's manifest when there is one, else by
reading each output's header. An original without output is a finding unless the pipeline
quarantined it (its quarantine records) or the engine rejects it; an output without original
is a finding too. Local paths are read directly; gs:// and s3:// through Beam's FileSystems,
imported only when such a path is given.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

from pydicom import dcmread

from deid.engine import Output, deidentify_bytes
from deid.engine.files import check_size
from deid.engine.uids import replace_uid
from deid.keys import SecretKey
from deid.profile.model import Profile
from deid.verify.consistency import Consistency
from deid.verify.findings import (
    FAILED,
    PAIRING,
    PASSED,
    QUARANTINED,
    REJECTED,
    Finding,
    InstanceResult,
    Report,
)
from deid.verify.pair import Unverifiable, verify_pair
from deid.verify.references import References

MANIFEST, QUARANTINE, REPORT = "manifest.jsonl", "quarantine.jsonl", "verify_report.json"
SIDECARS = frozenset({MANIFEST, "manifest.parquet", "metadata.parquet", REPORT,
                      "collection.json"})
RUNS = "runs"  # <output>/runs/<run id>.json: the pipeline's run records
STAGING = ".deid-staging"
BEAM_TEMP = "/beam-temp-"


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


class Files:
    """Listing and reading files, local or in buckets (Beam's FileSystems, lazily)."""

    def __init__(self, beam_options: list[str] | None = None):
        self._beam_options = beam_options or []
        self._fs = None

    def _filesystems(self):
        if self._fs is None:
            from apache_beam.io.filesystems import FileSystems
            from apache_beam.options.pipeline_options import PipelineOptions

            FileSystems.set_options(PipelineOptions(self._beam_options))
            self._fs = FileSystems
        return self._fs

    def is_dir(self, path: str) -> bool:
        if not is_remote(path):
            return os.path.isdir(path)
        fs = self._filesystems()
        return not any(m.path == path for m in fs.match([path])[0].metadata_list)

    def exists(self, path: str) -> bool:
        """A file, or a folder (for buckets: a prefix with objects under it)."""
        if not is_remote(path):
            return os.path.exists(path)
        fs = self._filesystems()
        return fs.exists(path) or bool(fs.match([path.rstrip("/") + "/**"])[0].metadata_list)

    def list(self, root: str) -> list[str]:
        """Every file under a folder (sorted; not the pipeline's sidecars and run records;
        staging and Beam's temporary files are strays, listed), or the file itself."""
        if not self.is_dir(root):
            return [root if is_remote(root) else os.path.abspath(root)]
        if is_remote(root):
            found = self._filesystems().match([root.rstrip("/") + "/**"])[0].metadata_list
            names = [m.path for m in found]
        else:
            names = [str(p) for p in Path(os.path.abspath(root)).rglob("*") if p.is_file()]
        top = root.rstrip("/") if is_remote(root) else os.path.abspath(root)
        runs = f"{top}/{RUNS}/"
        return sorted(n for n in names
                      if not (n.startswith(runs) and n.endswith(".json"))
                      and not (n.rsplit("/", 1)[0].rstrip("/") == top
                               and n.rsplit("/", 1)[-1] in SIDECARS))

    def read(self, path: str) -> bytes:
        if not is_remote(path):
            return Path(path).read_bytes()
        from apache_beam.io.filesystem import CompressionTypes

        with self._filesystems().open(path, compression_type=CompressionTypes.UNCOMPRESSED
                                      ) as f:
            return f.read()

    def join(self, folder: str, name: str) -> str:
        return f"{folder.rstrip('/')}/{name}" if is_remote(folder) else os.path.join(folder, name)


def _sop_uid(data: bytes) -> str | None:
    try:
        check_size(data)  # a bomb is not inflated here either: it has no output to pair
        dataset = dcmread(io.BytesIO(data), force=True, specific_tags=[0x00080018],
                          stop_before_pixels=True)
        return str(dataset.get("SOPInstanceUID", "") or "").strip("\0 ") or None
    except Exception:
        return None


def _stray_reason(path: str) -> str:
    if f"/{STAGING}/" in path:
        return "a staging file an interrupted run left (not in the pipeline's manifest)"
    if BEAM_TEMP in path:
        return "a temporary file of an interrupted Beam write (not in the pipeline's manifest)"
    return "the file is not in the pipeline's manifest"


def _jsonl(files: Files, path: str) -> Iterator[dict]:
    if not files.exists(path):
        return
    for line in files.read(path).decode("utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


class SetVerifier:
    """Pairs and verifies; `report` holds the outcome."""

    def __init__(self, profile: Profile, key: SecretKey | None, files: Files):
        self.profile, self.key, self.files = profile, key, files
        self.report = Report(profile.names)
        self.consistency = Consistency()
        self.references = References()

    def pair(self, original: str, output: str, data: bytes | None = None) -> InstanceResult:
        """Verify one pair; a file that cannot be read or compared is a finding."""
        try:
            data = data if data is not None else self.files.read(original)
            written = self.files.read(output)
            self.references.add(data, written, output)
            result = verify_pair(data, written, self.profile)
        except Exception as exc:  # unreadable files: a finding, without the exception text
            detail = str(exc) if isinstance(exc, Unverifiable) else \
                f"cannot read the pair ({type(exc).__name__})"
            return InstanceResult(original, output, FAILED,
                                  [Finding(PAIRING, "unverifiable", "the pair", detail)])
        self.consistency.add(output, result.mappings)
        return InstanceResult(original, output, FAILED if result.findings else PASSED,
                              result.findings)

    def run(self, originals: str, deidentified: str, quarantine: str | None) -> Report:
        files = self.files
        if not files.is_dir(originals) and not files.is_dir(deidentified):
            self.report.instances.append(self.pair(files.list(originals)[0],
                                                   files.list(deidentified)[0]))
        else:
            self._folders(originals, deidentified, quarantine)
        self.report.set_findings = (self.consistency.findings() + self.references.findings()
                                    + self._unfinished_runs(deidentified))
        self.report.references = self.references.counts
        return self.report

    def _output_index(self, deidentified: str) -> dict[str, str]:
        """New SOP Instance UID -> output file: from the manifest, else from the headers."""
        outputs = self.files.list(deidentified)
        manifest = self.files.join(deidentified, MANIFEST) if self.files.is_dir(
            deidentified) else None
        rows = list(_jsonl(self.files, manifest)) if manifest else []
        if rows:
            # <Study>/<Series>/<SOP>.dcm under this folder, wherever the run wrote it
            index = {row["sop_instance_uid"]: self.files.join(
                deidentified if is_remote(deidentified) else os.path.abspath(deidentified),
                "/".join(row["output_path"].replace("\\", "/").split("/")[-3:]))
                for row in rows}
            listed = set(index.values())
            for path in outputs:
                if path not in listed:
                    self._unpaired(path, _stray_reason(path))
            return index
        index = {}
        for path in outputs:
            uid = _sop_uid(self.files.read(path))
            if uid is None:
                self._unpaired(path, "not a DICOM instance with a SOP Instance UID")
            else:
                index[uid] = path
        return index

    def _unfinished_runs(self, deidentified: str) -> list[Finding]:
        """A pipeline output's runs that did not finish and that no later run resumed: what
        they placed may be missing from the manifest, or half there."""
        if not self.files.is_dir(deidentified):
            return []
        folder = self.files.join(deidentified, RUNS)
        found = []
        for path in (self.files.list(folder) if self.files.exists(folder) else []):
            try:
                record = json.loads(self.files.read(path))
            except (ValueError, OSError):
                continue
            if record.get("status") != "finished" and not record.get("resumed_by"):
                found.append(Finding(
                    PAIRING, "unfinished_run", f"{RUNS}/{path.rsplit('/', 1)[-1]}",
                    f"run {record.get('run')} did not finish ({record.get('status')}): run "
                    "the same command again to resume it"))
        return found

    def _unpaired(self, output: str, why: str) -> None:
        self.report.instances.append(InstanceResult(None, output, FAILED, [
            Finding(PAIRING, "unpaired_output", "the file", why)]))

    def _folders(self, originals: str, deidentified: str, quarantine: str | None) -> None:
        index = self._output_index(deidentified)
        if quarantine is None and self.files.is_dir(deidentified):
            quarantine = deidentified.rstrip("/") + "-quarantine"
        records = {r["input"]: r["reason"] for r in _jsonl(
            self.files, self.files.join(quarantine, QUARANTINE))} if quarantine else {}
        paired: set[str] = set()
        for original in self.files.list(originals):
            data = self.files.read(original)
            uid = _sop_uid(data)
            candidates = [replace_uid(self.key, uid), uid] if uid and self.key else [uid]
            output = next((index[c] for c in candidates if c in index), None)
            if original in records:
                self.references.add(data, None, original)
                self.report.instances.append(InstanceResult(
                    original, output, QUARANTINED, note=records[original]))
            elif output is not None:
                paired.add(output)
                self.report.instances.append(self.pair(original, output, data))
            else:
                self.references.add(data, None, original)
                self.report.instances.append(self._without_output(original, data))
        for output in sorted(set(index.values()) - paired):
            self._unpaired(output, "no original has this SOP Instance UID")

    def _without_output(self, original: str, data: bytes) -> InstanceResult:
        """An original with no output: fine if the engine rejects it, else a finding."""
        result = deidentify_bytes(data, self.profile, self.key or SecretKey.throwaway())
        if not isinstance(result, Output):
            return InstanceResult(original, None, REJECTED, note=result.reason)
        hint = "" if self.key else " (no key: pass $DEID_SECRET or --secret-file to pair by " \
                                   "the replaced SOP Instance UID)"
        return InstanceResult(original, None, FAILED, [Finding(
            PAIRING, "missing_output", "the file",
            "the engine writes this instance, but no output has its SOP Instance UID" + hint)])
