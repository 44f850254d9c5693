"""DICOMweb as a source and a sink of `deid run`, against real Orthanc servers with their
DICOMweb plugin (Debian orthanc and orthanc-dicomweb), started by the fixtures on free
loopback ports: the DICOM port off, remote access refused, storage in a temporary folder.

One pipeline run (DICOMweb to DICOMweb, a module fixture) serves the round-trip tests; the
query, refusal and failure tests run small pipelines of their own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pydicom
import pytest
from conftest import _answers, _start, _stop, free_port
from pydicom.data import get_testdata_file

from deid.beam import dicomweb
from deid.beam.dicomweb import STORE_REFUSED, Store, StoreUnavailable
from deid.keys import SecretKey
from deid.profile import load_profiles
from deid.verify import verify_pair
from pipelines import deidentify

ORTHANC = shutil.which("Orthanc")
PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
pytestmark = pytest.mark.skipif(
    ORTHANC is None or not PLUGIN.exists(),
    reason="Orthanc and its DICOMweb plugin are not installed (Debian packages orthanc and "
           "orthanc-dicomweb; `make install` installs them where apt-get is usable)")

SECRET = "dicomweb-tests-0123456789abcdef"
# Four instances basic writes (CT, MR, an implicit VR RT Plan, a segmentation) and one it
# quarantines (burned_in_annotation): distinct studies, SOP Instance UIDs and transfer syntaxes.
WRITTEN = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "liver_1frame.dcm")
QUARANTINED = "SC_rgb_rle.dcm"
USER, PASSWORD = "deid", "release-password"


@dataclass
class Orthanc:
    folder: Path
    port: int
    process: object
    auth: tuple[str, str] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"dicomweb+{self.http}/dicom-web"

    def rest(self, method: str, path: str, data: bytes | str | None = None):
        import requests

        response = requests.request(method, self.http + path, data=data, auth=self.auth,
                                    timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def client(self):
        from dicomweb_client import DICOMwebClient, session_utils

        session = (session_utils.create_session_from_user_pass(*self.auth) if self.auth
                   else session_utils.create_session())
        client = DICOMwebClient(self.http + "/dicom-web", session=session)
        client.set_http_retry_params(retry=False)
        return client

    def served(self, url: str) -> list[bytes]:
        """The parts WADO-RS answers for an instance URL, as stored (`transfer-syntax=*`;
        the client's default Accept asks for a transcoding)."""
        import requests

        response = requests.get(url, auth=self.auth, timeout=30, headers={
            "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
        response.raise_for_status()
        return list(self.client()._decode_multipart_message(response, stream=False))

    def delete_instance(self, sop: str) -> None:
        """DICOMweb has no delete in Orthanc's plugin: its REST API does it."""
        for found in self.rest("POST", "/tools/lookup", sop):
            if found["Type"] == "Instance":
                self.rest("DELETE", found["Path"])

    def stop(self) -> None:
        _stop(self.process)


def start_orthanc(folder: Path, auth: tuple[str, str] | None = None,
                  lua: str | None = None) -> Orthanc:
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    if lua:
        (folder / "filter.lua").write_text(lua)
    config = {
        "Name": f"deid-test-{port}",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "RemoteAccessAllowed": False,  # Orthanc 1.10 has no bind address: loopback only
        "DicomServerEnabled": False,
        "HttpPort": port,
        "AuthenticationEnabled": auth is not None,
        "RegisteredUsers": dict([auth]) if auth else {},
        "Plugins": [str(PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": f"127.0.0.1:{port}",
                     "Ssl": False},
        "LuaScripts": [str(folder / "filter.lua")] if lua else [],
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    process = _start([ORTHANC, str(folder / "orthanc.json")], folder / "orthanc.log",
                     _answers(f"http://127.0.0.1:{port}/system"))
    return Orthanc(folder, port, process, auth)


def _uids(path: str) -> tuple[str, str, str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def run_main(argv: list[str]) -> tuple[int, str]:
    """`deid run` with its printed output and every log record of the run, as one text."""
    out, err, records = io.StringIO(), io.StringIO(), _Records()
    root = logging.getLogger()
    root.addHandler(records)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = deidentify.main(argv)
    finally:
        root.removeHandler(records)
    return code, "\n".join([out.getvalue(), err.getvalue(), *records.lines])


@pytest.fixture(scope="module")
def env():
    patch = pytest.MonkeyPatch()
    patch.setenv("DEID_SECRET", SECRET)
    patch.setenv(dicomweb.RETRY, "0")  # a store down fails at once (else ~30 s of retries)
    patch.setenv(dicomweb.OUTPUT_USER, USER)
    patch.setenv(dicomweb.OUTPUT_PASSWORD, PASSWORD)
    yield patch
    patch.undo()


@pytest.fixture(scope="module")
def source(env, tmp_path_factory):
    """Orthanc holding the originals."""
    server = start_orthanc(tmp_path_factory.mktemp("source"))
    try:
        for name in (*WRITTEN, QUARANTINED):
            server.rest("POST", "/instances", Path(get_testdata_file(name)).read_bytes())
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def release(env, tmp_path_factory):
    """Orthanc for the de-identified instances, behind basic authentication."""
    server = start_orthanc(tmp_path_factory.mktemp("release"), auth=(USER, PASSWORD))
    yield server
    server.stop()


def round_trip_argv(source: Orthanc, release: Orthanc, folder: Path) -> list[str]:
    return ["--input", source.dicomweb,  # the CT is listed twice: read once
            "--input", source.dicomweb + "?Modality=CT", "--output", release.dicomweb,
            "--manifest_output", str(folder / "release"),
            "--linkage_output", str(folder / "linkage"), "--profile", "basic", "--verify"]


@pytest.fixture(scope="module")
def round_trip(source, release, tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    code, text = run_main(round_trip_argv(source, release, folder))
    manifest = [json.loads(line) for line in
                (folder / "release" / "manifest.jsonl").read_text().splitlines()]
    quarantine = [json.loads(line) for line in
                  (folder / "release-quarantine" / "quarantine.jsonl").read_text().splitlines()]
    return code, text, manifest, quarantine, folder


def test_round_trip_stores_every_instance_deidentified(round_trip, release):
    code, text, manifest, quarantine, folder = round_trip
    assert code == 1, text  # the burned-in secondary capture is quarantined
    assert "2 DICOMweb queries (listed as the run goes) -> dicomweb+http" in text
    assert "read               5 files" in text
    report = json.loads((folder / "release" / "verify_report.json").read_text())
    assert report["instances_verified"] == len(WRITTEN) and report["instances_failed"] == 0
    assert "written            4 files" in text and "quarantined        1 files" in text
    assert len(manifest) == len(WRITTEN)
    profile = load_profiles(["basic"])
    originals = {pydicom.dcmread(get_testdata_file(n), stop_before_pixels=True).SOPClassUID:
                 Path(get_testdata_file(n)).read_bytes() for n in WRITTEN}
    for row in manifest:
        assert row["output_path"] == (f"{release.dicomweb}/studies/{row['study_instance_uid']}"
                                      f"/series/{row['series_instance_uid']}/instances/"
                                      f"{row['sop_instance_uid']}")
        [stored] = release.served(row["output_path"][len("dicomweb+"):])
        served = pydicom.dcmread(io.BytesIO(stored))
        original = originals[row["sop_class_uid"]]
        # De-identified, as deid verify judges it, and the pixel data as written.
        assert not verify_pair(original, stored, profile).findings
        source_ds = pydicom.dcmread(io.BytesIO(original))
        if "PixelData" in source_ds:
            assert served.PixelData == source_ds.PixelData
        assert served.file_meta.TransferSyntaxUID == row["transfer_syntax_uid"]
        assert served.SOPInstanceUID != source_ds.SOPInstanceUID


def test_the_store_serves_exactly_the_written_bytes(round_trip, release):
    _, _, manifest, _, _ = round_trip
    for row in manifest:
        parts = release.served(row["output_path"][len("dicomweb+"):])
        assert [hashlib.sha256(p).hexdigest() for p in parts] == [row["sha256"]]
        assert len(parts[0]) == row["size"]


def test_the_metadata_of_a_dicomweb_output_is_in_the_manifest_folder(round_trip, release):
    """metadata.parquet beside the manifest in --manifest_output: a row per stored instance,
    each cell as the store serves the instance."""
    _, _, manifest, _, folder = round_trip
    table = pq.read_table(folder / "release" / "metadata.parquet")
    rows = {row["SOPInstanceUID"]: row for row in table.to_pylist()}
    assert set(rows) == {row["sop_instance_uid"] for row in manifest}
    for row in manifest:
        [stored] = release.served(row["output_path"][len("dicomweb+"):])
        served = pydicom.dcmread(io.BytesIO(stored), stop_before_pixels=True)
        cells = rows[row["sop_instance_uid"]]
        assert (cells["Modality"], cells["SeriesInstanceUID"], cells["StudyInstanceUID"]) == \
            (served.Modality, served.SeriesInstanceUID, served.StudyInstanceUID)
        assert cells["PatientIdentityRemoved"] == served.PatientIdentityRemoved == "YES"


def test_new_uids_are_searchable_and_the_originals_are_not(round_trip, release):
    _, _, manifest, _, _ = round_trip
    client = release.client()
    assert {s["0020000D"]["Value"][0] for s in client.search_for_studies()} == \
        {row["study_instance_uid"] for row in manifest}
    for row in manifest:
        found = client.search_for_instances(search_filters={
            "SOPInstanceUID": row["sop_instance_uid"]})
        assert [f["00080018"]["Value"][0] for f in found] == [row["sop_instance_uid"]]
    for name in WRITTEN:
        study, _, sop = _uids(get_testdata_file(name))
        assert not client.search_for_studies(search_filters={"StudyInstanceUID": study})
        assert not client.search_for_instances(search_filters={"SOPInstanceUID": sop})


def test_round_trip_crosswalk_quarantine_and_logs_hold_no_original_uid(round_trip, source):
    _, text, manifest, quarantine, folder = round_trip
    study, series, sop = _uids(get_testdata_file(QUARANTINED))
    digest = hashlib.sha256(f"{study}/{series}/{sop}".encode()).hexdigest()[:32]
    assert [(r["reason"], r["input"]) for r in quarantine] == \
        [("burned_in_annotation", f"{source.dicomweb}#{digest}")]
    crosswalk = (folder / "linkage" / "uid_mapping.csv").read_text().splitlines()
    news = {line.split(",")[1] for line in crosswalk[1:]}
    assert {row["sop_instance_uid"] for row in manifest} <= news
    sidecars = "".join(p.read_text() for p in (folder / "release").iterdir()
                       if p.suffix == ".jsonl")
    for name in (*WRITTEN, QUARANTINED):
        for uid in _uids(get_testdata_file(name)):
            assert uid not in text and uid not in json.dumps(quarantine) and uid not in sidecars
            assert any(line.startswith(uid + ",") for line in crosswalk) or name == QUARANTINED


def test_a_rerun_retrieves_nothing_the_ledger_holds(round_trip, source, release):
    """The same run again: every instance is done (written or quarantined) by the ledger, so
    nothing is retrieved or stored again, and the collection is unchanged."""
    _, _, manifest, _, folder = round_trip
    code, text = run_main(round_trip_argv(source, release, folder))
    assert code == 1, text  # the collection holds a quarantined input, as after the first run
    assert "already            4 written, 1 quarantined" in text
    assert "read               0 files" in text
    rows = [json.loads(line) for line in
            (folder / "release" / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["sop_instance_uid"] for r in rows) == \
        sorted(r["sop_instance_uid"] for r in manifest)


def test_query_selects_studies_series_and_instances(source, tmp_path):
    """`?Modality=CT&StudyDate=a-b`: the study level matches the date range, the series level
    the modality; a DICOMweb input beside a folder input, into a folder output, on two
    worker processes (they search and retrieve with their own clients)."""
    ct = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    query = f"?Modality=CT&StudyDate={ct.StudyDate[:4]}-{ct.StudyDate[:4]}"  # years
    (tmp_path / "files").mkdir()
    shutil.copy(get_testdata_file("rtdose.dcm"), tmp_path / "files")
    code, text = run_main(["--input", source.dicomweb + query, "--input",
                           str(tmp_path / "files"), "--output", str(tmp_path / "out"),
                           "--profile", "basic", "--direct_running_mode", "multi_processing",
                           "--direct_num_workers", "2"])
    assert code == 0, text
    assert "1 DICOMweb query (listed as the run goes), 1 files found under 1 input(s)" in text
    written = sorted(pydicom.dcmread(p).Modality for p in (tmp_path / "out").rglob("*.dcm"))
    assert written == ["CT", "RTDOSE"]
    assert ct.StudyDate not in text  # the query's values are not logged either


def test_an_instance_deleted_after_listing_is_unreadable(source, tmp_path):
    """WADO-RS of an instance the store no longer has (404): quarantined, not a failure."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    store = Store.parse(source.dicomweb)
    study, series, sop = _uids(get_testdata_file("MR_small.dcm"))
    missing = dicomweb.InstanceRef(store, study, series, sop + ".9")
    with TestPipeline() as p:
        retrieved = (p | beam.Create([missing]) | beam.ParDo(dicomweb.RetrieveFn())
                     | beam.Map(lambda r: (r.metadata.path == missing.label, r.error)))
        assert_that(retrieved, equal_to([(True, "WADO-RS answered HTTP 404")]))


def test_refused_instances_are_quarantined_the_others_stored(release):
    """Orthanc answers 400 when a part is not DICOM, acknowledging the others: the refused
    instance is quarantined with the status, the others are written."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from deid.engine import deidentify_bytes

    key = SecretKey(b"refusal-tests-0123456789abcdef", "tests")
    good = deidentify_bytes(Path(get_testdata_file("rtplan.dcm")).read_bytes(),
                            load_profiles(["basic"]), key)
    bad = dataclasses.replace(good, data=b"\0" * 128 + b"DICM" + b"not a data set",
                              sop_instance_uid=good.sop_instance_uid + ".1")
    with TestPipeline() as p:
        out = (p | beam.Create([("in/good", good), ("in/bad", bad)])
               | dicomweb.StoreInstances(Store.parse(release.dicomweb, output=True)))
        assert_that(out["written"] | "Written" >> beam.Map(lambda s: s.input),
                    equal_to(["in/good"]), label="written")
        assert_that(out["quarantine"] | beam.Map(lambda q: (q.input, q.reason, q.message)),
                    equal_to([("in/bad", STORE_REFUSED, "the store did not acknowledge it "
                               "(STOW-RS: HTTP 400)")]), label="quarantined")
    client = release.client()
    assert client.search_for_instances(search_filters={"SOPInstanceUID": good.sop_instance_uid})
    release.delete_instance(good.sop_instance_uid)


# Orthanc's DICOMweb plugin acknowledges an instance that this filter then refuses.
DROP_RT_PLANS = """
function ReceivedInstanceFilter(dicom, origin, info)
  return dicom.Modality ~= 'RTPLAN'
end
"""


def test_an_instance_acknowledged_but_not_stored_is_quarantined(env, tmp_path):
    """A store may acknowledge an instance and drop it (Orthanc with a Lua filter): QIDO-RS
    after STOW-RS finds it missing, so it is quarantined instead of counted as written."""
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    from deid.engine import deidentify_bytes

    server = start_orthanc(tmp_path / "filtering", lua=DROP_RT_PLANS)
    try:
        key = SecretKey(b"filter-tests-0123456789abcdef", "tests")
        outs = [(name, deidentify_bytes(Path(get_testdata_file(name)).read_bytes(),
                                        load_profiles(["basic"]), key))
                for name in ("CT_small.dcm", "rtplan.dcm")]
        with TestPipeline() as p:
            out = (p | beam.Create(outs)
                   | dicomweb.StoreInstances(Store.parse(server.dicomweb, output=True)))
            assert_that(out["written"] | "Written" >> beam.Map(lambda s: s.input),
                        equal_to(["CT_small.dcm"]), label="written")
            assert_that(out["quarantine"] | beam.Map(lambda q: (q.input, q.reason, q.message)),
                        equal_to([("rtplan.dcm", STORE_REFUSED, "the store acknowledged it "
                                   "(STOW-RS: HTTP 200) but QIDO-RS does not find it")]),
                        label="quarantined")
    finally:
        server.stop()


def test_stow_failure_reasons_are_read_per_instance():
    """Orthanc's answer to a study mismatch (409), as it sends it."""
    body = {"00081198": {"vr": "SQ", "Value": [{
        "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.4"]},
        "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
        "00081197": {"vr": "US", "Value": [272]}}]},
        "00081199": {"vr": "SQ", "Value": [{"00081155": {"vr": "UI", "Value": ["1.2.3.5"]}}]}}
    assert dicomweb.stow_outcome(body) == ({"1.2.3.5"}, {"1.2.3.4": 272})
    assert dicomweb.stow_outcome(None) == (set(), {})


def test_a_store_down_fails_the_run_with_exit_3(source, tmp_path):
    down = f"dicomweb+http://127.0.0.1:{free_port()}/dicom-web"
    for argv in (["--input", down, "--output", str(tmp_path / "a")],
                 ["--input", source.dicomweb, "--output", down,
                  "--manifest_output", str(tmp_path / "b")]):
        code, text = run_main([*argv, "--profile", "basic"])
        assert code == 3, text
        assert "cannot connect" in text and "dicom-web" in text
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_store_that_goes_down_during_the_run_fails_it(source, release, tmp_path):
    checked = deidentify.plan(["--input", source.dicomweb + "?Modality=MR", "--output",
                               release.dicomweb, "--manifest_output", str(tmp_path / "m"),
                               "--profile", "basic"])
    down = Store.parse(f"dicomweb+http://127.0.0.1:{free_port()}/dicom-web", output=True)
    with pytest.raises(Exception, match="StoreUnavailable|cannot connect"):
        deidentify.run(dataclasses.replace(checked, sink=down))


@pytest.mark.parametrize("argv, expected", [
    (["--input", "dicomweb+http://h/dicom-web?Modality=C*"], "wildcard"),
    (["--input", "dicomweb+http://h/dicom-web?NotAKeyword=1"], "not a DICOM keyword"),
    (["--input", "dicomweb+http://h/dicom-web?StudyDate=2020-13"], "YYYYMMDD"),
    (["--input", "dicomweb+http://u:p@h/dicom-web"], "credentials in the URL"),
    (["--input", "x", "--output", "dicomweb+http://h/dicom-web"], "--manifest_output"),
    (["--input", "x", "--output", "out", "--manifest_output", "m"], "goes with a DICOMweb"),
    (["--input", "dicomweb+http://h/dw", "--output", "dicomweb+http://h/dw/",
      "--manifest_output", "m"], "the same DICOMweb store"),
    (["--input", "dicomweb+http://h/dw", "--quarantine_copy"], "--quarantine_copy"),
])
def test_usage_errors(argv, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("DEID_SECRET", SECRET)
    monkeypatch.chdir(tmp_path)
    full = [*argv, "--profile", "basic"]
    if "--output" not in full:
        full += ["--output", "out"]
    with pytest.raises(deidentify.UsageError, match=expected) as error:
        deidentify.plan(full)
    assert "u:p" not in str(error.value)


@pytest.mark.parametrize("value, expected", [
    ("2020-2021", "20200101-20211231"), ("2020", "20200101-20201231"),
    ("202002", "20200201-20200229"), ("20200315-", "20200315-"), ("-202112", "-20211231"),
    ("20200315", "20200315"), ("20200101-20211231", "20200101-20211231"),
    ("2020-13", None), ("20200230", None), ("20201", None), ("2021-2020", None), ("-", None),
    ("", None), ("2020*", None)])
def test_query_dates_become_whole_dates(value, expected):
    """Orthanc answers StudyDate=2004-2004 with no study: years and months become the
    whole dates range matching takes (PS3.4 C.2.2.2.5)."""
    assert dicomweb.date_range(value) == expected


def test_store_unavailable_names_no_uid():
    store = Store.parse("dicomweb+http://127.0.0.1:9/dicom-web?StudyInstanceUID=1.2.3")
    assert "1.2.3" not in repr(store) and store.label == "dicomweb+http://127.0.0.1:9/dicom-web"
    with pytest.raises(StoreUnavailable) as error:
        store.check()
    assert "1.2.3" not in str(error.value) and "cannot connect" in str(error.value)


def test_credentials_come_from_the_environment(tmp_path, monkeypatch):
    """Basic authentication from DEID_DICOMWEB_USER/PASSWORD, the output's own pair winning
    for the output; Google's application default credentials for the Cloud Healthcare API."""
    monkeypatch.setenv(dicomweb.USER, "reader")
    monkeypatch.setenv(dicomweb.PASSWORD, "read")
    monkeypatch.setenv(dicomweb.OUTPUT_USER, "writer")
    monkeypatch.setenv(dicomweb.OUTPUT_PASSWORD, "write")
    url = "dicomweb+http://127.0.0.1:9/dicom-web"
    assert Store.parse(url).client()._session.auth == ("reader", "read")
    assert Store.parse(url, output=True).client()._session.auth == ("writer", "write")
    monkeypatch.delenv(dicomweb.OUTPUT_USER)
    assert Store.parse(url, output=True).client()._session.auth == ("reader", "read")

    from google.auth.transport.requests import AuthorizedSession

    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({
        "type": "authorized_user", "client_id": "test", "client_secret": "test",
        "refresh_token": "test", "token": "test-token", "expiry": "2999-01-01T00:00:00Z"}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
    google = Store.parse("dicomweb+https://healthcare.googleapis.com/v1/projects/p/locations/"
                         "l/datasets/d/dicomStores/s/dicomWeb", output=True)
    session = google.client()._session
    assert isinstance(session, AuthorizedSession) and session.auth is None


def test_credentials_for_remote_workers_are_named_in_a_warning(source, tmp_path, monkeypatch,
                                                               caplog):
    monkeypatch.setenv(dicomweb.USER, "user-7f3a")
    monkeypatch.setenv(dicomweb.PASSWORD, "password-91c2")
    argv = ["--input", source.dicomweb, "--output", str(tmp_path / "out"), "--profile", "basic"]
    with caplog.at_level(logging.WARNING, logger="deid"):
        deidentify.plan(argv)
        assert "DICOMweb credentials" not in caplog.text  # local workers share the env
        deidentify.plan([*argv, "--runner", "PortableRunner", "--job_endpoint", "localhost:1"])
    assert "DICOMweb credentials come from $DEID_DICOMWEB_USER and $DEID_DICOMWEB_PASSWORD" \
        in caplog.text
    assert "7f3a" not in caplog.text and "91c2" not in caplog.text


def _multipart(boundary: str, *parts: bytes) -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n"
                    b"Content-Length: " + str(len(p)).encode() + b"\r\n\r\n" + p + b"\r\n"
                    for p in parts)
    return body + b"--" + boundary.encode() + b"--\r\n"


@pytest.mark.parametrize("size", [1, 2, 5, 17, 4096])
def test_a_wado_answer_is_read_chunk_by_chunk(size):
    """The part's content, whatever the chunks (a delimiter straddling two of them)."""
    content = b"\r\n-" + bytes(range(256)) * 3 + b"\r\n--b"  # near-delimiters inside
    body = _multipart("b0undary", content)
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    sink = io.BytesIO()
    dicomweb.read_single_part('multipart/related; type="application/dicom"; '
                              'boundary="b0undary"', chunks, sink)
    assert sink.getvalue() == content


@pytest.mark.parametrize("content_type, body, message", [
    ("application/dicom", b"DICM", "not multipart/related"),
    ("multipart/related", b"--x\r\n\r\nDICM", "without a boundary"),
    ("multipart/related; boundary=x", _multipart("x", b"one", b"two"), "more than one part"),
    ("multipart/related; boundary=x", _multipart("x", b"one")[:-10], "ended before"),
    ("multipart/related; boundary=x", b"-" * (70 << 10), "no part"),
])
def test_a_malformed_wado_answer_is_refused(content_type, body, message):
    with pytest.raises(dicomweb.MultipartError, match=message):
        dicomweb.read_single_part(content_type, [body], io.BytesIO())


def test_large_retrievals_spill_to_files_and_stream_to_the_same_bytes(source, tmp_path,
                                                                     monkeypatch):
    """Above --stream_threshold_mb an instance is read into a temporary file and streamed
    from it: the outputs are those of the in-memory path, and no temporary file is left."""
    import tempfile

    removed: list[str] = []

    def remove(path: str) -> None:
        removed.append(path)
        Path(path).unlink()

    monkeypatch.setattr(dicomweb, "_remove", remove)
    spill = tmp_path / "tmp"  # the run's own temporary folder: other runs share /tmp
    spill.mkdir()
    monkeypatch.setenv("TMPDIR", str(spill))
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    outputs, spilled = {}, {}
    for threshold in ("0", "256"):
        removed.clear()
        code, text = run_main(["--input", source.dicomweb + "?Modality=CT", "--input",
                               source.dicomweb + "?Modality=MR", "--output",
                               str(tmp_path / threshold), "--profile", "basic",
                               "--stream_threshold_mb", threshold])
        assert code == 0, text
        outputs[threshold] = {p.relative_to(tmp_path / threshold): p.read_bytes()
                              for p in (tmp_path / threshold).rglob("*.dcm")}
        spilled[threshold] = len(removed)
    assert len(outputs["0"]) == 2 and outputs["0"] == outputs["256"]
    assert spilled == {"0": 2, "256": 0}
    assert list(spill.iterdir()) == []


def test_a_spilled_retrieval_travels_with_its_bytes_and_is_sized_without_them(tmp_path):
    """Runners sample element sizes through the coder: estimating must not read (pickle) a
    spilled instance; encoding, should a runner move it, carries its bytes."""
    import apache_beam as beam
    from apache_beam.io.filesystem import FileMetadata

    spilled = tmp_path / "spilled"
    spilled.write_bytes(b"DICM" * 100)
    retrieved = dicomweb.Retrieved(FileMetadata("label", 400), path=str(spilled))
    coder = beam.coders.registry.get_coder(dicomweb.Retrieved)
    assert isinstance(coder, dicomweb.RetrievedCoder)
    spilled.unlink()  # sizing reads nothing
    assert coder.estimate_size(retrieved) < 1000
    spilled.write_bytes(b"DICM" * 100)
    moved = coder.decode(coder.encode(retrieved))
    assert moved.path is None and moved.open().read() == b"DICM" * 100
    del retrieved
    assert not spilled.exists()  # the spilled file goes with its record


def test_a_search_result_without_its_uid_fails_the_run():
    """A store answering QIDO-RS with a study but no Study Instance UID is broken: the run
    fails, naming the store and the attribute, rather than skip what it cannot read."""
    store = Store.parse("dicomweb+http://127.0.0.1:9/dicom-web?PatientID=12345")

    class Broken:
        def search_for_studies(self, **_):
            return [{"00100020": {"vr": "LO", "Value": ["12345"]}}]

    search = dicomweb._SearchFn("studies")
    search.setup()
    search._clients[store] = Broken()
    with pytest.raises(StoreUnavailable, match="without StudyInstanceUID") as error:
        list(search.process(store))
    assert "12345" not in str(error.value)
