"""deidentify_stream writes what deidentify_bytes writes, without the pixel data in memory."""

from __future__ import annotations

import hashlib
import io
import struct
import tracemalloc
from pathlib import Path

import pydicom.data
import pytest
from dicom_factory import KEY, base_dataset, to_bytes
from pixel_instances import GREY, PROFILE, image
from pydicom import dcmread
from pydicom.uid import JPEG2000Lossless

from benchmarks.huge import synthesize
from deid.engine import Output, Rejection, deidentify_bytes, files
from deid.engine import stream as streaming
from deid.engine.files import SinkError
from deid.engine.stream import deidentify_stream, without_pixel_data
from deid.profile import load_profiles

BASIC = load_profiles(["basic"])
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"  # never copied here
TEST_FILES = sorted(p for p in (Path(pydicom.data.__file__).parent / "test_files").rglob("*")
                    if p.is_file() and p.suffix not in (".py", ".pyc")
                    and "__pycache__" not in p.parts)


def _both(data: bytes, profile=BASIC) -> tuple[Output | Rejection, Output | Rejection, bytes]:
    """The in-memory result, the streamed one, and what the stream wrote."""
    sink = io.BytesIO()
    return deidentify_bytes(data, profile, KEY), deidentify_stream(
        io.BytesIO(data), sink, profile, KEY), sink.getvalue()


def _assert_same(data: bytes, profile=BASIC) -> Output | Rejection:
    memory, streamed, written = _both(data, profile)
    if isinstance(memory, Rejection):
        assert streamed == memory
        return memory
    assert isinstance(streamed, Output), streamed
    assert written == memory.data
    assert streamed.data is None
    assert (streamed.size, streamed.sha256) == (len(written), hashlib.sha256(written).hexdigest())
    assert streamed == Output(**{**vars(memory), "data": None})
    return memory


def _pixel_digest(source) -> tuple[int, str]:
    """The length and sha256 of the top-level pixel data value, as stored, read in chunks."""
    size = source.seek(0, 2)
    source.seek(0)
    dataset = dcmread(source, stop_before_pixels=True)
    implicit, little = dataset.original_encoding
    pixels = streaming._locate_pixels(source, source.tell(), size, implicit, little)
    source.seek(pixels.value_start)
    digest, left = hashlib.sha256(), pixels.value_length
    while left:
        chunk = source.read(min(left, 1 << 20))
        digest.update(chunk)
        left -= len(chunk)
    return pixels.value_length, digest.hexdigest()


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_pydicom_test_files_stream_to_the_same_bytes(path):
    """Native, encapsulated, big endian, implicit VR, multi-frame, deflated, malformed."""
    _assert_same(path.read_bytes())


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not beside the checkout")
def test_the_corpus_streams_to_the_same_bytes():
    """Real files from many vendors, many malformed (odd lengths, private syntaxes, ...)."""
    files = [p for p in CORPUS.iterdir() if p.suffix not in (".csv", ".md")]
    assert len(files) > 50
    for path in files:
        _assert_same(path.read_bytes())


def test_a_profile_with_text_cleaning_streams_to_the_same_bytes():
    profile = load_profiles(["basic", "clean-descriptors", "retain-safe-private"])
    for name in ("CT_small.dcm", "JPEG2000.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm"):
        _assert_same(Path(pydicom.data.get_testdata_file(name)).read_bytes(), profile)


@pytest.mark.parametrize("encapsulated", [False, True], ids=["native", "encapsulated"])
def test_a_large_instance_streams_in_little_memory(encapsulated, tmp_path):
    path = tmp_path / "large.dcm"
    synthesize(path, 24 << 20, encapsulated)
    data = path.read_bytes()
    memory = _assert_same(data)
    assert isinstance(memory, Output)
    assert _pixel_digest(io.BytesIO(memory.data)) == _pixel_digest(io.BytesIO(data))
    sink = io.BytesIO()
    with path.open("rb") as source:
        tracemalloc.start()
        try:
            result = deidentify_stream(source, sink, BASIC, KEY)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(result, Output)
    written = len(sink.getvalue())  # the BytesIO sink itself grows to the whole output
    assert peak - written < 2 * streaming.CHUNK + (4 << 20), (peak, written)


def _encapsulated_instance(trailing: bytes = b"") -> bytes:
    ds = base_dataset()
    ds.BurnedInAnnotation = "NO"
    to_bytes(ds)
    ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    pixels = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    pixels += struct.pack("<HHL", 0xFFFE, 0xE000, 0)
    pixels += struct.pack("<HHL", 0xFFFE, 0xE000, 6) + b"frame1"
    pixels += struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
    return data + pixels + trailing


def _native_instance(trailing: bytes = b"") -> bytes:
    ds = base_dataset()
    ds.BurnedInAnnotation = "NO"
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.SamplesPerPixel = 2, 2, 16, 1
    ds.PixelData = b"\x01\x02" * 4
    ds["PixelData"].VR = "OW"
    return to_bytes(ds) + trailing


@pytest.mark.parametrize("vr", [b"OW", b"UN"])
def test_encapsulated_pixel_data_with_another_vr(vr):
    header = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    data = _encapsulated_instance()
    assert data.count(header) == 1
    _assert_same(data.replace(header, header.replace(b"OB", vr)))


def test_an_odd_length_is_padded_as_in_memory():
    data = _native_instance()
    header = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, 8)
    assert data.endswith(header + b"\x01\x02" * 4)
    _assert_same(data[:-len(header) - 8] + header.replace(b"\x08", b"\x07") + b"\x01" * 7)


def test_elements_after_the_pixel_data_go_through_the_profile():
    # Trailing padding and a private element with no creator, which the profile removes.
    trailing = (struct.pack("<HH2sHL", 0xFFFC, 0xFFFC, b"OB", 0, 4) + b"\0\0\0\0"
                + struct.pack("<HH2sH", 0x7FE1, 0x1010, b"LO", 8) + b"Doe^Jane")
    for data in (_native_instance(trailing), _encapsulated_instance(trailing)):
        out = _assert_same(data)
        assert isinstance(out, Output) and b"Doe^Jane" not in out.data


def test_too_much_after_the_pixel_data_is_rejected(monkeypatch):
    monkeypatch.setattr(streaming, "MAX_TAIL", 8)
    trailing = struct.pack("<HH2sHL", 0xFFFC, 0xFFFC, b"OB", 0, 16) + b"\0" * 16
    result = deidentify_stream(io.BytesIO(_native_instance(trailing)), io.BytesIO(), BASIC,
                               KEY)
    assert isinstance(result, Rejection) and result.reason == "unreadable"
    assert "after the pixel data" in result.message


def test_a_bomb_after_the_pixel_data_is_refused_before_it_is_parsed(monkeypatch):
    """Past the first bytes the bomb checks read, the elements after the pixel data are
    counted too: a sequence of more items than allowed there is too_large, not parsed."""
    monkeypatch.setattr(streaming, "CHECKED_PREFIX", 64)
    monkeypatch.setattr(files, "MAX_ITEMS", 1000)
    items = (struct.pack("<HH2sHL", 0x0009, 0x0010, b"LO", 8, 0)[:8] + b"HOSTILE "
             + struct.pack("<HH2sHL", 0x0009, 0x1001, b"SQ", 0, 0xFFFFFFFF)
             + struct.pack("<HHL", 0xFFFE, 0xE000, 0) * 1001
             + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0))
    result = deidentify_stream(io.BytesIO(_native_instance(items)), io.BytesIO(), BASIC, KEY)
    assert isinstance(result, Rejection) and result.reason == "too_large", result


@pytest.mark.parametrize("cut", [1, 5, 9, 15, 20])
def test_truncated_pixel_data_is_treated_as_in_memory(cut):
    """Cut inside the pixel data value or header: rejected. Cut inside the delimiter's
    length (pydicom does not read it) or exactly before the element: written by both."""
    for data in (_native_instance(), _encapsulated_instance()):
        memory, streamed, written = _both(data[:-cut])
        if cut in (5, 9, 15):
            assert isinstance(streamed, Rejection) and streamed.reason == "unreadable"
        if isinstance(memory, Rejection):
            assert streamed == memory
        else:
            assert written == memory.data


def test_a_profile_that_removes_or_empties_the_pixel_data(tmp_path):
    for action in ("X", "Z", "D"):
        rules = tmp_path / f"{action}.yaml"
        rules.write_text(f"name: pixels-{action}\nextends: [basic]\n"
                         f"rules:\n- {{attribute: PixelData, action: {action}}}\n")
        profile = load_profiles([str(rules)])
        for data in (_native_instance(), _encapsulated_instance()):
            _assert_same(data, profile)


def test_a_failing_sink_is_a_sink_error_not_a_rejection():
    class Broken(io.BytesIO):
        def write(self, data):
            raise OSError("disk full")

    with pytest.raises(SinkError):
        deidentify_stream(io.BytesIO(_native_instance()), Broken(), BASIC, KEY)


def test_without_digest_no_hash_is_computed():
    result = deidentify_stream(io.BytesIO(_native_instance()), io.BytesIO(), BASIC, KEY,
                               digest=False)
    assert isinstance(result, Output) and result.sha256 is None and result.size > 0


@pytest.mark.slow
@pytest.mark.parametrize("encapsulated", [False, True], ids=["native", "encapsulated"])
def test_a_huge_instance_streams_with_its_pixel_data_untouched(encapsulated, tmp_path):
    path, out = tmp_path / "huge.dcm", tmp_path / "out.dcm"
    synthesize(path, 1 << 30, encapsulated)
    with path.open("rb") as source, out.open("wb") as sink:
        result = deidentify_stream(source, sink, BASIC, KEY)
    assert isinstance(result, Output) and result.size == out.stat().st_size
    with path.open("rb") as original, out.open("rb") as written:
        assert _pixel_digest(written) == _pixel_digest(original)
        assert _pixel_digest(original)[0] >= 1 << 29


@pytest.mark.parametrize("encapsulated", [False, True], ids=["native", "encapsulated"])
def test_between_files_the_kernel_copies_the_same_bytes(encapsulated, tmp_path, monkeypatch):
    """Without a digest, file to file, the pixel data goes by os.sendfile."""
    path, out = tmp_path / "large.dcm", tmp_path / "out.dcm"
    synthesize(path, 9 << 20, encapsulated)
    calls = []
    real = streaming.os.sendfile
    monkeypatch.setattr(streaming.os, "sendfile", lambda *a: calls.append(a) or real(*a))
    with path.open("rb") as source, out.open("wb") as sink:
        result = deidentify_stream(source, sink, BASIC, KEY, digest=False)
    memory = deidentify_bytes(path.read_bytes(), BASIC, KEY)
    assert isinstance(result, Output) and isinstance(memory, Output)
    assert calls and out.read_bytes() == memory.data and result.size == memory.size


def test_a_source_that_cannot_seek_is_read_in_memory():
    class Pipe(io.BytesIO):
        def seekable(self):
            return False

    data = _encapsulated_instance()
    sink = io.BytesIO()
    result = deidentify_stream(Pipe(data), sink, BASIC, KEY)
    memory = deidentify_bytes(data, BASIC, KEY)
    assert isinstance(result, Output) and isinstance(memory, Output)
    assert sink.getvalue() == memory.data


def test_an_instance_a_pixel_rule_cleans_is_read_in_memory(tmp_path):
    """E.3.1 cleaning decodes the pixels, so a streamed instance that a rule cleans falls back to
    the in-memory path and comes out the same, cleaned."""
    path = tmp_path / "site.yaml"
    path.write_text(PROFILE.format(ultrasound="off", ocr="off"))
    profile = load_profiles([str(path)])
    out = _assert_same(to_bytes(image()), profile)
    assert isinstance(out, Output)
    cleaned = dcmread(io.BytesIO(out.data))
    assert cleaned.BurnedInAnnotation == "NO"
    # The acme-any rule blanks rows 40 to 47 of the 48 x 64 image; the rest stays grey.
    assert cleaned.PixelData[40 * 64:] == bytes(8 * 64)
    assert set(cleaned.PixelData[:40 * 64]) == {GREY}


def test_without_pixel_data_keeps_what_follows_the_pixel_data():
    """What verification reads of a streamed instance: every element but the pixel data,
    the elements after it included."""
    trailing = struct.pack("<HH2sH", 0x7FE1, 0x0010, b"LO", 8) + b"HOSTILE "
    data = _native_instance(trailing)
    rest = without_pixel_data(io.BytesIO(data))
    pixel_element = struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OW", 0, 8) + b"\x01\x02" * 4
    assert pixel_element in data and rest == data.replace(pixel_element, b"")
    assert rest.endswith(trailing)


def test_without_pixel_data_reads_a_deflated_file_whole():
    """A deflated file's bytes are not its data set's: verification reads all of them."""
    data = Path(pydicom.data.get_testdata_file("image_dfl.dcm")).read_bytes()
    assert without_pixel_data(io.BytesIO(data)) == data
