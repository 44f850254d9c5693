"""The pipeline's own options. Every standard Beam option passes through beside them."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from deid import STREAM_THRESHOLD_MB
from deid.keys import ENV_VAR

OWN_OPTIONS = (
    ("input", dict(action="append", metavar="PATH",
                   help="a folder, a glob (`**` crosses folders) or a bucket prefix: local, "
                        "gs://, s3://; or a DICOMweb store, dicomweb+http(s)://HOST/ROOT with "
                        "an optional QIDO-RS query (?Modality=CT&StudyDate=2020-2021); "
                        "repeat for several")),
    ("output", dict(metavar="FOLDER",
                    help="where de-identified instances go, as "
                         "<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm with "
                         "new UIDs, beside manifest.jsonl, manifest.parquet and "
                         "metadata.parquet; or a DICOMweb store, dicomweb+http(s)://HOST/ROOT "
                         "(STOW-RS; needs --manifest_output)")),
    ("manifest_output", dict(metavar="FOLDER",
                             help="with a DICOMweb --output (only): the folder for the "
                                  "manifest, metadata.parquet and the verify report; the "
                                  "quarantine defaults to <manifest_output>-quarantine")),
    ("profile", dict(action="append", metavar="NAME|FILE",
                     help="a built-in profile or a YAML file; repeat to compose, later wins")),
    ("quarantine_output", dict(metavar="FOLDER",
                               help="where quarantine.jsonl (and with --quarantine_copy the "
                                    "originals) go; default: <output>-quarantine, beside the "
                                    "output, never inside it")),
    ("linkage_output", dict(metavar="FOLDER",
                            help="write uid_mapping.csv and patid_mapping.csv (old and new "
                                 "identifiers: they re-identify) there; never inside the "
                                 "output")),
    ("secret_file", dict(metavar="PATH",
                         help=f"file holding the secret key, local or gs:// or s3:// (default: "
                              f"${ENV_VAR}); workers read it themselves")),
    ("throwaway_key", dict(action="store_true",
                           help="a random key, for a trial run on a local runner only: its "
                                "UIDs and dates can never be reproduced")),
    ("allow_quarantine", dict(action="store_true",
                              help="exit 0 even when inputs were quarantined")),
    ("quarantine_copy", dict(action="store_true",
                             help="copy quarantined originals into <quarantine>/originals/")),
    ("stream_threshold_mb", dict(type=int, default=STREAM_THRESHOLD_MB, metavar="MB",
                                 help="stream inputs larger than this, from input to output "
                                      "in chunks: no worker holds their pixel data "
                                      "(default: %(default)s)")),
    ("verify", dict(action="store_true",
                    help="check each instance against its original before it is written "
                         "(a failure is quarantined as verification_failed) and the run for "
                         "consistency; report in <output>/verify_report.json; exit 1 on any "
                         "finding")),
    ("prefer_duplicate", dict(choices=("smallest-path", "common-syntax"),
                              default="smallest-path",
                              help="of inputs that become the same instance (one instance in "
                                   "several files), write the one with the smallest path "
                                   "(default), or the one in the transfer syntax most of the "
                                   "run's instances have; the others are quarantined as "
                                   "duplicate_instance")),
    ("new_version", dict(action="store_true",
                         help="the output holds a collection made with another key or other "
                              "profiles: replace it with a new version made from these inputs "
                              "(every input de-identified again; the previous version's "
                              "instances, ledger and crosswalk go once this run has finished)")),
    ("exclude", dict(action="append", metavar="GLOB",
                     help="leave out inputs matching GLOB (repeatable): a glob without '/' "
                          "matches the file name, one with '/' the whole path; .DS_Store, "
                          "Thumbs.db, desktop.ini, ._* and __MACOSX/ are always left out. "
                          "Left-out files are counted, not quarantined")),
    ("sample", dict(action="store_true",
                    help="add the DICOM test files shipped inside pydicom as input")),
)


# The short forms every `deid` command shares.
SHORT = {"profile": ["-p"]}


def add_own_options(parser) -> None:
    """`--name` and `--name-with-hyphens` alike (as every `deid` command takes them)."""
    for name, kwargs in OWN_OPTIONS:
        flags = [f"--{name}"]
        if "_" in name:
            flags.append(f"--{name.replace('_', '-')}")
        flags += SHORT.get(name, [])
        parser.add_argument(*flags, dest=name, **kwargs)


class DeidentifyOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_own_options(parser)
