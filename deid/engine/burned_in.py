"""Burned-in annotation: which instances may carry text in their pixels (PS3.15 E.1.1), what
the Clean Pixel Data Option does about it (E.3.1), and the cleaning itself.

The plan is decided from the original header, before the element pass may remove what the
rules match on; the cleaning runs after it. Pixels are decoded only for an instance a pixel
rule or the ultrasound option covers: any other instance keeps its Pixel Data byte for byte.
The pixel library (deid.pixels, with numpy) is imported only then, so a profile that cleans
nothing needs none of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from deid.engine.raw import coded_text
from deid.engine.rejected import Rejected
from deid.profile.model import OcrPolicy, PixelRule, Profile

if TYPE_CHECKING:
    from deid.pixels import Region

# PS3.15 E.1.1: modalities that routinely burn identifying text into the pixels.
BURNED_IN_MODALITIES = frozenset({"US", "SC", "OT", "XC", "ES"})
BURNED_IN_ANNOTATION, MODALITY = 0x00280301, 0x00080060


@dataclass(frozen=True)
class PixelPlan:
    """What happens to one instance's pixels, decided from its original header."""

    risk: str | None  # why the pixels may carry burned-in text; None: no sign of it
    rule: PixelRule | None = None  # the first pixel rule whose match holds
    keep_only: tuple[Region, ...] = ()  # ultrasound regions: everything outside is blanked
    ocr: OcrPolicy = "off"

    @property
    def cleans(self) -> bool:
        return self.rule is not None or bool(self.keep_only)

    def describe(self) -> str:
        """One line for `deid explain`: what is done to the pixels, and why."""
        done = []
        if self.rule is not None:
            regions = "; ".join(str(region) for region in self.rule.blank)
            done.append(f"pixel rule {self.rule.name!r} ({self.rule.source}) blanks {regions}")
        if self.keep_only:
            done.append(f"everything outside its {len(self.keep_only)} ultrasound region(s) "
                        "(0018,6011) is blanked")
        if done:
            if self.ocr != "off":
                done.append(f"then text detection (ocr: {self.ocr})")
            return "; ".join(done)
        if self.risk is not None:
            return f"kept as they are: {self.risk}, and the profile accepts it (burned_in: accept)"
        return "kept byte for byte: no sign of burned-in text and no pixel rule matches"


def burned_in_risk(dataset: Dataset) -> str | None:
    """Why an instance's pixels may carry burned-in identification (PS3.15 E.1.1), or None."""
    burned, modality = (coded_text(dataset, tag).strip().upper() if tag in dataset else ""
                        for tag in (BURNED_IN_ANNOTATION, MODALITY))
    if burned == "YES":
        return "BurnedInAnnotation (0028,0301) is YES"
    if not burned and modality in BURNED_IN_MODALITIES:
        return ("BurnedInAnnotation (0028,0301) is absent and Modality (0008,0060) is one that "
                "burns text in (US, SC, OT, XC, ES)")
    return None


def plan_pixels(dataset: Dataset, profile: Profile, originals: dict[int, list[str]]
                ) -> PixelPlan:
    """The plan for an instance, from its original header and the original values of the
    pixel rules' match tags. Raises Rejected (fail closed) for an instance at risk that
    neither a pixel rule nor the ultrasound option covers."""
    risk = burned_in_risk(dataset)
    if profile.burned_in == "accept":
        return PixelPlan(risk)
    if profile.burned_in == "reject":
        if risk is not None:
            raise Rejected("burned_in_annotation", f"{risk}; use a profile with "
                           "clean-pixel-data, or burned_in: accept once reviewed")
        return PixelPlan(risk)
    pixels = profile.pixels
    rule = pixels.first_match(originals)
    keep_only: tuple[Region, ...] = ()
    if risk is not None and pixels.ultrasound_regions == "keep-inside":
        library = _library()
        try:
            keep_only = tuple(library.ultrasound_regions(dataset))
        except library.PixelError as exc:
            raise Rejected(exc.reason, exc.message) from None
    if risk is not None and rule is None and not keep_only:
        missing = ("and it has no Sequence of Ultrasound Regions (0018,6011) to keep"
                   if pixels.ultrasound_regions == "keep-inside" else "(ultrasound_regions: off)")
        raise Rejected("burned_in_annotation", f"{risk}; no pixel-cleaning rule covers this "
                       f"instance: no pixel rule matches {missing}")
    plan = PixelPlan(risk, rule, keep_only, pixels.ocr)
    if plan.cleans and plan.ocr != "off" and not _library().ocr_available():
        raise Rejected("ocr_unavailable", f"the profile asks for text detection (ocr: "
                       f"{plan.ocr}) and Tesseract is not installed")
    return plan


def clean_pixels(dataset: Dataset, plan: PixelPlan, transfer_syntax: str) -> str:
    """Blank what the plan says, in place, and return the transfer syntax the dataset must now
    be written with. Raises Rejected with the pixel library's reason when it cannot."""
    library = _library()
    regions = [library.Region(r.left, r.top, r.width, r.height, r.frames)
               for r in (plan.rule.blank if plan.rule is not None else ())]
    try:
        syntax = library.blank_regions(dataset, transfer_syntax, regions,
                                       keep_only=plan.keep_only).transfer_syntax
        if plan.ocr == "off":
            return syntax
        # Never the only safeguard: text detection looks at what the rules already cleaned.
        boxes = library.find_text(dataset, syntax)
        if boxes and plan.ocr == "check":
            frames = sorted({frame for box in boxes for frame in box.frames or ()})
            where = f" in frame(s) {', '.join(map(str, frames))}" if frames else ""
            raise Rejected("text_remains", f"text detection finds {len(boxes)} box(es) of "
                           f"text in Pixel Data (7FE0,0010) after cleaning{where}")
        if boxes:
            syntax = library.blank_regions(dataset, syntax, boxes).transfer_syntax
    except library.PixelError as exc:
        raise Rejected(exc.reason, exc.message) from None
    return syntax


def _library() -> ModuleType:
    """deid.pixels, imported only for an instance whose pixels are cleaned."""
    try:
        import deid.pixels
    except ImportError as exc:
        raise Rejected("pixels_unavailable", "cleaning pixels needs the 'pixels' extra "
                       f"(pip install 'deid-pipeline[pixels]'; {exc.name} is missing)") from None
    return deid.pixels
