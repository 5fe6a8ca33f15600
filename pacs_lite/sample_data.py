"""Deterministic sample DICOM studies for the demo, the tests and the benchmarks.

The same seed always gives the same plan and byte-identical files. The
default set holds about twenty patients with CT, MR and CR studies spread
over several years, and deliberately awkward but legal values: names in
Latin-1, UTF-8 and ISO 2022 Japanese, an empty name, quotes, SQL and glob
wildcards, an HTML tag, missing or empty optional tags, and referring
physicians written in different cases and forms.

    plan = sample_plan(seed=0)               # what the files will contain
    for path, data in iter_sample_files(seed=0):
        ...                                  # Part-10 bytes, one per instance
    write_sample_files("samples", seed=0)    # the same, onto disk
    make_ct_series(slice_count=200)          # one large CT for the viewer benchmark

Command line: ``python -m pacs_lite.sample_data --out DIR [--seed N]``.

In the plan, ``None`` means "the tag is absent from the files" and ``""``
means "the tag is present with an empty value".
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import io
import math
import random
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
)

from pacs_lite.orthanc import OrthancError

SOP_CLASS_BY_MODALITY = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "CR": ComputedRadiographyImageStorage,
}

# LO holds at most 64 characters; this description uses all of them.
LONG_STUDY_DESCRIPTION = (
    "CT HEAD WITHOUT CONTRAST - FOLLOW-UP AFTER FALL; COMPARE W PRIOR"
)

_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "pacs_lite sample data")

FIRST_STUDY_DAY = datetime.date(2015, 1, 5)
STUDY_DAYS_SPAN = 10 * 365


# ---------------------------------------------------------------- the plan


@dataclasses.dataclass(frozen=True)
class SeriesPlan:
    """One planned series: its identity, geometry and instance UIDs."""

    series_uid: str
    series_number: int
    kind: str  # key into _SERIES_KINDS: which phantom, windows and timing
    modality: str
    description: str
    instance_uids: tuple[str, ...]
    rows: int
    columns: int
    pixel_spacing: float  # mm, the same along rows and columns
    slice_spacing: float | None  # mm between slice centres; None for CR
    photometric: str  # MONOCHROME2, or MONOCHROME1 for one CR

    @property
    def instance_count(self) -> int:
        """Return how many instances the series holds."""
        return len(self.instance_uids)

    @property
    def sop_class_uid(self) -> str:
        """Return the SOP Class UID every instance of the series carries."""
        return SOP_CLASS_BY_MODALITY[self.modality]


@dataclasses.dataclass(frozen=True)
class StudyPlan:
    """One planned study; None marks a tag left out of the files."""

    study_uid: str
    study_number: int  # 1-based, in date order within the patient
    study_date: str  # DA, YYYYMMDD
    study_time: str  # TM, HHMMSS or HHMMSS.FFFFFF
    description: str | None
    accession_number: str | None
    referring_physician: str | None
    series: tuple[SeriesPlan, ...]

    @property
    def modalities(self) -> tuple[str, ...]:
        """Return the study's modalities, sorted and without repeats."""
        return tuple(sorted({series.modality for series in self.series}))

    @property
    def instance_count(self) -> int:
        """Return how many instances the study holds."""
        return sum(series.instance_count for series in self.series)


@dataclasses.dataclass(frozen=True)
class PatientPlan:
    """One planned patient; the name is the Unicode DICOM form (with ^ and =)."""

    patient_id: str
    patient_name: str
    character_set: tuple[str, ...]  # SpecificCharacterSet; () for plain ASCII
    birth_date: str | None
    sex: str | None
    studies: tuple[StudyPlan, ...]


@dataclasses.dataclass(frozen=True)
class SamplePlan:
    """The whole planned sample set for one seed."""

    seed: int
    patients: tuple[PatientPlan, ...]

    @property
    def studies(self) -> tuple[StudyPlan, ...]:
        """Return every study of every patient."""
        return tuple(study for patient in self.patients for study in patient.studies)

    @property
    def instance_count(self) -> int:
        """Return how many instances (files) the set holds."""
        return sum(study.instance_count for study in self.studies)


# ------------------------------------------------------------ the roster


class _RosterEntry(NamedTuple):
    """A fixed patient of the default set, with quirks for their first study."""

    patient_id: str
    name: str
    character_set: tuple[str, ...]
    sex: str | None
    birth_date: str | None
    first_study: dict


LATIN_1 = ("ISO_IR 100",)
UTF_8 = ("ISO_IR 192",)
JAPANESE = ("", "ISO 2022 IR 87")

# The patients are fixed so that every seed carries every awkward value;
# the seed only changes UIDs, dates, study mix, counts and pixel noise.
_ROSTER = (
    _RosterEntry("PL0001", "DOE^JOHN", (), "M", "19700101", {
        "kind": "ct_head", "description": LONG_STUDY_DESCRIPTION,
        "referring_physician": "house^gregory^^"}),
    _RosterEntry("PL0002", "DOE^JANE", (), "F", "19721224", {
        "kind": "mr_brain", "referring_physician": "Schrodinger^Erwin",
        "study_time": "073005.250000"}),
    _RosterEntry("PL0003", "MÜLLER^JÜRGEN", LATIN_1, "M", "19560312", {
        "kind": "ct_head", "description": "Schädel nativ",
        "referring_physician": "SCHRÖDINGER^ERWIN"}),
    _RosterEntry("PL0004", "Gómez^Inés", LATIN_1, "F", "19880704", {
        "kind": "cr_chest", "monochrome1": True,
        "referring_physician": "CURIE^MARIE"}),
    _RosterEntry("PL0005", "Ødegård^Åse", UTF_8, "F", "19910228", {
        "kind": "mr_brain", "description": "MR hjerne før og etter kontrast"}),
    _RosterEntry("PL0006", "Παπαδόπουλος^Γιώργος", UTF_8, "M", "19650915", {}),
    _RosterEntry("PL0007", "Иванова^Мария", UTF_8, "F", "19790530", {}),
    _RosterEntry("PL0008", "Yamada^Tarou=山田^太郎=やまだ^たろう", JAPANESE, "M",
                 "19830101", {"referring_physician": "HOUSE^GREGORY"}),
    _RosterEntry("PL0009", "", (), "", "", {
        "accession_number": "", "referring_physician": ""}),
    _RosterEntry("PL0010", "O'BRIEN^SEAN", (), "M", "19601117", {
        "referring_physician": "House Gregory"}),
    _RosterEntry("PL0011", "SMITH_JONES^ANNA", (), "F", "19930412", {
        "accession_number": None, "referring_physician": None,
        "description": None}),
    _RosterEntry("PL0012", "SMITHXJONES^PETER", (), "M", "19580808", {}),
    _RosterEntry("PL0013", "LOPEZ%^MARIA", (), "F", "19770203", {}),
    _RosterEntry("PL0014", "LOPEZ^MARIO", (), "M", "19750619", {}),
    _RosterEntry("PL0015", "STAR*^ALEX", (), "O", "20010101", {}),
    _RosterEntry("PL0016", "STARK^TONY", (), "M", "19700529", {}),
    _RosterEntry("PL0017", "<script>alert(1)</script>", (), None, None, {
        "description": '<b>bold</b> & "quoted"'}),
    _RosterEntry("PL0018", "van der Berg^Anna^Maria^Dr.^PhD", (), "F",
                 "19491231", {}),
    _RosterEntry("PL0019", "NULL^NONE", (), None, None, {}),
)

_REFERRING_PHYSICIANS = ("HOUSE^GREGORY", "CURIE^MARIE", "GREY^MEREDITH", "")


# ------------------------------------------------------ series and studies


class _SeriesKind(NamedTuple):
    """How to build one kind of series: modality, geometry, look and size."""

    modality: str
    description: str
    body_part: str
    phantom: str  # key into _PHANTOMS
    plane: str  # axial, sagittal or projection
    size: tuple[int, int]  # rows, columns
    pixel_spacing: float
    slice_spacing: float | None
    windows: tuple[tuple[float, float, str], ...]  # centre, width, explanation
    intensities: str  # key into _INTENSITIES
    noise: float
    counts: tuple[int, int]  # fewest and most instances


_SERIES_KINDS = {
    "ct_head": _SeriesKind(
        "CT", "HEAD 5mm AXIAL", "HEAD", "head_axial", "axial", (128, 128),
        1.875, 5.0, ((40, 80, "BRAIN"),), "ct", 6.0, (3, 10)),
    "ct_head_bone": _SeriesKind(
        "CT", "HEAD BONE 2.5mm", "HEAD", "head_axial", "axial", (128, 128),
        1.875, 2.5, ((600, 2800, "BONE"),), "ct", 6.0, (3, 6)),
    "ct_chest": _SeriesKind(
        "CT", "CHEST 2.5mm AXIAL", "CHEST", "chest_axial", "axial", (128, 128),
        2.8125, 2.5, ((40, 400, "MEDIASTINUM"), (-600, 1500, "LUNG")), "ct",
        8.0, (5, 14)),
    "mr_t1_axial": _SeriesKind(
        "MR", "T1 AXIAL", "HEAD", "head_axial", "axial", (128, 128),
        1.796875, 5.0, ((900, 1800, "T1"),), "mr_t1", 25.0, (3, 10)),
    "mr_t2_axial": _SeriesKind(
        "MR", "T2 AXIAL", "HEAD", "head_axial", "axial", (128, 128),
        1.796875, 5.0, ((1200, 2600, "T2"),), "mr_t2", 25.0, (3, 10)),
    "mr_t1_sagittal": _SeriesKind(
        "MR", "T1 SAGITTAL", "HEAD", "head_sagittal", "sagittal", (128, 128),
        1.796875, 4.0, ((900, 1800, "T1"),), "mr_t1", 25.0, (3, 6)),
    "cr_chest_pa": _SeriesKind(
        "CR", "CHEST PA", "CHEST", "chest_pa", "projection", (256, 208),
        1.6, None, ((2000, 3800, "CHEST"),), "cr", 40.0, (1, 1)),
    "cr_chest_lateral": _SeriesKind(
        "CR", "CHEST LATERAL", "CHEST", "chest_lateral", "projection",
        (256, 208), 1.6, None, ((2000, 3800, "CHEST"),), "cr", 40.0, (1, 1)),
}

# study kind -> (description, series always present, series sometimes added)
_STUDY_KINDS = {
    "ct_head": ("CT HEAD WITHOUT CONTRAST", ("ct_head",), ("ct_head_bone",)),
    "ct_chest": ("CT CHEST WITH CONTRAST", ("ct_chest",), ()),
    "mr_brain": ("MR BRAIN", ("mr_t1_axial",), ("mr_t2_axial", "mr_t1_sagittal")),
    "cr_chest": ("CHEST 2 VIEWS", ("cr_chest_pa",), ("cr_chest_lateral",)),
    "trauma": ("TRAUMA SERIES", ("cr_chest_pa", "ct_head"), ()),
}


def _uid(*parts: object) -> str:
    """Return a 2.25 UID made from a name-based UUID of the given parts."""
    # Not generate_uid(prefix=None, ...): pydicom ignores the entropy then
    # and returns a random UUID, which would break determinism.
    name = "/".join(str(part) for part in parts)
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def sample_plan(seed: int = 0) -> SamplePlan:
    """Build the plan of the default sample set for a seed."""
    # Deal study kinds from a shuffled deck so every seed gets a fair mix.
    deck = sorted(_STUDY_KINDS) * 20
    random.Random(f"{seed}:study kinds").shuffle(deck)
    study_kinds = iter(deck)
    patients = tuple(_plan_patient(seed, entry, study_kinds) for entry in _ROSTER)
    return SamplePlan(seed=seed, patients=patients)


def _plan_patient(
    seed: int, entry: _RosterEntry, study_kinds: Iterator[str]
) -> PatientPlan:
    """Plan one roster patient's studies, spread over several years."""
    rng = random.Random(f"{seed}:{entry.patient_id}")
    study_count = rng.choice((1, 1, 1, 2, 2, 2, 3, 4))
    days = sorted(rng.sample(range(STUDY_DAYS_SPAN), study_count))
    studies = []
    for number, day in enumerate(days, start=1):
        quirks = entry.first_study if number == 1 else {}
        study_uid = _uid(seed, entry.patient_id, number)
        kind = quirks.get("kind") or next(study_kinds)
        studies.append(_plan_study(rng, study_uid, number, day, kind, quirks))
    return PatientPlan(
        patient_id=entry.patient_id,
        patient_name=entry.name,
        character_set=entry.character_set,
        birth_date=entry.birth_date,
        sex=entry.sex,
        studies=tuple(studies),
    )


def _plan_study(
    rng: random.Random, study_uid: str, number: int, day: int, kind: str,
    quirks: dict,
) -> StudyPlan:
    """Plan one study of a kind, letting the roster's quirks override the dice."""
    description, always, sometimes = _STUDY_KINDS[kind]
    series_kinds = list(always) + [k for k in sometimes if rng.random() < 0.5]
    photometric = "MONOCHROME1" if quirks.get("monochrome1") else "MONOCHROME2"
    series = tuple(
        _plan_series(rng, study_uid, series_number, series_kind, photometric)
        for series_number, series_kind in enumerate(series_kinds, start=1)
    )
    date = FIRST_STUDY_DAY + datetime.timedelta(days=day)
    time = f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"
    accession = f"A{rng.randrange(10**7):07d}"
    referring = rng.choice(_REFERRING_PHYSICIANS)
    return StudyPlan(
        study_uid=study_uid,
        study_number=number,
        study_date=date.strftime("%Y%m%d"),
        study_time=quirks.get("study_time", time),
        description=quirks.get("description", description),
        accession_number=quirks.get("accession_number", accession),
        referring_physician=quirks.get("referring_physician", referring),
        series=series,
    )


def _plan_series(
    rng: random.Random,
    study_uid: str,
    series_number: int,
    kind_name: str,
    photometric: str,
    count: int | None = None,
    size: int | None = None,
) -> SeriesPlan:
    """Plan one series of a given kind; count and size override the defaults."""
    kind = _SERIES_KINDS[kind_name]
    if count is None:
        count = rng.randint(*kind.counts)
    rows, columns = kind.size
    pixel_spacing = kind.pixel_spacing
    if size is not None:
        pixel_spacing = pixel_spacing * columns / size
        rows, columns = size, size
    series_uid = _uid(study_uid, series_number)
    return SeriesPlan(
        series_uid=series_uid,
        series_number=series_number,
        kind=kind_name,
        modality=kind.modality,
        description=kind.description,
        instance_uids=tuple(_uid(series_uid, n) for n in range(1, count + 1)),
        rows=rows,
        columns=columns,
        pixel_spacing=pixel_spacing,
        slice_spacing=kind.slice_spacing,
        photometric=photometric if kind.modality == "CR" else "MONOCHROME2",
    )


def large_ct_plan(
    slice_count: int = 200, seed: int = 0, size: int = 256, slice_spacing: float = 1.0
) -> SamplePlan:
    """Plan one patient with a single large axial chest CT for benchmarks."""
    study_uid = _uid(seed, "large-ct", slice_count, size, slice_spacing)
    series = _plan_series(
        random.Random(seed), study_uid, 1, "ct_chest", "MONOCHROME2",
        count=slice_count, size=size)
    series = dataclasses.replace(
        series, slice_spacing=float(slice_spacing),
        description=f"CHEST {slice_spacing:g}mm AXIAL")
    study = StudyPlan(
        study_uid=study_uid,
        study_number=1,
        study_date="20240115",
        study_time="101500",
        description=f"CT CHEST BENCHMARK {slice_count} SLICES",
        accession_number="BENCH0001",
        referring_physician="HOUSE^GREGORY",
        series=(series,),
    )
    patient = PatientPlan(
        patient_id="PLBENCH",
        patient_name="BENCHMARK^LARGE CT",
        character_set=(),
        birth_date="19800101",
        sex="O",
        studies=(study,),
    )
    return SamplePlan(seed=seed, patients=(patient,))


# ---------------------------------------------------------------- pixels


class _Blob(NamedTuple):
    """An ellipse of one tissue; it shrinks away from its slice centre z."""

    tissue: str
    x: float
    y: float
    radius_x: float
    radius_y: float
    angle: float  # degrees
    z: float = 0.0
    z_radius: float = 9.0  # large: the same on every slice


# Coordinates: x across the columns from -1 to 1, y down the rows (same
# scale). Later blobs paint over earlier ones. Axial images have the
# patient's front at the top; sagittal ones the face on the left.
_PHANTOMS = {
    "head_axial": (
        _Blob("skin", 0, 0, 0.74, 0.92, 0, 0, 1.0),
        _Blob("bone", 0, 0, 0.70, 0.88, 0, 0, 0.98),
        _Blob("brain", 0, 0.02, 0.63, 0.81, 0, 0.0, 0.93),
        _Blob("csf", -0.11, -0.05, 0.08, 0.27, 15, 0.15, 0.35),
        _Blob("csf", 0.11, -0.05, 0.08, 0.27, -15, 0.15, 0.35),
        _Blob("csf", 0, 0.12, 0.04, 0.07, 0, 0.0, 0.3),
        _Blob("lesion", 0.36, -0.32, 0.09, 0.09, 0, 0.35, 0.2),
        _Blob("eye", -0.28, -0.62, 0.12, 0.12, 0, -0.45, 0.22),
        _Blob("eye", 0.28, -0.62, 0.12, 0.12, 0, -0.45, 0.22),
    ),
    "head_sagittal": (
        _Blob("skin", 0, 0, 0.86, 0.92, 0, 0, 1.0),
        _Blob("bone", 0, 0, 0.82, 0.88, 0, 0, 0.98),
        _Blob("brain", 0.02, -0.08, 0.76, 0.68, 0, 0, 0.92),
        _Blob("brain", 0.38, 0.48, 0.30, 0.20, 0, 0, 0.6),
        _Blob("brain", 0.02, 0.55, 0.10, 0.36, -10, 0, 0.25),
        _Blob("csf", 0.02, -0.08, 0.34, 0.10, 5, 0, 0.35),
        _Blob("eye", -0.72, -0.05, 0.12, 0.12, 0, 0.45, 0.25),
        _Blob("eye", -0.72, -0.05, 0.12, 0.12, 0, -0.45, 0.25),
    ),
    "chest_axial": (
        _Blob("fat", 0, 0.05, 0.94, 0.64, 0),
        _Blob("muscle", 0, 0.05, 0.88, 0.58, 0),
        _Blob("lung", -0.43, 0.0, 0.32, 0.42, 8, 0.1, 1.0),
        _Blob("lung", 0.43, 0.0, 0.32, 0.42, -8, 0.1, 1.0),
        _Blob("blood", 0.10, -0.08, 0.27, 0.23, -20, -0.45, 0.6),
        _Blob("blood", 0.05, 0.22, 0.07, 0.07, 0, 0.3, 0.9),
        _Blob("bone", 0, 0.44, 0.09, 0.09, 0),
        _Blob("bone", 0, -0.50, 0.07, 0.03, 0),
        _Blob("lesion", -0.52, -0.12, 0.05, 0.05, 0, 0.45, 0.15),
    ),
    "chest_pa": (
        _Blob("skin", 0, 0.15, 0.92, 1.05, 0),
        _Blob("muscle", 0, 0.10, 0.84, 0.98, 0),
        _Blob("lung", -0.43, -0.10, 0.32, 0.66, 5),
        _Blob("lung", 0.41, -0.10, 0.32, 0.66, -5),
        _Blob("blood", 0.04, -0.10, 0.14, 0.70, 0),
        _Blob("blood", 0.16, 0.30, 0.32, 0.28, -20),
        _Blob("bone", 0, 0.1, 0.05, 1.1, 0),
        _Blob("bone", -0.36, -0.80, 0.36, 0.035, -10),
        _Blob("bone", 0.36, -0.80, 0.36, 0.035, 10),
        _Blob("lesion", -0.48, -0.30, 0.05, 0.05, 0),
    ),
    "chest_lateral": (
        _Blob("skin", 0, 0.15, 0.80, 1.05, 0),
        _Blob("muscle", 0, 0.10, 0.74, 0.98, 0),
        _Blob("lung", 0.0, -0.08, 0.60, 0.70, 0),
        _Blob("blood", 0.30, 0.30, 0.30, 0.28, -30),
        _Blob("bone", -0.62, 0.1, 0.07, 1.0, 0),
        _Blob("bone", 0.68, -0.05, 0.03, 0.55, 0),
    ),
}

# Tissue values: Hounsfield units for CT, stored values for MR and CR.
_INTENSITIES = {
    "ct": {"air": -1000, "fat": -100, "skin": 30, "muscle": 45, "bone": 1100,
           "brain": 35, "csf": 5, "blood": 50, "lung": -840, "lesion": 75,
           "eye": 15},
    "mr_t1": {"air": 0, "fat": 1800, "skin": 1200, "muscle": 900, "bone": 250,
              "brain": 1100, "csf": 300, "blood": 600, "lung": 50,
              "lesion": 650, "eye": 400},
    "mr_t2": {"air": 0, "fat": 1300, "skin": 900, "muscle": 500, "bone": 150,
              "brain": 800, "csf": 2600, "blood": 400, "lung": 50,
              "lesion": 1900, "eye": 2400},
    "cr": {"air": 150, "fat": 1900, "skin": 2000, "muscle": 2300, "bone": 3500,
           "brain": 2300, "csf": 2300, "blood": 2800, "lung": 800,
           "lesion": 2500, "eye": 2300},
}


def _slice_position(index: int, count: int) -> float:
    """Return where a slice sits in the phantom, from 0.85 down to -0.85."""
    if count == 1:
        return 0.0
    return 0.85 * (1 - 2 * index / (count - 1))


def _phantom_image(
    phantom: str, tissues: dict, rows: int, columns: int, z: float
) -> np.ndarray:
    """Paint the phantom's ellipses at slice position z into a float image."""
    # Pixel centres; both axes use the column scale so circles stay round.
    x = ((np.arange(columns) + 0.5) * 2 / columns - 1)[np.newaxis, :]
    y = ((np.arange(rows) + 0.5) * 2 / columns - rows / columns)[:, np.newaxis]
    image = np.full((rows, columns), float(tissues["air"]))
    for blob in _PHANTOMS[phantom]:
        distance = (z - blob.z) / blob.z_radius
        if abs(distance) >= 1:
            continue
        shrink = math.sqrt(1 - distance * distance)
        angle = math.radians(blob.angle)
        dx, dy = x - blob.x, y - blob.y
        along = dx * math.cos(angle) + dy * math.sin(angle)
        across = -dx * math.sin(angle) + dy * math.cos(angle)
        inside = (along / (blob.radius_x * shrink)) ** 2 + (
            across / (blob.radius_y * shrink)
        ) ** 2 <= 1
        image[inside] = tissues[blob.tissue]
    return image


def _stored_pixels(
    kind: _SeriesKind, series: SeriesPlan, index: int, noise: np.random.Generator
) -> np.ndarray:
    """Return one instance's stored pixel values, noise included."""
    z = _slice_position(index, series.instance_count)
    image = _phantom_image(
        kind.phantom, _INTENSITIES[kind.intensities], series.rows, series.columns, z)
    image += noise.normal(0.0, kind.noise, image.shape)
    if kind.modality == "CT":
        # Stored value = HU + 1024, as RescaleIntercept -1024 undoes.
        return np.clip(np.rint(image) + 1024, 0, 4095).astype("<i2")
    stored = np.clip(np.rint(image), 0, 4095)
    if series.photometric == "MONOCHROME1":
        stored = 4095 - stored  # so that it still displays dark lungs
    return stored.astype("<u2")


# -------------------------------------------------------------- datasets


def _ds(value: float) -> str:
    """Format a number as a short DS string."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _slice_geometry(kind: _SeriesKind, series: SeriesPlan, index: int):
    """Return the orientation and top-left position of one slice."""
    spacing = series.slice_spacing
    offset = ((series.instance_count - 1) / 2 - index) * spacing
    corner = series.pixel_spacing * (series.columns - 1) / 2
    if kind.plane == "sagittal":
        orientation = (0, 1, 0, 0, 0, -1)
        position = (offset, -corner, corner)
    else:
        orientation = (1, 0, 0, 0, 1, 0)
        position = (-corner, -corner, offset)
    return orientation, position


def _instance_dataset(
    patient: PatientPlan,
    study: StudyPlan,
    series: SeriesPlan,
    index: int,
    pixels: np.ndarray,
) -> Dataset:
    """Build the dataset of one instance, file meta included."""
    kind = _SERIES_KINDS[series.kind]
    sop_uid = series.instance_uids[index]
    ds = Dataset()
    if patient.character_set:
        charset = patient.character_set
        ds.SpecificCharacterSet = charset[0] if len(charset) == 1 else list(charset)
    ds.SOPClassUID = series.sop_class_uid
    ds.SOPInstanceUID = sop_uid

    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    if patient.birth_date is not None:
        ds.PatientBirthDate = patient.birth_date
    if patient.sex is not None:
        ds.PatientSex = patient.sex

    ds.StudyInstanceUID = study.study_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.StudyID = str(study.study_number)
    if study.description is not None:
        ds.StudyDescription = study.description
    if study.accession_number is not None:
        ds.AccessionNumber = study.accession_number
    if study.referring_physician is not None:
        ds.ReferringPhysicianName = study.referring_physician

    ds.Modality = series.modality
    ds.SeriesInstanceUID = series.series_uid
    ds.SeriesNumber = series.series_number
    ds.SeriesDescription = series.description
    ds.BodyPartExamined = kind.body_part
    ds.Manufacturer = "PACS_LITE SAMPLE DATA"
    ds.InstanceNumber = index + 1
    ds.ContentDate = study.study_date
    ds.ContentTime = study.study_time

    spacing = _ds(series.pixel_spacing)
    ds.PixelSpacing = [spacing, spacing]
    if kind.plane == "projection":
        ds.ImagerPixelSpacing = [spacing, spacing]
        ds.PatientOrientation = ["L", "F"] if kind.phantom == "chest_pa" else ["A", "F"]
        ds.ViewPosition = "PA" if kind.phantom == "chest_pa" else "LL"
        ds.KVP = "110"
    else:
        orientation, position = _slice_geometry(kind, series, index)
        ds.PatientPosition = "HFS"
        ds.FrameOfReferenceUID = _uid(study.study_uid, "frame")
        ds.PositionReferenceIndicator = ""
        ds.ImageOrientationPatient = [_ds(v) for v in orientation]
        ds.ImagePositionPatient = [_ds(v) for v in position]
        ds.SliceThickness = _ds(series.slice_spacing)
        ds.SpacingBetweenSlices = _ds(series.slice_spacing)
        ds.SliceLocation = _ds(position[2] if kind.plane == "axial" else position[0])
        ds.AcquisitionNumber = 1
    if series.modality == "CT":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.KVP = "120"
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
    if series.modality == "MR":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = "500" if kind.intensities == "mr_t1" else "4000"
        ds.EchoTime = "15" if kind.intensities == "mr_t1" else "100"
        ds.EchoTrainLength = 1 if kind.intensities == "mr_t1" else 16
        ds.MagneticFieldStrength = "1.5"

    centres, widths, explanations = zip(*kind.windows)
    if series.photometric == "MONOCHROME1":
        centres = tuple(4095 - centre for centre in centres)
    ds.WindowCenter = [_ds(c) for c in centres]
    ds.WindowWidth = [_ds(w) for w in widths]
    ds.WindowCenterWidthExplanation = list(explanations)

    signed = pixels.dtype.kind == "i"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = series.photometric
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16 if signed else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = pixels.tobytes()

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = series.sop_class_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _part10_bytes(ds: Dataset) -> bytes:
    """Encode a dataset as a DICOM Part-10 file (preamble, DICM, file meta)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


# ----------------------------------------------------------------- files


def generate_study_files(
    patient: PatientPlan, study: StudyPlan
) -> Iterator[tuple[str, bytes]]:
    """Yield (relative path, Part-10 bytes) for every instance of one study."""
    for series in study.series:
        kind = _SERIES_KINDS[series.kind]
        # The noise depends only on the series UID, itself derived from the seed.
        noise = np.random.default_rng(int(series.series_uid.rsplit(".", 1)[1]))
        for index in range(series.instance_count):
            pixels = _stored_pixels(kind, series, index, noise)
            ds = _instance_dataset(patient, study, series, index, pixels)
            path = (f"{patient.patient_id}/{study.study_number:02d}/"
                    f"{series.series_number:02d}/{index + 1:04d}.dcm")
            yield path, _part10_bytes(ds)


def iter_sample_files(
    seed: int = 0, plan: SamplePlan | None = None
) -> Iterator[tuple[str, bytes]]:
    """Yield (relative path, bytes) for each instance of a plan, or the seed's."""
    if plan is None:
        plan = sample_plan(seed)
    for patient in plan.patients:
        for study in patient.studies:
            yield from generate_study_files(patient, study)


def make_ct_series(
    slice_count: int = 200, seed: int = 0, size: int = 256, slice_spacing: float = 1.0
) -> list[tuple[str, bytes]]:
    """Return the files of one large axial CT series (see large_ct_plan)."""
    plan = large_ct_plan(slice_count, seed=seed, size=size, slice_spacing=slice_spacing)
    return list(iter_sample_files(plan=plan))


def write_sample_files(
    directory: str | Path, seed: int = 0, plan: SamplePlan | None = None
) -> tuple[int, int]:
    """Write a plan's files under a folder and return (file count, byte count)."""
    directory = Path(directory)
    file_count = byte_count = 0
    for relative_path, data in iter_sample_files(seed, plan):
        path = directory / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        file_count += 1
        byte_count += len(data)
    return file_count, byte_count


# ---------------------------------------------------------------- upload


class UploadError(RuntimeError):
    """Orthanc refused a sample file or could not be reached."""


def upload_files(files: Iterable[tuple[str, bytes]], orthanc, threads: int = 4) -> dict[str, int]:
    """Send each (path, bytes) to Orthanc through an OrthancClient and count the outcomes.

    :returns: ``{"stored": n, "already_stored": m}``
    :raises UploadError: when Orthanc refuses a file or cannot be reached.
    """

    def upload(item: tuple[str, bytes]) -> str:
        """Send one file and return Orthanc's status word."""
        path, data = item
        try:
            return orthanc.upload(data).get("Status", "")
        except OrthancError as error:
            raise UploadError(f"{path}: {error}") from error

    counts = {"stored": 0, "already_stored": 0}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        try:
            for status in pool.map(upload, files):
                if status == "Success":
                    counts["stored"] += 1
                elif status == "AlreadyStored":
                    counts["already_stored"] += 1
                else:
                    raise UploadError(f"Orthanc did not store a file: status {status!r}")
        except BaseException:
            # Fail fast: without this, every queued file would still be tried.
            pool.shutdown(cancel_futures=True)
            raise
    return counts


# ------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    """Write the sample studies into a folder and say how much was written."""
    parser = argparse.ArgumentParser(
        prog="python -m pacs_lite.sample_data",
        description="Write deterministic sample DICOM studies into a folder.")
    parser.add_argument("--out", required=True, type=Path, help="target folder")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    args = parser.parse_args(argv)
    try:
        file_count, byte_count = write_sample_files(args.out, seed=args.seed)
    except OSError as error:
        print(f"error: cannot write the sample files: {error}", file=sys.stderr)
        return 1
    print(f"wrote {file_count} DICOM files ({byte_count / 1e6:.1f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
