"""Pixel rules in profiles (PS3.15 E.3.1): how they are written, checked and composed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import deid.pixels
from deid.cli import main
from deid.curator.lint import lint
from deid.profile import ProfileError, load_profiles
from deid.profile.model import PixelPolicy


def _write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _problems(folder: Path, text: str) -> list[str]:
    path = _write(folder, "p.yaml", text)
    with pytest.raises(ProfileError) as info:
        load_profiles([path])
    return [str(p).replace(f"{path}:", "") for p in info.value.problems]


def test_a_pixels_section_loads_rules_regions_frames_and_settings(tmp_path):
    profile = load_profiles([_write(tmp_path, "p.yaml", """\
name: site
extends: [clean-pixel-data]
pixels:
  ultrasound_regions: keep-inside
  ocr: off
  rules:
  - name: acme-us
    match: {Manufacturer: ACME, ManufacturerModelName: {pattern: '^Sono'}, Rows: 480}
    blank:
    - [0, 0, 640, 40]
    - {region: [0, 440, 200, 40], frames: [2, 1]}
""")])
    pixels = profile.pixels
    assert (pixels.ultrasound_regions, pixels.ocr) == ("keep-inside", "off")
    (rule,) = pixels.rules
    assert (rule.name, rule.profile, rule.source.line, rule.source.column) == ("acme-us", "site",
                                                                                7, 5)
    assert [(r.left, r.top, r.width, r.height, r.frames) for r in rule.blank] == [
        (0, 0, 640, 40, None), (0, 440, 200, 40, (1, 2))]
    assert [r.source.line for r in rule.blank] == [10, 11]
    originals = {0x00080070: ["ACME"], 0x00081090: ["SonoOne 3"], 0x00280010: ["480"]}
    assert rule.matches(originals)
    assert not rule.matches({**originals, 0x00081090: ["Other Sono"]})  # '^' anchors
    assert not rule.matches({**originals, 0x00280010: ["600"]})
    assert not rule.matches({0x00081090: ["SonoOne"], 0x00280010: ["480"]})  # no Manufacturer


def test_without_a_pixels_section_nothing_is_cleaned():
    assert load_profiles(["clean-pixel-data"]).pixels == PixelPolicy()


@pytest.mark.parametrize(("text", "expected"), [
    ("  rules:\n  - {name: a, match: {Modality: US}, blank: [[0, 0, 0, 10]]}\n",
     "8:46: region [0, 0, 0, 10]: left and top are 0 or more, width and height more than 0"),
    ("  rules:\n  - {name: a, match: {Modality: US}, blank: [{region: [0, 0, 5, 5], "
     "frames: [0]}]}\n", "8:77: 'frames' is a list of frame numbers, counted from 1"),
    ("  rules:\n  - {name: a, match: {Modality: US}, blank: [[0, 0, 5]]}\n",
     "8:46: a region is [left, top, width, height]"),
    ("  rules:\n  - {name: a, blank: [[0, 0, 5, 5]]}\n", "8:5: a pixel rule needs 'match'"),
    ("  rules:\n  - {name: a, match: {Modality: US}}\n", "8:5: a pixel rule needs 'blank'"),
    ("  rules:\n  - {match: {Modality: US}, blank: [[0, 0, 5, 5]]}\n",
     "8:5: the pixel rule has no 'name'"),
    ("  rules:\n  - {name: a, match: {Modalty: US}, blank: [[0, 0, 5, 5]]}\n",
     "8:23: unknown keyword 'Modalty' in 'match' (fix: did you mean 'Modality'?)"),
    ("  rules:\n  - {name: a, match: {Manufacturer: {pattern: '(('}}, blank: [[0, 0, 5, 5]]}\n",
     "8:37: bad pattern '(('"),
    ("  rules:\n  - {name: a, match: {Manufacturer: {regex: x}}, blank: [[0, 0, 5, 5]]}\n",
     "8:37: Manufacturer: a pattern is written {pattern: REGEX}"),
    ("  rules:\n  - {name: a, match: {Modality: US}, blank: [[0, 0, 5, 5]], frames: [1]}\n",
     "8:61: unknown pixel rule key 'frames'"),
    ("  ocr: sometimes\n", "7:8: 'ocr' is one of off, check, redact"),
    ("  ultrasound_regions: yes\n",
     "7:23: 'ultrasound_regions' is one of off, keep-inside"),
    ("  rule: []\n", "7:3: unknown pixels key 'rule' (fix: did you mean 'rules'?)"),
])
def test_pixel_rule_mistakes_are_reported_with_line_and_column(tmp_path, text, expected):
    problems = _problems(tmp_path, "name: p\nextends: [clean-pixel-data]\n# one\n# two\n"
                                   f"# three\npixels:\n{text}")
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_two_rules_of_one_file_need_two_names(tmp_path):
    problems = _problems(tmp_path, """\
name: p
extends: [clean-pixel-data]
pixels:
  rules:
  - {name: a, match: {Modality: US}, blank: [[0, 0, 5, 5]]}
  - {name: a, match: {Modality: SC}, blank: [[0, 0, 5, 5]]}
""")
    assert problems == ["6:5: a second pixel rule named 'a' (the first is at line 5) (fix: give "
                        "each rule of a file its own name)"]


def test_pixel_rules_need_burned_in_clean(tmp_path):
    problems = _problems(tmp_path, """\
name: p
extends: [basic]
pixels:
  ultrasound_regions: keep-inside
""")
    assert len(problems) == 1 and problems[0].startswith(
        "3:1: pixel cleaning needs burned_in: clean, and this composition has burned_in: reject")
    # Setting burned_in: clean directly is enough.
    path = _write(tmp_path, "q.yaml", "name: q\nextends: [basic]\nburned_in: clean\n"
                                      "pixels: {ultrasound_regions: keep-inside}\n")
    assert load_profiles([path]).pixels.ultrasound_regions == "keep-inside"


def _pixel_profile(folder: Path, name: str, ocr: str, *rules: str) -> str:
    """A profile extending clean-pixel-data with an ocr setting and pixel rules (flow style)."""
    lines = "".join(f"  - {rule}\n" for rule in rules)
    return _write(folder, f"{name}.yaml", f"name: {name}\nextends: [clean-pixel-data]\n"
                                          f"pixels:\n  ocr: {ocr}\n  rules:\n{lines}")


def test_later_profiles_rules_are_tried_first_and_replace_by_name(tmp_path):
    first = _pixel_profile(tmp_path, "first", "check",
                           "{name: acme, match: {Manufacturer: ACME}, blank: [[0, 0, 5, 5]]}",
                           "{name: zeta, match: {Manufacturer: ZETA}, blank: [[0, 0, 5, 5]]}")
    second = _pixel_profile(
        tmp_path, "second", "redact",
        "{name: acme-x1, match: {ManufacturerModelName: X1}, blank: [[0, 0, 9, 9]]}",
        "{name: zeta, match: {Manufacturer: ZETA}, blank: [[0, 0, 7, 7]]}")
    pixels = load_profiles([first, second]).pixels
    assert [(r.profile, r.name) for r in pixels.rules] == [
        ("second", "acme-x1"), ("second", "zeta"), ("first", "acme")]
    assert pixels.ocr == "redact"
    both = {0x00080070: ["ACME"], 0x00081090: ["X1"]}
    assert pixels.first_match(both).name == "acme-x1"
    assert load_profiles([second, first]).pixels.first_match(both).name == "acme"
    assert pixels.first_match({0x00080070: ["OTHER"]}) is None


def test_lint_warns_when_ocr_is_asked_for_and_tesseract_is_missing(tmp_path, monkeypatch):
    path = _pixel_profile(tmp_path, "ocr", "check",
                          "{name: us, match: {Modality: US}, blank: [[0, 0, 10, 10]]}")
    monkeypatch.setattr(deid.pixels, "ocr_available", lambda: True)
    assert lint([path]) == []
    monkeypatch.setattr(deid.pixels, "ocr_available", lambda: False)
    (finding,) = lint([path])
    assert (finding.line, finding.column, finding.kind) == (4, 8, "ocr")
    assert finding.message.startswith("ocr: check needs Tesseract, which is not installed here")
    assert "ocr_unavailable" in finding.message and "tesseract-ocr" in finding.fix


def test_profile_show_lists_pixel_rules_in_the_order_tried(tmp_path, capsys):
    path = _pixel_profile(tmp_path, "ocr", "check",
                          "{name: us, match: {Modality: US}, blank: [[0, 0, 10, 10]]}")
    assert main(["profile", "show", path, "-a", "PatientName"]) == 0
    out = capsys.readouterr().out
    assert f"pixels: ultrasound_regions: off   ocr: check   rules, in the order tried: us " \
           f"({path}:6)\n" in out
    assert main(["profile", "show", path, "-a", "PatientName", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["pixels"]
    assert shown["rules"] == [{"name": "us", "source": f"{path}:6", "match": {"Modality": ["US"]},
                               "blank": ["[0, 0, 10, 10]"]}]
