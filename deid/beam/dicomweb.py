"""DICOMweb stores (PS3.18) as a source and a sink of the pipeline, through dicomweb-client.

    --input  dicomweb+http://HOST:PORT/dicom-web?Modality=CT&StudyDate=20200101-20211231
    --output dicomweb+https://HOST/dicom-web   (with --manifest_output FOLDER)

Source: QIDO-RS lists the studies matching the query's study-level attributes, then their
series, then their instances (each level spread over the workers by a Reshuffle, an instance
listed twice read once); WADO-RS retrieves each instance in the transfer syntax it is stored
in, read chunk by chunk, a large one into a temporary file DeidentifyFn streams from.

Sink: STOW-RS in batches; the store's answer is read per instance (PS3.18 10.5.3:
Referenced SOP Sequence for the stored, Failed SOP Sequence with a Failure Reason for the
refused), and QIDO-RS then looks for the stored ones: an instance refused (a 400 or 409, not
acknowledged, or acknowledged but not found) is quarantined as `store_refused`, while a store
that cannot be reached or answers anything else fails the run (StoreUnavailable), never
silently.

URLs of the source name original UIDs: no log line, error or quarantine record holds one.
An instance read from a store is labelled `<store>#<SHA-256 of study/series/SOP UIDs>`.

dicomweb-client's public retrieve and store calls go through pydicom (a parsed Dataset in, a
re-encoded one out). Neither fits: the engine must parse untrusted bytes itself (its guards
against bombs come first), and the bytes stored must be the bytes de-identified, hashed and
verified. So the transfers use the client's own lower layer (sessions, retries, multipart
encoding), pinned to the versions tested in pyproject.toml; a WADO-RS answer is decoded here,
chunk by chunk, since the client's decoder holds a whole part in memory.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import datetime
import functools
import hashlib
import io
import json
import logging
import math
import os
import pickle
import re
import tempfile
import weakref
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import apache_beam as beam
from apache_beam.io.filesystem import FileMetadata
from apache_beam.pvalue import TaggedOutput
from pydicom.datadict import dictionary_VR, tag_for_keyword

from deid import STREAM_THRESHOLD_MB
from deid.beam import metrics
from deid.beam.metadata import row_from
from deid.beam.read import SkipDoneFn
from deid.beam.records import OUTPUT_ERROR, Linkage, Quarantined, Staged
from deid.beam.write import (
    LINKAGE,
    QUARANTINE,
    SMALLEST_PATH,
    duplicate_of,
    preference,
    syntax_counts,
)

SCHEMES = ("dicomweb+http://", "dicomweb+https://")
STORE_REFUSED = "store_refused"  # the store answered STOW-RS by refusing the instance
# Basic authentication for every store, or only the output's (it wins there); never on the
# command line or in a URL, where logs and the job graph would keep them.
USER, PASSWORD = "DEID_DICOMWEB_USER", "DEID_DICOMWEB_PASSWORD"
OUTPUT_USER, OUTPUT_PASSWORD = "DEID_DICOMWEB_OUTPUT_USER", "DEID_DICOMWEB_OUTPUT_PASSWORD"
CREDENTIALS = (USER, PASSWORD, OUTPUT_USER, OUTPUT_PASSWORD)
RETRY = "DEID_DICOMWEB_RETRY"  # 0: no retry of a failed request (the client retries 5 times)
GOOGLE_HOST = "healthcare.googleapis.com"  # Cloud Healthcare API: Google credentials
STOW_BATCH_INSTANCES = 64  # at most this many instances, and about as many MiB, per request
_MIB = 1 << 20
_DATE = r"(\d{4}(?:\d{2}(?:\d{2})?)?)"
_DATE_QUERY = re.compile(f"{_DATE}?(-)?{_DATE}?")
_GONE = (400, 404, 410)  # WADO-RS statuses about the instance, not the store
_MAX_PART_HEADERS = 64 << 10  # bytes before the part's content: boundary and headers
_UIDS_PER_SEARCH = 16  # a UID list per QIDO-RS request, well within URL length limits
_INSTANCE_MEDIA = 'multipart/related; type="application/dicom"; transfer-syntax=*'
_STOW_TYPE = 'multipart/related; type="application/dicom"; boundary="deid-stow-boundary"'

# QIDO-RS matching by level (PS3.18 Table 10.6.1-5, with the usual descriptions): studies are
# searched with the study attributes, their series with the series attributes, their
# instances with any other attribute.
STUDY_KEYS = frozenset({
    "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName",
    "PatientName", "PatientID", "StudyInstanceUID", "StudyID", "StudyDescription",
    "PatientBirthDate", "PatientSex", "IssuerOfPatientID", "InstitutionName"})
SERIES_KEYS = frozenset({
    "Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "BodyPartExamined",
    "PerformedProcedureStepStartDate", "PerformedProcedureStepStartTime", "Manufacturer",
    "StationName", "ProtocolName"})

_LOG = logging.getLogger("deid.beam")
# The client logs UIDs (instances retrieved, instances that failed); nothing of it is shown.
logging.getLogger("dicomweb_client").setLevel(logging.CRITICAL + 1)


class StoreUnavailable(Exception):
    """A store that cannot be reached, or answers other than per instance: the run fails.
    The message names the store and the HTTP status, never a UID."""


class UnreadableInstance(Exception):
    """WADO-RS did not return the instance: the input is quarantined as unreadable."""

    def __init__(self, safe_message: str):
        super().__init__(safe_message)
        self.safe_message = safe_message  # no value: DeidentifyFn may show it


def is_dicomweb(spec: str | None) -> bool:
    return bool(spec) and spec.lower().startswith(SCHEMES)


def _uid(item: dict, tag: str) -> str:
    return str(item[tag]["Value"][0])


@dataclass(frozen=True)
class Store:
    """A DICOMweb service root and, for a source, its QIDO-RS query ((keyword, value) pairs).

    `url` is the http(s) root without a query; `label` the spec without its query, fit for
    logs (query values may be identifiers)."""

    url: str
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    output: bool = False

    @classmethod
    def parse(cls, spec: str, output: bool = False) -> Store:
        """`dicomweb+http(s)://host[:port]/root[?Keyword=value&...]`. Raises ValueError with
        a message for the command line (naming keywords, never values)."""
        parts = urlsplit(spec[len("dicomweb+"):])
        if not parts.hostname:
            raise ValueError(f"{_label(spec)}: no host")
        if parts.username or parts.password:
            raise ValueError(f"{_label(spec)}: credentials in the URL would be logged; set "
                             f"${USER} and ${PASSWORD} instead")
        if parts.fragment:
            raise ValueError(f"{_label(spec)}: a URL fragment (#...) means nothing here")
        query = tuple(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False))
        if output and query:
            raise ValueError(f"{_label(spec)}: an output takes no query")
        checked = []
        for keyword, value in query:
            if tag_for_keyword(keyword) is None:
                raise ValueError(f"{_label(spec)}: {keyword!r} is not a DICOM keyword (query "
                                 "attributes are keywords such as Modality or StudyDate)")
            vr = dictionary_VR(tag_for_keyword(keyword))
            if vr == "SQ":
                raise ValueError(f"{_label(spec)}: {keyword} is a sequence: not a QIDO-RS "
                                 "matching key here")
            if vr == "DA":
                value = date_range(value)
                if value is None:
                    raise ValueError(f"{_label(spec)}: {keyword} takes a date or a range of "
                                     "them, each YYYY, YYYYMM or YYYYMMDD (2020-2021, "
                                     "20200315-, -202112)")
            if "*" in value or "?" in value:
                # dicomweb-client percent-encodes them, and stores such as Orthanc then
                # match the literal characters: the run would silently read nothing.
                raise ValueError(f"{_label(spec)}: {keyword} has a wildcard (* or ?): not "
                                 "supported; use exact values, ranges (StudyDate=20200101-"
                                 "20211231) or UID lists (a,b)")
            checked.append((keyword, value))
        url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        return cls(url=url, query=tuple(checked), output=output)

    @property
    def label(self) -> str:
        return "dicomweb+" + self.url

    def filters(self, keys: frozenset[str] | None) -> dict[str, str]:
        """The query's attributes of one level (keys), or of none of the named levels."""
        if keys is None:
            return {k: v for k, v in self.query if k not in STUDY_KEYS | SERIES_KEYS}
        return {k: v for k, v in self.query if k in keys}

    def client(self):
        """A DICOMwebClient with this store's credentials: Google's for the Cloud Healthcare
        API, basic authentication from the environment, else none."""
        from dicomweb_client import DICOMwebClient, session_utils

        if urlsplit(self.url).hostname == GOOGLE_HOST:
            from dicomweb_client.ext.gcp.session_utils import (
                create_session_from_gcp_credentials,
            )
            session = create_session_from_gcp_credentials()
        else:
            names = ((OUTPUT_USER, OUTPUT_PASSWORD)
                     if self.output and os.environ.get(OUTPUT_USER) else (USER, PASSWORD))
            user, password = (os.environ.get(name, "") for name in names)
            session = (session_utils.create_session_from_user_pass(user, password) if user
                       else session_utils.create_session())
        client = DICOMwebClient(self.url, session=session, timeout=(10, 300))
        if os.environ.get(RETRY) == "0":  # fail at the first error (the default retries)
            client.set_http_retry_params(retry=False)
        return client

    def check(self) -> None:
        """One QIDO-RS request, so that a store down or refusing us fails before the run.
        Raises StoreUnavailable."""
        with _unavailable(self, "search"):
            self.client().search_for_studies(limit=1)

    def instance_url(self, study: str, series: str, sop: str) -> str:
        return f"{self.url}/studies/{study}/series/{series}/instances/{sop}"


def date_range(value: str) -> str | None:
    """A date query with whole dates, as PS3.4 C.2.2.2.5 range matching takes them: a year
    or a month stands for its first day at the start of a range and its last at the end
    (`2020-2021` is 20200101-20211231; alone, `2020` is the range of its days). Stores match
    partial dates against nothing. None when the value is not such a date or range."""
    match = _DATE_QUERY.fullmatch(value)
    if not match or value in ("", "-"):
        return None
    start, dash, end = match.groups()
    if not dash:
        end = start
    try:
        first = _whole_date(start, last=False) if start else ""
        final = _whole_date(end, last=True) if end else ""
    except ValueError:
        return None
    if first and final and first > final:
        return None
    return first if first == final else f"{first}-{final}"


def _whole_date(text: str, last: bool) -> str:
    year, month = int(text[:4]), int(text[4:6] or (12 if last else 1))
    day = int(text[6:8] or (calendar.monthrange(year, month)[1] if last else 1))
    return datetime.date(year, month, day).strftime("%Y%m%d")  # ValueError when invalid


def _label(spec: str) -> str:
    """The spec as an error message may show it: no query, fragment or credentials."""
    base = spec.split("?", 1)[0].split("#", 1)[0]
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


class _unavailable:
    """Turn the client's transport and HTTP errors into StoreUnavailable (status only)."""

    def __init__(self, store: Store, what: str):
        self._store, self._what = store, what

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, _tb):
        import requests

        if exc is None or not isinstance(exc, requests.RequestException):
            return False
        response = getattr(exc, "response", None)
        why = (f"HTTP {response.status_code}" if response is not None
               else f"cannot connect ({type(exc).__name__})")
        raise StoreUnavailable(f"the DICOMweb store {self._store.label} failed a "
                               f"{self._what} request: {why}") from None


@dataclass(frozen=True)
class InstanceRef:
    """One instance of a source store. Its UIDs are originals: kept out of repr."""

    store: Store
    study: str = field(repr=False)
    series: str = field(repr=False)
    sop: str = field(repr=False)

    @property
    def label(self) -> str:
        """What logs and the quarantine call it: the store and a digest of its UIDs."""
        digest = hashlib.sha256(f"{self.study}/{self.series}/{self.sop}".encode()).hexdigest()
        return f"{self.store.label}#{digest[:32]}"


class Retrieved:
    """A retrieved instance, shaped as the fileio.ReadableFile DeidentifyFn reads: in memory,
    or above the spill size in a temporary file of this worker, deleted with this object.
    Pickled (should a runner move it to another process) it carries its bytes."""

    def __init__(self, metadata: FileMetadata, data: bytes | None = None,
                 path: str | None = None, error: str | None = None):
        self.metadata, self.data, self.path, self.error = metadata, data, path, error
        if path is not None:
            weakref.finalize(self, _remove, path)

    def open(self, mime_type=None, compression_type=None):
        if self.data is not None:
            return io.BytesIO(self.data)
        if self.path is not None:
            return open(self.path, "rb")  # noqa: SIM115 (the caller closes it)
        raise UnreadableInstance(self.error or "not retrieved")

    def __reduce__(self):
        if self.path is None:
            return Retrieved, (self.metadata, self.data, None, self.error)
        with open(self.path, "rb") as f:
            return Retrieved, (self.metadata, f.read(), None, self.error)


class RetrievedCoder(beam.coders.Coder):
    """Pickles a Retrieved (with its bytes), and estimates its size without doing so: runners
    sample the size of elements, and a pickled spilled instance would be read into memory."""

    def encode(self, value: Retrieved) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Retrieved:
        return pickle.loads(encoded)

    def estimate_size(self, value: Retrieved) -> int:
        return value.metadata.size_in_bytes + 256

    def is_deterministic(self) -> bool:
        return False


beam.coders.registry.register_coder(Retrieved, RetrievedCoder)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


class MultipartError(ValueError):
    """A WADO-RS answer that is not one multipart/related part; the message holds no value."""


class _Spool:
    """Bytes in memory up to ``limit``, then in a temporary file."""

    def __init__(self, limit: int):
        self._limit, self._memory, self._file, self.size = limit, io.BytesIO(), None, 0

    def write(self, chunk) -> None:
        if self._file is None and self.size + len(chunk) > self._limit:
            self._file = tempfile.NamedTemporaryFile(prefix="deid-wado-", delete=False)  # noqa: SIM115
            self._file.write(self._memory.getbuffer())
            self._memory = io.BytesIO()
        (self._file or self._memory).write(chunk)
        self.size += len(chunk)

    def retrieved(self, metadata: FileMetadata) -> Retrieved:
        metadata = FileMetadata(metadata.path, self.size)
        if self._file is None:
            return Retrieved(metadata, data=self._memory.getvalue())
        self._file.close()
        return Retrieved(metadata, path=self._file.name)

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            _remove(self._file.name)


def read_single_part(content_type: str, chunks, sink) -> None:
    """Write the content of the one part of a multipart/related body (PS3.18 8.7.1), read
    chunk by chunk, into ``sink``: no whole instance is held. Raises MultipartError."""
    media, *parameters = [p.strip() for p in content_type.split(";")]
    if media.lower() != "multipart/related":
        raise MultipartError(f"WADO-RS answered {media or 'without a media type'}, not "
                             "multipart/related")
    boundary = next((value.strip().strip('"') for name, _, value in
                     (p.partition("=") for p in parameters)
                     if name.strip().lower() == "boundary"), "")
    if not boundary:
        raise MultipartError("WADO-RS answered multipart/related without a boundary")
    opening = b"--" + boundary.encode("ascii", "replace")
    delimiter = b"\r\n" + opening
    buffer, in_part = bytearray(), False
    chunks = iter(chunks)
    for chunk in chunks:
        buffer += chunk
        if not in_part:
            start = buffer.find(opening)
            headers_end = buffer.find(b"\r\n\r\n", start) if start >= 0 else -1
            if headers_end < 0:
                if len(buffer) > _MAX_PART_HEADERS:
                    raise MultipartError("WADO-RS answered no part")
                continue
            del buffer[:headers_end + 4]
            in_part = True
        end = buffer.find(delimiter)
        if end >= 0:
            sink.write(buffer[:end])
            tail = bytes(buffer[end + len(delimiter):])
            while len(tail) < 2:
                more = next(chunks, None)
                if more is None:
                    break
                tail += more
            if not tail.startswith(b"--"):
                raise MultipartError("WADO-RS answered more than one part")
            return
        keep = len(delimiter) - 1  # a delimiter may straddle two chunks
        if len(buffer) > keep:
            sink.write(buffer[:-keep])
            del buffer[:-keep]
    raise MultipartError("WADO-RS answer ended before its closing boundary")


class _StoreFn(beam.DoFn):
    """A DoFn talking to stores: one client per store and worker."""

    def setup(self):
        self._clients: dict[Store, object] = {}

    def _client(self, store: Store):
        if store not in self._clients:
            self._clients[store] = store.client()
        return self._clients[store]


# QIDO-RS level: the UID it lists (tag, keyword) and the InstanceRef field it fills.
_LEVELS = {"studies": ("0020000D", "StudyInstanceUID", "study"),
           "series": ("0020000E", "SeriesInstanceUID", "series"),
           "instances": ("00080018", "SOPInstanceUID", "sop")}


class _SearchFn(_StoreFn):
    """QIDO-RS one level down: stores to studies, studies to series, series to instances."""

    def __init__(self, level: str):
        super().__init__()
        self._level = level

    def process(self, element):
        ref = InstanceRef(element, "", "", "") if self._level == "studies" else element
        client, store = self._client(ref.store), ref.store
        tag, keyword, level = _LEVELS[self._level]
        if self._level == "studies":
            search = functools.partial(client.search_for_studies,
                                       search_filters=store.filters(STUDY_KEYS))
        elif self._level == "series":
            search = functools.partial(client.search_for_series, ref.study,
                                       search_filters=store.filters(SERIES_KEYS))
        else:
            search = functools.partial(client.search_for_instances, ref.study, ref.series,
                                       search_filters=store.filters(None))
        with _unavailable(store, f"QIDO-RS {self._level}"):
            found = search(fields=[tag], get_remaining=True)
        for item in found:
            if not (item.get(tag) or {}).get("Value"):
                raise StoreUnavailable(f"the DICOMweb store {store.label} answered a QIDO-RS "
                                       f"{self._level} search with a result without {keyword}")
            yield dataclasses.replace(ref, **{level: _uid(item, tag)})


class RetrieveFn(_StoreFn):
    """WADO-RS of one instance, as stored (`transfer-syntax=*`), read chunk by chunk: above
    ``spill`` bytes it goes to a temporary file, which DeidentifyFn can stream from. An
    instance the store does not return (404 or 410: deleted since it was listed; 400) or
    returns malformed is an unreadable input; a store that cannot be reached or answers
    anything else (401, 403, 5xx) fails the run."""

    def __init__(self, spill: int = STREAM_THRESHOLD_MB << 20):
        super().__init__()
        self._spill = spill

    def process(self, ref: InstanceRef):
        import requests

        client = self._client(ref.store)
        url = ref.store.instance_url(ref.study, ref.series, ref.sop)
        metadata = FileMetadata(ref.label, 0)
        spool = _Spool(self._spill)
        try:
            with client._http_get(url, headers={"Accept": _INSTANCE_MEDIA},
                                  stream=True) as response:
                read_single_part(response.headers.get("Content-Type", ""),
                                 response.iter_content(_MIB), spool)
        except requests.HTTPError as exc:
            spool.discard()
            status = exc.response.status_code if exc.response is not None else 0
            if status not in _GONE:
                raise StoreUnavailable(f"the DICOMweb store {ref.store.label} failed a "
                                       f"WADO-RS request: HTTP {status}") from None
            yield Retrieved(metadata, error=f"WADO-RS answered HTTP {status}")
            return
        except requests.RequestException as exc:
            spool.discard()
            raise StoreUnavailable(f"the DICOMweb store {ref.store.label} failed a WADO-RS "
                                   f"request: cannot connect ({type(exc).__name__})") from None
        except MultipartError as exc:
            spool.discard()
            yield Retrieved(metadata, error=str(exc))
            return
        yield spool.retrieved(metadata)


class ReadDicomweb(beam.PTransform):
    """Stores in (their QIDO-RS queries); Retrieved instances out, spread over the workers,
    those larger than ``spill`` bytes in temporary files. An instance listed twice (two
    queries, or a study a store lists twice) is read once; one that ``done`` holds (a
    PCollection of (input label, ledger entry): deid.beam.ledger) is skipped and counted, in
    the same grouping, before anything is retrieved."""

    def __init__(self, stores: list[Store], spill: int = STREAM_THRESHOLD_MB << 20,
                 done=None):
        super().__init__()
        self._stores, self._spill, self._done = list(stores), spill, done

    def expand(self, pbegin):
        listed = (pbegin
                  | "Stores" >> beam.Create(self._stores)
                  | "SearchStudies" >> beam.ParDo(_SearchFn("studies"))
                  | "SpreadStudies" >> beam.Reshuffle()
                  | "SearchSeries" >> beam.ParDo(_SearchFn("series"))
                  | "SpreadSeries" >> beam.Reshuffle()
                  | "SearchInstances" >> beam.ParDo(_SearchFn("instances"))
                  | "KeyByLabel" >> beam.Map(lambda ref: (ref.label, ref)))
        # The grouping also spreads the retrievals over the workers.
        if self._done is None:
            once = (listed
                    | "GroupByLabel" >> beam.GroupByKey()
                    | "OncePerInstance" >> beam.Map(lambda keyed: next(iter(keyed[1]))))
        else:
            once = ({"match": listed, "done": self._done}
                    | "GroupByLabel" >> beam.CoGroupByKey()
                    | "SkipDone" >> beam.ParDo(SkipDoneFn()))
        return once | "Retrieve" >> beam.ParDo(RetrieveFn(self._spill)).with_output_types(
            Retrieved)


# --- sink --------------------------------------------------------------------------------

def _sequence(body: dict, tag: str) -> list[dict]:
    return list((body.get(tag) or {}).get("Value") or [])


def stow_outcome(body: dict | None) -> tuple[set[str], dict[str, int]]:
    """A STOW-RS answer (DICOM JSON, PS3.18 10.5.3): the SOP Instance UIDs stored and those
    failed, with their Failure Reason (0 when the store gave none)."""
    if not isinstance(body, dict):
        return set(), {}
    stored = {_uid(item, "00081155") for item in _sequence(body, "00081199")
              if "00081155" in item}
    failed = {}
    for item in _sequence(body, "00081198"):
        if "00081155" in item:
            reason = (item.get("00081197") or {}).get("Value") or [0]
            failed[_uid(item, "00081155")] = int(reason[0] or 0)
    return stored, failed


def _body(response) -> dict | None:
    try:
        body = json.loads(response.content or b"null")
    except ValueError:
        return None
    if isinstance(body, list) and len(body) == 1:  # some stores wrap the data set
        body = body[0]
    return body if isinstance(body, dict) else None


def _size(element) -> int:
    """A batch weight: one per instance and one per MiB."""
    return max(1, math.ceil(element[1].size / _MIB))


class ChooseFn(beam.DoFn):
    """All inputs that became one SOP Instance UID: the preferred one (deid.beam.write's
    preference) is stored, the others are quarantined as duplicates (as WriteInstances does
    for files)."""

    def process(self, element, syntax_counts=None):
        _, group = element
        candidates = sorted(group, key=lambda pair: preference(
            pair[0], pair[1].transfer_syntax_uid, syntax_counts))
        winner_input, winner = candidates[0]
        yield winner_input, winner
        for other_input, other in candidates[1:]:
            yield TaggedOutput(QUARANTINE, duplicate_of(
                other_input, winner_input, other.sha256 == winner.sha256))


class StowFn(beam.DoFn):
    """STOW-RS of a batch of (input, Output); Staged records of the stored instances (their
    output_path is their WADO-RS URL, new UIDs only), quarantine records of the refused."""

    def __init__(self, store: Store, linkage: bool):
        super().__init__()
        self._store, self._linkage = store, linkage

    def setup(self):
        self._client = self._store.client()
        # Each body goes whole, with its length: the client sends a body larger than its
        # chunk size as a generator, which a retried request would find spent (an empty
        # body, answered 400: every instance would read as refused).
        self._client.set_chunk_size(1 << 62)
        self._written = metrics.counter(metrics.WRITTEN)
        self._bytes = metrics.counter(metrics.BYTES_WRITTEN)

    def process(self, batch):
        import requests

        rows, ready = {}, []
        for input_path, out in batch:  # before STOW-RS: what is stored has its row
            try:
                rows[input_path] = row_from(out.data)
            except Exception as exc:
                _LOG.warning("%s not stored: no metadata row (%s)", input_path,
                             type(exc).__name__)
                yield TaggedOutput(QUARANTINE, Quarantined(
                    input_path, OUTPUT_ERROR,
                    f"cannot read the output back for its metadata ({type(exc).__name__})"))
            else:
                ready.append((input_path, out))
        if not ready:
            return
        batch = ready
        client = self._client
        url = f"{self._store.url}/studies"
        body = client._encode_multipart_message([out.data for _, out in batch], _STOW_TYPE)
        try:
            response = client._http_post(url, body, headers={"Content-Type": _STOW_TYPE})
        except requests.HTTPError as exc:
            response = exc.response
            status = response.status_code if response is not None else 0
            if status not in (400, 409):  # anything but a refusal of instances
                raise StoreUnavailable(f"the DICOMweb store {self._store.label} failed a "
                                       f"STOW-RS request: HTTP {status}") from None
        except requests.RequestException as exc:
            raise StoreUnavailable(f"the DICOMweb store {self._store.label} failed a STOW-RS "
                                   f"request: cannot connect ({type(exc).__name__})") from None
        del body
        stored, failed = stow_outcome(_body(response))
        listed = self._listed(sorted(stored & {out.sop_instance_uid for _, out in batch}))
        for input_path, out in batch:
            if out.sop_instance_uid in listed:
                yield from self._written_records(input_path, out, rows[input_path])
                continue
            if out.sop_instance_uid in stored:
                message = (f"the store acknowledged it (STOW-RS: HTTP {response.status_code}) "
                           "but QIDO-RS does not find it")
            elif out.sop_instance_uid in failed:
                message = (f"the store refused it (STOW-RS: HTTP {response.status_code}, "
                           f"failure reason 0x{failed[out.sop_instance_uid]:04X})")
            else:
                message = (f"the store did not acknowledge it (STOW-RS: HTTP "
                           f"{response.status_code})")
            _LOG.warning("%s not stored: %s", input_path, message)
            yield TaggedOutput(QUARANTINE, Quarantined(input_path, STORE_REFUSED, message))

    def _listed(self, uids: list[str]) -> set[str]:
        """Which of the acknowledged instances the store lists: one may acknowledge an
        instance it then drops (Orthanc does, when one of its own filters refuses it)."""
        found: set[str] = set()
        for start in range(0, len(uids), _UIDS_PER_SEARCH):
            with _unavailable(self._store, "QIDO-RS instances"):
                items = self._client.search_for_instances(search_filters={
                    "SOPInstanceUID": ",".join(uids[start:start + _UIDS_PER_SEARCH])},
                    fields=["00080018"])
            found.update(_uid(item, "00080018") for item in items if "00080018" in item)
        return found

    def _written_records(self, input_path: str, out, metadata: dict):
        self._written.inc()
        self._bytes.inc(out.size)
        url = self._store.instance_url(out.study_instance_uid, out.series_instance_uid,
                                       out.sop_instance_uid)
        yield Staged.of(input_path, out, "", "dicomweb+" + url, metadata)
        if self._linkage and (out.uid_map or out.patient_ids):
            yield TaggedOutput(LINKAGE, Linkage(tuple(out.uid_map), out.patient_ids))


class StoreInstances(beam.PTransform):
    """(input path, Output) in, with every Output's data in memory; STOW-RS into the store.
    Tagged PCollections out, as WriteInstances gives them: `written` Staged records,
    `quarantine` records (duplicates, refused instances) and `linkage`."""

    def __init__(self, store: Store, linkage: bool = False, prefer: str = SMALLEST_PATH):
        super().__init__()
        self._store, self._linkage, self._prefer = store, linkage, prefer

    def expand(self, instances):
        side = syntax_counts(
            instances | "TransferSyntaxes" >> beam.Map(lambda pair: pair[1].transfer_syntax_uid),
            self._prefer)
        chosen = (instances
                  | "KeyBySOPInstanceUID" >> beam.Map(lambda pair: (pair[1].sop_instance_uid,
                                                                     pair))
                  | "GroupBySOPInstanceUID" >> beam.GroupByKey()
                  | "OncePerInstance" >> beam.ParDo(ChooseFn(), **side).with_outputs(
                      QUARANTINE, main="chosen"))
        stored = (chosen.chosen
                  | "Batch" >> beam.BatchElements(max_batch_size=STOW_BATCH_INSTANCES,
                                                  element_size_fn=_size)
                  | "Stow" >> beam.ParDo(StowFn(self._store, self._linkage)).with_outputs(
                      QUARANTINE, LINKAGE, main="written"))
        quarantine = ((chosen[QUARANTINE], stored[QUARANTINE])
                      | "QuarantineOfStore" >> beam.Flatten())
        return {"written": stored.written, QUARANTINE: quarantine, LINKAGE: stored[LINKAGE]}
