"""Security guarantees: no identifying value and no key in anything a run prints or writes
besides the de-identified instances; mappings that need the key; YAML profiles and lookup
files that cannot run code, exhaust memory, or read files they do not name."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import re
import subprocess
import sys
import tracemalloc
import uuid
import warnings
from pathlib import Path

import apache_beam
import pydicom
import pytest
from dicom_factory import KEY, OTHER_KEY, SOP_UID, STUDY_UID, base_dataset, to_bytes
from pydicom.uid import generate_uid

import deid
import pipelines
from deid.engine import Output, deidentify_bytes
from deid.engine.core import TOKEN_VRS
from deid.engine.scrub import tokens_of
from deid.profile import ProfileError, load_profiles
from pipelines.deidentify import sample_files

SECRET = "security-tests-0123456789abcdef"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
# The leak scan's rule. A token of an identifying value is searched for, as a whole word and
# ignoring case, when it has at least MIN_LEAK_TOKEN characters and a letter, or at least 6
# digits (a date, an ID): shorter ones (initials, "CT", "1") match by chance. Skipped: tokens
# that are part of a path the run names (logs and quarantine records name files by design), and
# tokens whose every word occurs in the source code of deid, pipelines or Apache Beam, where
# all the fixed wording of logs and messages comes from ("Processing", "version", "Table").
MIN_LEAK_TOKEN = 5


# --- identifying values in logs, sidecars and metrics ---------------------------------------

def identifying_tokens(paths: list[str], profile) -> dict[str, str]:
    """token -> the file it comes from: pieces of every text or date value, at any depth, that
    the profile does not keep (K) or clean (C), as the engine's scrubber splits them."""
    found: dict[str, str] = {}
    for path in paths:
        try:
            with warnings.catch_warnings():  # pydicom's, about the broken files
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
                elements = list(ds.iterall())
        except Exception:
            continue  # unreadable: the pipeline quarantines it without reading values
        for element in elements:
            tag = int(element.tag)
            if (tag >> 16) % 2 or element.VR not in TOKEN_VRS or not element.value:
                continue
            rules = profile.rules_for_tag(tag)
            rule = rules[0] if rules else profile.unlisted_rule(tag, element.VR)
            if rule is not None and rule.action in ("K", "C"):
                continue
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                for token in tokens_of(element.VR, str(value)):
                    found.setdefault(token, path)
    return found


@functools.cache
def source_words() -> frozenset[str]:
    """Every word, lower-cased, of the Python source the run's texts are printed by."""
    words: set[str] = set()
    for package in (deid, pipelines, apache_beam):
        for path in Path(package.__file__).parent.rglob("*.py"):
            if path.name.endswith("_test.py") or {"examples", "api"} & set(path.parts):
                continue  # Beam's tests, examples and generated protobuf code print nothing
            words.update(w.lower() for w in re.findall(r"[A-Za-z]+", path.read_text("utf-8")))
    return frozenset(words)


def searchable(token: str, paths: list[str]) -> bool:
    if not (len(token) >= MIN_LEAK_TOKEN and re.search(r"[A-Za-z]", token)
            or len(token) >= 6 and token.isdigit()):
        return False
    if any(token.lower() in path.lower() for path in paths):
        return False
    words = re.findall(r"[A-Za-z]+", token)
    return not words or not all(w.lower() in source_words() for w in words)


def found_in(tokens: list[str], text: str) -> set[str]:
    """The tokens that occur in the text as whole words, ignoring case (one pass)."""
    alternatives = "|".join(map(re.escape, sorted(tokens, key=len, reverse=True)))
    pattern = re.compile(f"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])", re.IGNORECASE)
    lower = {t.lower(): t for t in tokens}
    return {lower[m.group(0).lower()] for m in pattern.finditer(text)}


def key_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [secret, raw.hex(), base64.b64encode(raw).decode(), repr(raw)]


# A run as `deid run` makes it, but with every logger at DEBUG and every warning shown.
_DEBUG_RUN = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
from pipelines.deidentify import main
sys.exit(main(sys.argv[1:]))
"""


def debug_run(output: Path, secret: str) -> tuple[int, dict[str, str]]:
    """De-identify the corpus and pydicom's files in a separate process (so that pytest's own
    handling of logs and warnings cannot hide anything) with every logger at DEBUG, warnings
    shown (-W default) and a progress line per file; its exit code, and every text it printed
    (stdout, stderr) or wrote beside the instances (manifest, quarantine records)."""
    env = {**os.environ, "DEID_SECRET": secret, "DEID_PROGRESS_SECONDS": "0"}
    done = subprocess.run(
        [sys.executable, "-W", "default", "-c", _DEBUG_RUN, "--input", str(CORPUS), "--sample",
         "--output", str(output), "--profile", "basic", "--allow_quarantine"],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    quarantine = output.parent / f"{output.name}-quarantine" / "quarantine.jsonl"
    return done.returncode, {"stdout": done.stdout, "stderr": done.stderr,
                             "manifest": (output / "manifest.jsonl").read_text(),
                             "quarantine records": quarantine.read_text()}


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not there")
def test_a_debug_run_over_the_corpus_prints_and_writes_no_value_and_no_key(tmp_path):
    inputs = sorted(str(p) for p in CORPUS.rglob("*") if p.is_file()) + sample_files()
    tokens = identifying_tokens(inputs, load_profiles(["basic"]))
    searched = sorted(t for t in tokens if searchable(t, [*inputs, str(tmp_path)]))
    assert len(searched) > 300  # the controls: there is something to find, and the scan finds
    assert found_in(searched, f"a log line: {searched[0].upper()}.") == {searched[0]}
    code, texts = debug_run(tmp_path / "out", SECRET)
    assert code == 0, texts["stderr"][-2000:]
    assert texts["manifest"] and texts["quarantine records"]
    assert "DEBUG apache_beam" in texts["stderr"] and "deid.progress" in texts["stderr"]
    leaks = [(where, token, Path(tokens[token]).name) for where, text in texts.items()
             for token in found_in(searched, text)]
    assert leaks == []
    for where, text in texts.items():
        for form in key_forms(SECRET):
            assert form not in text, where
    binary = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for form in key_forms(SECRET):
        assert form.encode() not in binary


# --- the key -------------------------------------------------------------------------------

def _deidentified(key, profiles=("basic", "retain-long-modified-dates")) -> pydicom.Dataset:
    ds = base_dataset()
    ds.StudyDate = "20200315"
    result = deidentify_bytes(to_bytes(ds), load_profiles(list(profiles)), key)
    assert isinstance(result, Output)
    return pydicom.dcmread(io.BytesIO(result.data))


def _unkeyed_uids(uid: str) -> set[str]:
    """What someone without the key could compute from an original UID."""
    found = {str(generate_uid(entropy_srcs=[uid])), str(generate_uid(None, [uid])),
             "2.25." + str(uuid.uuid5(uuid.NAMESPACE_OID, uid).int),
             "2.25." + str(uuid.uuid3(uuid.NAMESPACE_OID, uid).int)}
    for name in ("md5", "sha1", "sha256", "sha512"):
        digest = hashlib.new(name, uid.encode()).digest()
        found |= {"2.25." + str(int.from_bytes(digest[:16], "big")),
                  "2.25." + str(int.from_bytes(digest[:16], "big") >> 2),
                  "2.25." + str(uuid.UUID(bytes=digest[:16]).int)}
    return found


def test_mappings_need_the_key():
    mine, other = _deidentified(KEY), _deidentified(OTHER_KEY)
    for keyword, original in (("SOPInstanceUID", SOP_UID), ("StudyInstanceUID", STUDY_UID)):
        assert mine[keyword].value != other[keyword].value
        assert {mine[keyword].value, other[keyword].value}.isdisjoint(_unkeyed_uids(original))
    assert mine.StudyDate != other.StudyDate  # the date offset depends on the key
    assert "20200315" not in (mine.StudyDate, other.StudyDate)


def test_the_key_is_in_no_output_of_deid_file(tmp_path, monkeypatch, capfd):
    from deid.cli import main as deid

    monkeypatch.setenv("DEID_SECRET", SECRET)
    (tmp_path / "in.dcm").write_bytes(to_bytes(base_dataset()))
    assert deid(["file", str(tmp_path / "in.dcm"), str(tmp_path / "out.dcm"),
                 "--profile", "basic"]) == 0
    captured = capfd.readouterr()
    data = (tmp_path / "out.dcm").read_bytes()
    for form in key_forms(SECRET):
        assert form not in captured.out + captured.err and form.encode() not in data


# --- YAML profiles and lookup files ---------------------------------------------------------

@pytest.mark.parametrize("tagged", [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object:pathlib.Path {{}}",
    "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
])
def test_python_tags_are_refused_with_file_and_line(tagged, tmp_path):
    marker = tmp_path / "ran"
    profile = tmp_path / "evil.yaml"
    profile.write_text("name: evil\nrules:\n  - attribute: PatientName\n    action: "
                       + tagged.format(marker=marker) + "\n")
    with pytest.raises(ProfileError) as caught:
        load_profiles([str(profile)])
    assert str(caught.value).startswith(f"{profile}:4:")
    assert "could not determine a constructor" in str(caught.value)
    assert not marker.exists()


def _laughs(depth: int = 9) -> str:
    """Aliases nested `depth` times, ten each: 10**depth strings once expanded."""
    lines = ["name: laughs", "note: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, depth + 1):
        lines.append(f"n{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    lines.append(f"rules:\n  - {{attribute: PatientID, action: lookup, file: ids.csv, "
                 f"key: *l{depth}}}")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_in_bounded_memory(tmp_path):
    (tmp_path / "ids.csv").write_text("original,code\nA,B\n")
    profile = tmp_path / "laughs.yaml"
    profile.write_text(_laughs())
    tracemalloc.start()
    try:
        with pytest.raises(ProfileError) as caught:
            load_profiles([str(profile)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "aliases expand to more than" in str(caught.value)
    assert f"{profile}:" in str(caught.value)
    assert peak < 32 << 20


@pytest.mark.parametrize("text, problem", [
    ("name: r\nrules: &r [*r]\n", "recursive"),
    ("name: d\nrules: " + "[" * 20000 + "]" * 20000 + "\n", "nesting depth"),
])
def test_recursive_and_deep_yaml_are_profile_errors(text, problem, tmp_path):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ProfileError, match=problem):
        load_profiles([str(tmp_path / "p.yaml")])


def test_anchors_within_the_limit_still_work(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "name: anchors\nextends: [basic]\nrules:\n"
        "  - {attribute: SeriesDescription, action: keep, when: &us {Modality: [US]}}\n"
        "  - {attribute: StudyDescription, action: keep, when: *us}\n")
    profile = load_profiles([str(tmp_path / "p.yaml")])
    assert profile.rules_for_tag(0x00081030)[0].action == "K"


def _opened_while(action) -> list[str]:
    """Every path `open` was called with (sys.addaudithook) while `action` ran."""
    opened: list[str] = []
    recording = [True]

    def hook(event: str, args: tuple) -> None:
        if recording[0] and event == "open" and isinstance(args[0], str | bytes | Path):
            opened.append(str(Path(args[0] if not isinstance(args[0], bytes)
                                   else args[0].decode()).resolve()))

    sys.addaudithook(hook)  # hooks cannot be removed: this one stops recording instead
    try:
        action()
    finally:
        recording[0] = False
    return opened


def test_a_profile_opens_only_the_files_it_names(tmp_path):
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "ids.csv").write_text("original,code\nA,B\n")
    (folder / "unrelated.csv").write_text("original,code\nC,D\n")
    (tmp_path / "secret.txt").write_text("not for profiles")
    (folder / "base.yaml").write_text("name: base\nextends: [basic]\n")
    (folder / "p.yaml").write_text(
        "name: p\nextends: [base.yaml, retain-uids]\nrules:\n"
        "  - {attribute: PatientID, action: lookup, file: ids.csv}\n")
    opened = _opened_while(lambda: load_profiles([str(folder / "p.yaml")]))
    package = Path(__import__("deid").__file__).resolve().parents[1]
    outside = [p for p in opened if not Path(p).is_relative_to(package)
               and not Path(p).is_relative_to(Path(sys.base_prefix).resolve())
               and not Path(p).is_relative_to(Path(sys.prefix).resolve())]
    assert sorted(set(outside)) == sorted(str((folder / n).resolve())
                                          for n in ("base.yaml", "ids.csv", "p.yaml"))


@pytest.mark.parametrize("name, problem", [
    ("../outside.csv", "outside the profile's folder"),
    ("sub/../../outside.csv", "outside the profile's folder"),
    ("link.csv", "outside the profile's folder"),
    ("folder", "not a regular file"),
    ("/dev/zero", "not a regular file"),
])
def test_a_lookup_file_cannot_escape_the_profiles_folder(name, problem, tmp_path):
    folder = tmp_path / "profiles"
    (folder / "folder").mkdir(parents=True)
    (tmp_path / "outside.csv").write_text("original,code\nA,B\n")
    (folder / "link.csv").symlink_to(tmp_path / "outside.csv")
    (folder / "p.yaml").write_text(
        f"name: p\nrules:\n  - {{attribute: PatientID, action: lookup, file: '{name}'}}\n")
    with pytest.raises(ProfileError, match=problem) as caught:
        load_profiles([str(folder / "p.yaml")])
    assert f"{folder / 'p.yaml'}:3:" in str(caught.value)


def test_a_lookup_file_named_by_absolute_path_is_read(tmp_path):
    (tmp_path / "elsewhere.csv").write_text("original,code\nA,B\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "p.yaml").write_text(
        f"name: p\nrules:\n  - {{attribute: PatientID, action: lookup, "
        f"file: '{tmp_path / 'elsewhere.csv'}'}}\n")
    profile = load_profiles([str(tmp_path / "sub" / "p.yaml")])
    assert profile.rules_for_tag(0x00100020)[0].lookup.table == {"A": "B"}
