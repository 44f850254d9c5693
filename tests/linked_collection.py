"""A small linked collection, as archives publish them: two CT series and the objects that
point at them, built with highdicom (SEG, Comprehensive 3D SR with TID 1500 measurements,
GSPS) and pydicom (the CT images, an RTSTRUCT with contour image references, a KOS).

Every UID is derived from a fixed seed, so the collection is the same on every run.
"""

from __future__ import annotations

import copy
from pathlib import Path

import highdicom as hd
import numpy as np
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import dcmread
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SIZE = 16  # rows and columns of the CT images: small files
SLICES = 3
PATIENT = {"PatientName": "Linked^Jane^Q", "PatientID": "LNK-77123", "PatientBirthDate":
           "19610312", "PatientSex": "F", "StudyDate": "20240115", "StudyTime": "093000",
           "AccessionNumber": "ACC-5512", "StudyID": "S-901",
           "ReferringPhysicianName": "Referrer^Robert", "InstitutionName": "St. Linked Hospital"}
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
KOS_STORAGE = "1.2.840.10008.5.1.4.1.1.88.59"


def uid(name: str) -> str:
    """A UID of the collection, the same on every run."""
    return generate_uid(entropy_srcs=["deid linked collection", name])  # pydicom's root


def _ct_slices(series: str, number: int, study: str, frame: str, derived_from: list[Dataset]
               ) -> list[Dataset]:
    """CT images made from pydicom's CT_small.dcm: its header, the collection's patient and
    UIDs, a SIZE x SIZE pixel matrix; a derived series references its source images."""
    template = dcmread(get_testdata_file("CT_small.dcm"))
    slices = []
    for index in range(SLICES):
        ds = copy.deepcopy(template)
        for keyword, value in PATIENT.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.FrameOfReferenceUID = frame
        ds.SOPInstanceUID = uid(f"{series}/{index}")
        ds.SeriesNumber = number
        ds.InstanceNumber = index + 1
        ds.SeriesDescription = f"CT chest {PATIENT['PatientID']}"
        ds.Rows = ds.Columns = SIZE
        ds.PixelSpacing = [0.5, 0.5]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, float(index)]
        ds.SliceLocation = float(index)
        ds.SliceThickness = 1.0
        ds.PixelData = (np.arange(SIZE * SIZE, dtype=np.int16) + 100 * index).tobytes()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        if derived_from:
            source = derived_from[index]
            ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
            ds.DerivationDescription = "smoothed"
            ds.SourceImageSequence = Sequence([_image_reference(source)])
            ds.ReferencedImageSequence = Sequence([_image_reference(source)])
        slices.append(ds)
    return slices


def _image_reference(image: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = image.SOPClassUID
    item.ReferencedSOPInstanceUID = image.SOPInstanceUID
    return item


def _common(ds: Dataset, source: Dataset, sop_class: str, name: str, modality: str) -> None:
    """The patient and study of the source, and a new series and instance."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = uid(name)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid(name)
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
                    "ReferringPhysicianName"):
        setattr(ds, keyword, getattr(source, keyword))
    ds.Modality = modality
    ds.SeriesInstanceUID = uid(f"{name} series")
    ds.SeriesNumber = 90
    ds.InstanceNumber = 1
    ds.Manufacturer = "ACME"
    ds.ContentDate = "20240116"
    ds.ContentTime = "101112"


def _rtstruct(ct: list[Dataset]) -> Dataset:
    """An RT Structure Set with one ROI contoured on every slice of the first series."""
    ds = Dataset()
    _common(ds, ct[0], RTSTRUCT_STORAGE, "rtstruct", "RTSTRUCT")
    ds.OperatorsName = "Planner^Pat"
    ds.StructureSetLabel = "LIVER"
    ds.StructureSetDate = "20240116"
    ds.StructureSetTime = "101112"
    ds.ReferringPhysicianName = ct[0].ReferringPhysicianName
    ds.SeriesDate = "20240116"
    ds.ManufacturerModelName = "Planner"
    ds.DeviceSerialNumber = "SN-1"
    ds.SoftwareVersions = "1"
    ds.PositionReferenceIndicator = ""
    ds.FrameOfReferenceUID = ct[0].FrameOfReferenceUID
    series = Dataset()
    series.SeriesInstanceUID = ct[0].SeriesInstanceUID
    series.ContourImageSequence = Sequence([_image_reference(image) for image in ct])
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management
    study.ReferencedSOPInstanceUID = ct[0].StudyInstanceUID
    study.RTReferencedSeriesSequence = Sequence([series])
    frame = Dataset()
    frame.FrameOfReferenceUID = ct[0].FrameOfReferenceUID
    frame.RTReferencedStudySequence = Sequence([study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    roi = Dataset()
    roi.ROINumber = 1
    roi.ReferencedFrameOfReferenceUID = ct[0].FrameOfReferenceUID
    roi.ROIName = "Liver"
    roi.ROIGenerationAlgorithm = "MANUAL"
    ds.StructureSetROISequence = Sequence([roi])
    contours = []
    for image in ct:
        contour = Dataset()
        contour.ContourImageSequence = Sequence([_image_reference(image)])
        contour.ContourGeometricType = "CLOSED_PLANAR"
        contour.NumberOfContourPoints = 3
        z = float(image.ImagePositionPatient[2])
        contour.ContourData = [1.0, 1.0, z, 4.0, 1.0, z, 4.0, 4.0, z]
        contours.append(contour)
    roi_contour = Dataset()
    roi_contour.ReferencedROINumber = 1
    roi_contour.ROIDisplayColor = [255, 0, 0]
    roi_contour.ContourSequence = Sequence(contours)
    ds.ROIContourSequence = Sequence([roi_contour])
    observation = Dataset()
    observation.ObservationNumber = 1
    observation.ReferencedROINumber = 1
    observation.RTROIInterpretedType = "ORGAN"
    observation.ROIInterpreter = ""
    ds.RTROIObservationsSequence = Sequence([observation])
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


def _kos(ct: list[Dataset], seg: Dataset) -> Dataset:
    """A Key Object Selection naming a CT image and the SEG."""
    ds = Dataset()
    _common(ds, ct[0], KOS_STORAGE, "kos", "KO")
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    title = Dataset()
    title.CodeValue = "113000"
    title.CodingSchemeDesignator = "DCM"
    title.CodeMeaning = "Of Interest"
    ds.ConceptNameCodeSequence = Sequence([title])
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = Sequence([template])
    items, evidence = [], {}
    for target in (ct[0], seg):
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "IMAGE" if target is ct[0] else "COMPOSITE"
        item.ReferencedSOPSequence = Sequence([_image_reference(target)])
        items.append(item)
        evidence.setdefault(target.SeriesInstanceUID, []).append(target)
    ds.ContentSequence = Sequence(items)
    series = []
    for series_uid, targets in evidence.items():
        entry = Dataset()
        entry.SeriesInstanceUID = series_uid
        entry.ReferencedSOPSequence = Sequence([_image_reference(t) for t in targets])
        series.append(entry)
    study = Dataset()
    study.StudyInstanceUID = ct[0].StudyInstanceUID
    study.ReferencedSeriesSequence = Sequence(series)
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([study])
    ds.InstanceNumber = 1
    return ds


def _seg(ct: list[Dataset]) -> hd.seg.Segmentation:
    mask = np.zeros((SLICES, SIZE, SIZE), dtype=bool)
    mask[:, 4:10, 4:10] = True
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Liver", segmented_property_category=codes.SCT.Organ,
        segmented_property_type=codes.SCT.Liver,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        tracking_uid=uid("liver tracking"), tracking_id="Liver of LNK-77123")
    return hd.seg.Segmentation(
        source_images=ct, pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=[segment],
        series_instance_uid=uid("seg series"), series_number=80, sop_instance_uid=uid("seg"),
        instance_number=1, manufacturer="ACME", manufacturer_model_name="Segmenter",
        software_versions="1.0", device_serial_number="SN-SEG",
        content_creator_name="Reader^Rita", content_label="LIVER")


def _sr(ct: list[Dataset], seg: Dataset) -> hd.sr.Comprehensive3DSR:
    """TID 1500: one measurement on a region of a CT image, one on the SEG's segment (with the
    segment's Tracking UID)."""
    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array([[2.0, 2.0], [8.0, 2.0], [8.0, 8.0], [2.0, 2.0]]),
        source_image=hd.sr.SourceImageForRegion.from_source_image(ct[1]))
    planar = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid("lesion tracking"),
                                                     identifier="Lesion 1"),
        referenced_region=region, finding_type=codes.SCT.Lesion,
        measurements=[hd.sr.Measurement(name=codes.SCT.Area, value=12.5,
                                        unit=codes.UCUM.SquareMillimeter)])
    volumetric = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid("liver tracking"),
                                                     identifier="Liver of LNK-77123"),
        referenced_segment=hd.sr.ReferencedSegment(
            sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
            segment_number=1, source_series=hd.sr.SourceSeriesForSegmentation(
                ct[0].SeriesInstanceUID)),
        finding_type=codes.SCT.Liver,
        measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=40.0,
                                        unit=codes.UCUM.CubicMillimeter)])
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Reader^Rita"))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion,
        imaging_measurements=[planar, volumetric])
    return hd.sr.Comprehensive3DSR(
        evidence=[*ct, seg], content=report[0], series_instance_uid=uid("sr series"),
        series_number=70, sop_instance_uid=uid("sr"), instance_number=1, manufacturer="ACME",
        institution_name=PATIENT["InstitutionName"])


def _gsps(ct: list[Dataset]) -> hd.pr.GrayscaleSoftcopyPresentationState:
    layer = hd.pr.GraphicLayer(layer_name="NOTES", order=1)
    annotation = hd.pr.GraphicAnnotation(
        referenced_images=[ct[0]], graphic_layer=layer,
        text_objects=[hd.pr.TextObject(text_value="lesion", units=hd.pr.AnnotationUnitsValues.PIXEL,
                                       bounding_box=(2.0, 2.0, 10.0, 6.0))])
    return hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=ct, series_instance_uid=uid("gsps series"), series_number=60,
        sop_instance_uid=uid("gsps"), instance_number=1, manufacturer="ACME",
        manufacturer_model_name="Viewer", software_versions="2.0", device_serial_number="SN-PR",
        content_label="NOTES", graphic_layers=[layer], graphic_annotations=[annotation],
        content_creator_name="Reader^Rita",
        voi_lut_transformations=[hd.pr.SoftcopyVOILUTTransformation(window_center=40.0,
                                                                    window_width=400.0)])


def build(folder: Path) -> dict[str, Path]:
    """Write the collection into ``folder``; name -> file."""
    study, frame = uid("study"), uid("frame")
    first = _ct_slices(uid("ct series 1"), 1, study, frame, [])
    second = _ct_slices(uid("ct series 2"), 2, study, frame, first)  # derived from the first
    seg = _seg(first)
    objects: dict[str, Dataset] = {f"ct1_{i}": ds for i, ds in enumerate(first)}
    objects |= {f"ct2_{i}": ds for i, ds in enumerate(second)}
    objects |= {"seg": seg, "sr": _sr(first, seg), "gsps": _gsps(first),
                "rtstruct": _rtstruct(first), "kos": _kos(first, seg)}
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, ds in objects.items():
        for keyword, value in PATIENT.items():
            if keyword.startswith("Patient"):
                setattr(ds, keyword, value)
        files[name] = folder / f"{name}.dcm"
        ds.save_as(files[name], enforce_file_format=True)
    return files
