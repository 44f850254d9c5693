"""WriteInstances: de-identified instances into `<output>/<Study>/<Series>/<SOP>.dcm`.

Each instance is first written under a temporary name in `<output>/.deid-staging/<run id>/`,
then renamed into place, so a killed job leaves no truncated file where outputs go. Inputs
that become the same output instance (the same SOP Instance UID: copies of a file, or one
instance in several transfer syntaxes) are grouped by output path (only their metadata is
shuffled): one is written, the others are quarantined as `duplicate_instance`. Which one is
``--prefer_duplicate``'s choice (PREFER): the smallest input path, or the one in the transfer
syntax most of the run's instances have (ties: the smallest path). So the outputs are a
function of the inputs and the key alone: a rerun with the same key writes byte-identical
files, whatever order the workers ran in.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from deid.beam import metrics, paths
from deid.beam.metadata import row_from
from deid.beam.records import DUPLICATE, INTERNAL_ERROR, OUTPUT_ERROR, Linkage, Quarantined, Staged

QUARANTINE, LINKAGE, DONE = "quarantine", "linkage", "done"
# --prefer_duplicate: which of the inputs that became one instance is written.
SMALLEST_PATH, COMMON_SYNTAX = "smallest-path", "common-syntax"
PREFER = (SMALLEST_PATH, COMMON_SYNTAX)
_LOG = logging.getLogger("deid.beam")


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def create_staged(staging: str):
    """A writable file at a staging path (local or in a bucket)."""
    return FileSystems.create(staging, mime_type="application/dicom",
                              compression_type=CompressionTypes.UNCOMPRESSED)


def duplicate_of(input_path: str, winner_input: str, identical: bool) -> Quarantined:
    """The record of an input that became the same instance as ``winner_input``, written."""
    same = "an identical" if identical else "a different"
    return Quarantined(input_path, DUPLICATE,
                       f"same SOP Instance UID as {winner_input}, which was written; this "
                       f"input gave {same} de-identified file")


class StageFn(beam.DoFn):
    """Write one instance under its temporary name (unless it was streamed there) and make
    its output folder; emit a Staged record (no pixel data)."""

    def __init__(self, output: str, staging: str, linkage: bool):
        super().__init__()
        self._output, self._staging, self._linkage = output, staging, linkage

    def process(self, element):
        input_path, out = element
        try:
            final = paths.output_path(self._output, out.study_instance_uid,
                                      out.series_instance_uid, out.sop_instance_uid)
            staging = paths.staging_file(self._staging, input_path)
            # The output's folders are made here, where workers run side by side, not in
            # CommitFn after the grouping, where a run waits for every rename.
            paths.ensure_parent(final)
            if out.data is not None:  # else DeidentifyFn streamed it there already
                with create_staged(staging) as f:
                    f.write(out.data)
            metadata = row_from(out.data if out.data is not None else staging)
            yield Staged.of(input_path, out, staging, final, metadata, self._linkage)
        except Exception as exc:
            _LOG.warning("cannot stage the output of %s: %s", input_path, type(exc).__name__)
            yield TaggedOutput(QUARANTINE, Quarantined(
                input_path, OUTPUT_ERROR, f"cannot write the output ({type(exc).__name__})"))


def preference(input_path: str, transfer_syntax: str,
               syntax_counts: dict[str, int] | None) -> tuple[int, str]:
    """Sort key of the inputs that became one instance, the one to write first: by input
    path, or, given how many of the run's instances each transfer syntax has (COMMON_SYNTAX),
    the most common syntax first."""
    return -(syntax_counts or {}).get(transfer_syntax, 0), input_path


def syntax_counts(syntaxes, prefer: str) -> dict:
    """The side input CommitFn and dicomweb.ChooseFn take: with COMMON_SYNTAX, how many of
    the run's instances (a PCollection of their transfer syntaxes) each syntax has."""
    if prefer != COMMON_SYNTAX:
        return {}
    return {"syntax_counts": beam.pvalue.AsDict(
        syntaxes | "CountTransferSyntaxes" >> beam.combiners.Count.PerElement())}


class CommitFn(beam.DoFn):
    """All staged candidates for one output path: rename the preferred one (preference)
    into place, delete the others' temporary files and quarantine them as duplicates. With
    keep_existing (a run adding to a collection), an instance already in place with other
    bytes came from another input of an earlier run: it stays, and the candidate is a
    duplicate (the same bytes are the same input's, placed by an interrupted run)."""

    def __init__(self, keep_existing: bool = False):
        super().__init__()
        self._keep_existing = keep_existing

    def setup(self):
        self._written = metrics.counter(metrics.WRITTEN)
        self._bytes = metrics.counter(metrics.BYTES_WRITTEN)

    def process(self, element, syntax_counts=None):
        _, group = element
        candidates = sorted(group, key=lambda s: preference(s.input, s.transfer_syntax_uid,
                                                            syntax_counts))
        winner = None
        for staged in candidates:
            outcome: Staged | Quarantined
            try:
                if winner is None and self._keep_existing and self._other_in_place(staged):
                    self._discard(staged)
                    outcome = Quarantined(
                        staged.input, DUPLICATE, "an instance with the same SOP Instance UID, "
                        "made from another input, is already in the collection")
                elif winner is None:
                    try:
                        self._commit(staged)
                    except Exception as exc:
                        _LOG.warning("cannot write %s: %s", staged.output_path,
                                     type(exc).__name__)
                        self._discard(staged)
                        outcome = Quarantined(
                            staged.input, OUTPUT_ERROR,
                            f"cannot move the output into place ({type(exc).__name__})")
                    else:
                        outcome = winner = staged
                else:
                    self._discard(staged)
                    outcome = duplicate_of(staged.input, winner.input,
                                           staged.sha256 == winner.sha256)
            except Exception as exc:
                outcome = Quarantined(staged.input, INTERNAL_ERROR, type(exc).__name__)
            if isinstance(outcome, Quarantined):
                yield TaggedOutput(QUARANTINE, outcome)
                continue
            self._written.inc()
            self._bytes.inc(staged.size)
            yield staged
            if staged.uid_map or staged.patient_ids:
                yield TaggedOutput(LINKAGE, Linkage(staged.uid_map, staged.patient_ids))
        yield TaggedOutput(DONE, len(candidates))

    @staticmethod
    def _commit(staged: Staged) -> None:
        paths.ensure_parent(staged.output_path)  # made by StageFn, unless since removed
        try:
            FileSystems.rename([staged.staging_path], [staged.output_path])
        except Exception:
            # A retried bundle: the rename may already have happened.
            if FileSystems.exists(staged.staging_path) or \
                    not FileSystems.exists(staged.output_path) or \
                    _sha256_of(staged.output_path) != staged.sha256:
                raise

    @staticmethod
    def _other_in_place(staged: Staged) -> bool:
        return FileSystems.exists(staged.output_path) and \
            _sha256_of(staged.output_path) != staged.sha256

    @staticmethod
    def _discard(staged: Staged) -> None:
        with contextlib.suppress(Exception):  # else RemoveStaging deletes what is left
            FileSystems.delete([staged.staging_path])


def remove_staging(_, staging: str) -> None:
    """After every commit: delete this run's staging folder (empty unless a step failed)."""
    try:
        if paths.is_remote(staging):
            left = FileSystems.match([paths.join(staging, "**")])[0].metadata_list
            if left:
                FileSystems.delete([m.path for m in left])
        else:
            shutil.rmtree(staging, ignore_errors=True)
            parent = os.path.dirname(staging)
            if os.path.isdir(parent) and not os.listdir(parent):
                os.rmdir(parent)
    except Exception as exc:
        _LOG.warning("cannot remove the staging folder %s: %s", staging, type(exc).__name__)


class WriteInstances(beam.PTransform):
    """(input path, Output) in; tagged PCollections out: `written` Staged records of the
    instances now in place, `quarantine` records, and `linkage` (only with linkage=True)."""

    def __init__(self, output: str, run_id: str, linkage: bool = False,
                 prefer: str = SMALLEST_PATH, keep_existing: bool = False):
        super().__init__()
        self._keep_existing = keep_existing
        self._output = output
        self._staging = paths.staging_dir(output, run_id)
        self._linkage = linkage
        self._prefer = prefer

    def expand(self, instances):
        staged = instances | "Stage" >> beam.ParDo(
            StageFn(self._output, self._staging, self._linkage)).with_outputs(
            QUARANTINE, main="staged")
        side = syntax_counts(
            staged.staged | "TransferSyntaxes" >> beam.Map(lambda s: s.transfer_syntax_uid),
            self._prefer)
        committed = (
            staged.staged
            | "KeyByOutputPath" >> beam.Map(lambda s: (s.output_path, s))
            | "GroupByOutputPath" >> beam.GroupByKey()
            | "Commit" >> beam.ParDo(CommitFn(self._keep_existing), **side).with_outputs(
                QUARANTINE, LINKAGE, DONE, main="written"))
        _ = (committed[DONE]
             | "CountCommitted" >> beam.CombineGlobally(sum)
             | "RemoveStaging" >> beam.Map(remove_staging, self._staging))
        quarantine = ((staged[QUARANTINE], committed[QUARANTINE])
                      | "QuarantineOfWrite" >> beam.Flatten())
        return {"written": committed.written, QUARANTINE: quarantine,
                LINKAGE: committed[LINKAGE]}
