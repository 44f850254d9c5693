"""WriteLinkage: the crosswalks that re-identify, `uid_mapping.csv` and `patid_mapping.csv`
(header `id_old,id_new`, each pair once), written only to the linkage folder.

Every original PatientID gets a row: one the profile empties or removes maps to the empty
string, so the crosswalk accounts for every patient (a row is never left out)."""

from __future__ import annotations

import csv
import io

import apache_beam as beam

from deid.beam import paths

HEADER = "id_old,id_new"


def csv_line(pair: tuple[str, str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(pair)
    return buffer.getvalue()


def _write(pairs, label: str, folder: str, name: str, previous: list[str]):
    lines = pairs | f"{label}Csv" >> beam.Map(csv_line)
    if previous:  # earlier runs' crosswalk and pending rows: the crosswalk only grows
        earlier = (pairs.pipeline
                   | f"Previous{label}Files" >> beam.Create(previous)
                   | f"Previous{label}" >> beam.io.ReadAllFromText(skip_header_lines=1))
        lines = (lines, earlier) | f"All{label}" >> beam.Flatten()
    return (lines
            | f"Distinct{label}" >> beam.Distinct()
            | f"Write{label}" >> beam.io.WriteToText(
                paths.join(folder, name), file_name_suffix=".csv", num_shards=1,
                shard_name_template="", header=HEADER))


class WriteLinkage(beam.PTransform):
    """Linkage records in; `<folder>/uid_mapping.csv` and `<folder>/patid_mapping.csv` out,
    with the rows of ``previous`` files (same names, or `<name>-*.csv`; with a header) too."""

    def __init__(self, folder: str, previous: list[str] = ()):
        super().__init__()
        self._folder = folder
        self._previous = list(previous)

    def _previous_of(self, name: str) -> list[str]:
        return [p for p in self._previous if paths.basename(p).startswith(name)]

    def expand(self, linkage):
        uids = linkage | "UidPairs" >> beam.FlatMap(lambda r: [tuple(p) for p in r.uid_map])
        patient_ids = linkage | "PatientIdPairs" >> beam.FlatMap(
            lambda r: [tuple(r.patient_ids)] if r.patient_ids else [])
        return (_write(uids, "Uids", self._folder, "uid_mapping",
                       self._previous_of("uid_mapping")),
                _write(patient_ids, "PatientIds", self._folder, "patid_mapping",
                       self._previous_of("patid_mapping")))
