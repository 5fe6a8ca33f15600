"""Tests for the sample DICOM generator: determinism, validity, plan and quirks."""

import io
from collections import Counter, defaultdict

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, UID

from pacs_lite import sample_data
from pacs_lite.sample_data import (
    LONG_STUDY_DESCRIPTION,
    iter_sample_files,
    large_ct_plan,
    make_ct_series,
    sample_plan,
    write_sample_files,
)


@pytest.fixture(scope="module")
def plan():
    """Return the default plan for seed 0."""
    return sample_plan(seed=0)


@pytest.fixture(scope="module")
def files():
    """Return the default files for seed 0 as (path, bytes) pairs."""
    return list(iter_sample_files(seed=0))


@pytest.fixture(scope="module")
def datasets(files):
    """Return every default file read back by pydicom, keyed by path."""
    return {path: pydicom.dcmread(io.BytesIO(data)) for path, data in files}


@pytest.fixture(scope="module")
def patients_by_id(plan):
    """Return the planned patients keyed by PatientID."""
    return {patient.patient_id: patient for patient in plan.patients}


def instances_by_series(datasets):
    """Group datasets by SeriesInstanceUID, each list in InstanceNumber order."""
    series = defaultdict(list)
    for ds in datasets.values():
        series[ds.SeriesInstanceUID].append(ds)
    for instances in series.values():
        instances.sort(key=lambda ds: ds.InstanceNumber)
    return series


def slice_offsets(instances):
    """Return each slice's position along the normal of its orientation."""
    orientation = np.array(instances[0].ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    return [float(np.dot(normal, ds.ImagePositionPatient)) for ds in instances]


def test_same_seed_gives_byte_identical_files(plan, files):
    """Generate the default set twice and compare every byte."""
    assert sample_plan(seed=0) == plan
    assert list(iter_sample_files(seed=0)) == files


def test_other_seed_gives_other_files(files):
    """Check a different seed changes UIDs and bytes."""
    other = dict(iter_sample_files(seed=1))
    assert set(other.values()).isdisjoint(data for _, data in files)
    first_uids = {study.study_uid for study in sample_plan(0).studies}
    other_uids = {study.study_uid for study in sample_plan(1).studies}
    assert first_uids.isdisjoint(other_uids)


def test_default_set_size_and_shape(plan, files):
    """Keep the default set small and shaped as the docs promise."""
    total_bytes = sum(len(data) for _, data in files)
    assert total_bytes < 15_000_000
    assert 12 <= len(plan.patients) <= 20
    assert len(files) == plan.instance_count
    assert len({path for path, _ in files}) == len(files)
    for patient in plan.patients:
        assert 1 <= len(patient.studies) <= 4
        for study in patient.studies:
            assert 1 <= len(study.series) <= 3
            for series in study.series:
                assert 1 <= series.instance_count <= 20
    years = {study.study_date[:4] for study in plan.studies}
    assert len(years) >= 4


def test_files_are_part10_explicit_little_endian(files, datasets):
    """Check preamble, DICM prefix, file meta and transfer syntax."""
    for path, data in files:
        assert data[:128] == bytes(128)
        assert data[128:132] == b"DICM"
        ds = datasets[path]
        meta = ds.file_meta
        assert meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_every_value_reads_back_without_complaint(datasets):
    """Decode every element of every file; pytest turns any warning into an error."""
    for ds in datasets.values():
        for element in ds.iterall():
            element.value  # noqa: B018 - decoding is the check
        ds.pixel_array  # noqa: B018


def test_sop_class_matches_modality(datasets):
    """Check CT, MR and CR files carry their storage SOP classes."""
    expected = {
        "CT": "1.2.840.10008.5.1.4.1.1.2",
        "MR": "1.2.840.10008.5.1.4.1.1.4",
        "CR": "1.2.840.10008.5.1.4.1.1.1",
    }
    modalities = Counter()
    for ds in datasets.values():
        assert ds.SOPClassUID == expected[ds.Modality]
        modalities[ds.Modality] += 1
    assert set(modalities) == {"CT", "MR", "CR"}


def test_uids_are_valid_and_unique(plan, datasets):
    """Check every UID is well formed and instance UIDs never repeat."""
    sop_uids = [ds.SOPInstanceUID for ds in datasets.values()]
    assert len(set(sop_uids)) == len(sop_uids)
    series_uids = [s.series_uid for study in plan.studies for s in study.series]
    study_uids = [study.study_uid for study in plan.studies]
    assert len(set(series_uids)) == len(series_uids)
    assert len(set(study_uids)) == len(study_uids)
    for uid in sop_uids + series_uids + study_uids:
        assert UID(uid).is_valid


def test_plan_matches_files(plan, datasets):
    """Check counts, identities and study fields in the files agree with the plan."""
    by_study = defaultdict(list)
    for ds in datasets.values():
        by_study[ds.StudyInstanceUID].append(ds)
    assert set(by_study) == {study.study_uid for study in plan.studies}
    for patient in plan.patients:
        for study in patient.studies:
            instances = by_study[study.study_uid]
            assert len(instances) == study.instance_count
            per_series = Counter(ds.SeriesInstanceUID for ds in instances)
            assert per_series == {s.series_uid: s.instance_count for s in study.series}
            assert {ds.Modality for ds in instances} == set(study.modalities)
            for ds in instances:
                assert ds.PatientID == patient.patient_id
                assert str(ds.PatientName) == patient.patient_name
                assert ds.StudyDate == study.study_date
                assert ds.StudyTime == study.study_time
                assert ds.get("StudyDescription") == study.description
                assert ds.get("AccessionNumber") == study.accession_number
                referring = ds.get("ReferringPhysicianName")
                expected = study.referring_physician
                assert (None if referring is None else str(referring)) == expected
                assert ds.get("PatientBirthDate") == patient.birth_date
                assert ds.get("PatientSex") == patient.sex


def test_names_decode_in_every_character_set(patients_by_id, files, datasets):
    """Check Latin-1, UTF-8 and ISO 2022 Japanese names round-trip exactly."""
    first_file = {}
    for path, data in files:
        first_file.setdefault(path.split("/")[0], (path, data))

    expected = {
        "PL0003": ("ISO_IR 100", "MÜLLER^JÜRGEN", "MÜLLER^JÜRGEN".encode("latin-1")),
        "PL0004": ("ISO_IR 100", "Gómez^Inés", "Gómez^Inés".encode("latin-1")),
        "PL0005": ("ISO_IR 192", "Ødegård^Åse", "Ødegård^Åse".encode("utf-8")),
        "PL0006": ("ISO_IR 192", "Παπαδόπουλος^Γιώργος",
                   "Παπαδόπουλος^Γιώργος".encode("utf-8")),
        "PL0007": ("ISO_IR 192", "Иванова^Мария", "Иванова^Мария".encode("utf-8")),
    }
    for patient_id, (charset, name, raw) in expected.items():
        path, data = first_file[patient_id]
        ds = datasets[path]
        assert ds.SpecificCharacterSet == charset
        assert str(ds.PatientName) == name == patients_by_id[patient_id].patient_name
        assert raw in data

    path, data = first_file["PL0008"]
    ds = datasets[path]
    assert ds.SpecificCharacterSet == ["", "ISO 2022 IR 87"]
    assert str(ds.PatientName) == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert ds.PatientName.family_name == "Yamada"
    assert ds.PatientName.ideographic == "山田^太郎"
    assert ds.PatientName.phonetic == "やまだ^たろう"
    # PS3.5 H.3.1: each group switches to JIS X 0208 and back to ASCII.
    assert bytes.fromhex(
        "59616d6164615e5461726f753d"
        "1b24423b3345441b28425e1b244242404f3a1b28423d"
        "1b24422464245e24401b28425e1b2442243f246d24261b2842"
    ) in data


def test_awkward_values_are_present(plan, datasets):
    """Check the empty, quoted, wildcard and HTML values reach the files."""
    names = {str(ds.PatientName) for ds in datasets.values()}
    assert "" in names
    assert "O'BRIEN^SEAN" in names
    assert "<script>alert(1)</script>" in names
    assert any("%" in name for name in names)
    assert any("_" in name for name in names)
    assert any("*" in name for name in names)
    assert "van der Berg^Anna^Maria^Dr.^PhD" in names

    descriptions = {ds.get("StudyDescription") for ds in datasets.values()}
    assert LONG_STUDY_DESCRIPTION in descriptions
    assert len(LONG_STUDY_DESCRIPTION) == 64
    assert None in descriptions

    referring = {study.referring_physician for study in plan.studies}
    assert {"HOUSE^GREGORY", "house^gregory^^", "House Gregory",
            "SCHRÖDINGER^ERWIN", "Schrodinger^Erwin", "", None} <= referring
    assert "CURIE^MARIE" in referring

    accessions = {study.accession_number for study in plan.studies}
    assert None in accessions and "" in accessions
    assert any(ds.get("PatientBirthDate") is None for ds in datasets.values())
    assert any(ds.get("PatientBirthDate") == "" for ds in datasets.values())
    assert any("PatientSex" not in ds for ds in datasets.values())
    assert any("." in study.study_time for study in plan.studies)
    photometrics = {ds.PhotometricInterpretation for ds in datasets.values()}
    assert photometrics == {"MONOCHROME1", "MONOCHROME2"}


def test_pixels_look_like_images(datasets):
    """Check pixels vary within an image and between neighbouring slices."""
    for ds in datasets.values():
        pixels = ds.pixel_array
        assert pixels.shape == (ds.Rows, ds.Columns)
        assert pixels.std() > 100
        assert ds.BitsAllocated == 16
        assert ds.PixelRepresentation == (1 if ds.Modality == "CT" else 0)
    for instances in instances_by_series(datasets).values():
        images = [ds.pixel_array for ds in instances]
        for before, after in zip(images, images[1:]):
            assert np.abs(before.astype(int) - after).mean() > 5


def test_ct_pixels_are_hounsfield_units(datasets):
    """Check CT corners are air (about -1000 HU) after the rescale."""
    for ds in datasets.values():
        if ds.Modality != "CT":
            continue
        assert (ds.RescaleIntercept, ds.RescaleSlope) == (-1024, 1)
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        hounsfield = ds.pixel_array * slope + intercept
        assert abs(hounsfield[:8, :8].mean() + 1000) < 10
        assert hounsfield.max() > 500  # some bone


def test_slices_step_by_the_slice_spacing(datasets):
    """Check ImagePositionPatient moves one spacing along the normal per slice."""
    checked = 0
    for instances in instances_by_series(datasets).values():
        if instances[0].Modality == "CR" or len(instances) < 2:
            continue
        spacing = float(instances[0].SpacingBetweenSlices)
        steps = np.diff(slice_offsets(instances))
        assert steps == pytest.approx(np.full(len(steps), steps[0]))
        assert abs(steps[0]) == pytest.approx(spacing)
        checked += 1
    assert checked > 10


def test_large_ct_series_has_the_requested_slices():
    """Build a large CT and check count, order and spacing."""
    files = make_ct_series(slice_count=40, size=64, slice_spacing=1.25)
    assert len(files) == 40
    instances = [pydicom.dcmread(io.BytesIO(data)) for _, data in files]
    assert {ds.SeriesInstanceUID for ds in instances} == {
        large_ct_plan(40, size=64, slice_spacing=1.25).studies[0].series[0].series_uid}
    assert [ds.InstanceNumber for ds in instances] == list(range(1, 41))
    assert all(ds.Rows == ds.Columns == 64 for ds in instances)
    steps = np.diff(slice_offsets(instances))
    assert np.allclose(np.abs(steps), 1.25)
    assert large_ct_plan().instance_count == 200
    assert make_ct_series(slice_count=40, size=64, slice_spacing=1.25) == files


def test_write_sample_files_and_command_line(tmp_path, files, capsys):
    """Write the set to disk, directly and through main, and compare bytes."""
    file_count, byte_count = write_sample_files(tmp_path / "direct", seed=0)
    assert file_count == len(files)
    assert byte_count == sum(len(data) for _, data in files)
    path, data = files[0]
    assert (tmp_path / "direct" / path).read_bytes() == data

    assert sample_data.main(["--out", str(tmp_path / "cli"), "--seed", "0"]) == 0
    assert f"wrote {len(files)} DICOM files" in capsys.readouterr().out
    assert (tmp_path / "cli" / files[-1][0]).read_bytes() == files[-1][1]


def test_command_line_reports_unwritable_folder(tmp_path, capsys):
    """Give one clear error line, not a traceback, when the folder is a file."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert sample_data.main(["--out", str(blocker)]) == 1
    assert capsys.readouterr().err.startswith("error: cannot write the sample files")
