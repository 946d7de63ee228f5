"""A detection's measurements as a DICOM Structured Report (TID 1500 Measurement Report, Comprehensive 3D SR).

Why an SR beside the SEG: a SEG carries where the anomalies are, not what the model said about them; a PACS viewer
shows an SR's measurements as text next to the images, and other software reads them as coded values. Written with
highdicom (the ``dicom`` extra). Content, as ``docs/pacs.md`` describes for readers:

- observer: a device, the model (name and version), and the algorithm (name, version, scorer, alpha) on each group;
- one image-level group "Subject": subject p-value, subject score, alpha, flagged volume (mL) and the flag (Yes/No);
- one volumetric group per region of the label map ("Region 1", ...), referencing segment 1 of the SEG and the source
  series: volume (mL), peak score and, when the model is calibrated, the region's p-value.

Concepts with no standard code (p-values, anomaly scores) use the private coding scheme ``99LATANOM``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SCHEME = "99LATANOM"
TITLE = "LatentAnomaly measurement report"


def _concept(value: str, meaning: str) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=SCHEME, meaning=meaning)


def concepts() -> dict[str, Any]:
    """The private concepts of the report, by the summary field they carry."""
    return {
        "subject_p_value": _concept("LA0001", "Subject p-value"),
        "subject_score": _concept("LA0002", "Subject anomaly score"),
        "alpha": _concept("LA0003", "False-positive rate alpha"),
        "flagged_volume_ml": _concept("LA0004", "Flagged volume"),
        "subject_flagged": _concept("LA0005", "Flagged at alpha"),
        "peak_score": _concept("LA0006", "Peak anomaly score"),
        "p_value": _concept("LA0007", "Region p-value"),
    }


def _units() -> dict[str, Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return {"ml": hd.sr.CodedConcept("mL", "UCUM", "milliliter"), "none": codes.UCUM.NoUnits}


def _derived_uid(base: str, part: str) -> str:
    """A UID of its own for ``part`` of the report ``base``, the same on every run (a UID is at most 64 characters)."""
    import hashlib
    import uuid

    digest = hashlib.sha256(f"{base}\x1f{part}".encode()).digest()
    return f"2.25.{uuid.UUID(bytes=digest[:16], version=5).int}"


def build_report(
    summary: Mapping[str, Any],
    sources: Sequence[Any],
    segmentation: Any,
    series_instance_uid: str,
    sop_instance_uid: str,
    series_number: int | None = None,
) -> Any:
    """The Comprehensive 3D SR of ``summary`` (a detection's summary.json) on ``sources`` (the series' datasets) and
    ``segmentation`` (the SEG of its label map, whose segment 1 the regions reference)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    names, units = concepts(), _units()
    model = summary["model"]
    algorithm = hd.sr.AlgorithmIdentification(
        name=str(model["name"]),
        version=str(model["version"]),
        parameters=[f"scorer={model['scorer']}", f"alpha={summary.get('alpha')}"],
    )
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=_derived_uid(sop_instance_uid, "device"),
        name="LatentAnomaly",
        model_name=f"{model['name']} {model['version']}",
    )
    context = hd.sr.ObservationContext(
        observer_person_context=None,
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        ),
    )

    def measurement(key: str, value: Any, unit: str = "none", name: Any = None) -> Any:
        return hd.sr.Measurement(name=name or names[key], value=float(value), unit=units[unit], algorithm_id=algorithm)

    subject = [measurement("subject_score", summary["subject_score"])]
    if summary.get("subject_p_value") is not None:
        subject += [measurement("subject_p_value", summary["subject_p_value"]), measurement("alpha", summary["alpha"])]
    subject.append(measurement("flagged_volume_ml", summary["flagged_volume_ml"], "ml"))
    flag = hd.sr.QualitativeEvaluation(
        names["subject_flagged"], codes.SCT.Yes if summary["subject_flagged"] else codes.SCT.No
    )
    groups: list[Any] = [
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                identifier="Subject", uid=_derived_uid(sop_instance_uid, "subject")
            ),
            measurements=subject,
            qualitative_evaluations=[flag],
            algorithm_id=algorithm,
        )
    ]
    source_series = hd.sr.SourceSeriesForSegmentation(str(sources[0].SeriesInstanceUID))
    for region in summary.get("components", []):
        values = [
            measurement("volume_ml", region["volume_ml"], "ml", name=codes.SCT.Volume),
            measurement("peak_score", region["peak_score"]),
        ]
        if region.get("p_value") is not None:
            values.append(measurement("p_value", region["p_value"]))
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    identifier=f"Region {region['id']}", uid=_derived_uid(sop_instance_uid, f"region {region['id']}")
                ),
                referenced_segment=hd.sr.ReferencedSegment(
                    sop_class_uid=segmentation.SOPClassUID,
                    sop_instance_uid=segmentation.SOPInstanceUID,
                    segment_number=1,
                    source_series=source_series,
                ),
                finding_type=codes.SCT.MorphologicallyAbnormalStructure,
                measurements=values,
                algorithm_id=algorithm,
            )
        )
    report = hd.sr.MeasurementReport(
        observation_context=context, procedure_reported=codes.LN.BrainMRI, imaging_measurements=groups
    )
    if series_number is None:
        series_number = 1001 + int(getattr(sources[0], "SeriesNumber", 0) or 0)
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*sources, segmentation],
        content=report[0],
        series_instance_uid=series_instance_uid,
        series_number=series_number,
        sop_instance_uid=sop_instance_uid,
        instance_number=1,
        manufacturer="LatentAnomaly",
        is_complete=True,
        is_final=True,
    )
    sr.SeriesDescription = TITLE
    return sr


def report_measurements(sr: Any) -> dict[str, Any]:
    """The values of a report made by :func:`build_report`, read back: ``{"subject": {field: value},
    "regions": [{field: value}]}`` keyed by the summary.json fields (the flag as a bool)."""
    keys = {(c.value, c.scheme_designator): k for k, c in concepts().items()}
    keys[("118565006", "SCT")] = "volume_ml"
    result: dict[str, Any] = {"subject": {}, "regions": []}
    for group in sr.ContentSequence:
        if group.ConceptNameCodeSequence[0].CodeValue != "126010":  # Imaging Measurements
            continue
        for item in group.ContentSequence:
            values: dict[str, Any] = {}
            for entry in item.get("ContentSequence", []):
                code = entry.ConceptNameCodeSequence[0]
                key = keys.get((code.CodeValue, code.CodingSchemeDesignator))
                if key is None:
                    continue
                if entry.ValueType == "NUM":
                    values[key] = float(entry.MeasuredValueSequence[0].NumericValue)
                elif entry.ValueType == "CODE":
                    values[key] = entry.ConceptCodeSequence[0].CodeValue == "373066001"
                elif entry.ValueType == "TEXT" and key == "tracking":
                    values[key] = entry.TextValue
            identifier = next((e.TextValue for e in item.get("ContentSequence", []) if e.ValueType == "TEXT"), "")
            if identifier == "Subject":
                result["subject"] = values
            elif identifier.startswith("Region "):
                result["regions"].append({"id": int(identifier.split()[1]), **values})
    return result
