"""The cache sync against a real Orthanc, on SQLite and MariaDB."""

import calendar
import datetime
import os
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from pacs_lite import cache, sync
from pacs_lite.db import connect, exclusive_lock
from pacs_lite.names import display_name
from pacs_lite.sample_data import generate_study_files, upload_files
from tests.conftest import made_up_study, point_at


@pytest.fixture
def sample_client(app, sample_orthanc):
    """An Orthanc client of the shared sample Orthanc, the app pointed at it."""
    client = point_at(app, sample_orthanc)
    yield client
    client.close()


@pytest.fixture
def empty_client(app, empty_orthanc):
    """An Orthanc client of this test's own empty Orthanc, the app pointed at it."""
    client = point_at(app, empty_orthanc)
    yield client
    client.close()


def upload_study(client, plan, patient_index, study_index):
    """Upload one planned study; return (patient plan, study plan)."""
    patient = plan.patients[patient_index]
    study = patient.studies[study_index]
    upload_files(generate_study_files(patient, study), client)
    return patient, study


def run_sync(app, client, **kwargs):
    """Run one pass on the app's database."""
    return sync.sync_once(connect(app.config["DATABASE_URL"]), client, app.config["DATABASE_URL"], **kwargs)


def cached_study(db, study_uid):
    """Return the cached row of a study, or None."""
    return db.query_one("SELECT * FROM cached_studies WHERE study_uid = ?", (study_uid,))


def assert_patients_match_their_studies(db):
    """Check every patient row's derived counts against the cached studies."""
    for patient in db.query("SELECT * FROM cached_patients"):
        studies = db.query("SELECT * FROM cached_studies WHERE patient_orthanc_id = ?", (patient["orthanc_id"],))
        assert patient["study_count"] == len(studies) > 0
        assert patient["last_study_date"] == max(s["study_date"] for s in studies)
        assert patient["last_arrival_at"] == max(s["first_seen_at"] for s in studies)
    orphans = db.query_value(
        "SELECT COUNT(*) FROM cached_studies s LEFT JOIN cached_patients p ON p.orthanc_id = s.patient_orthanc_id "
        "WHERE p.orthanc_id IS NULL"
    )
    assert orphans == 0
    assert kept_prefix_counts(db) == counted_prefix_counts(db)
    assert kept_prefix_modality_counts(db) == counted_prefix_modality_counts(db)
    assert_words_carry_their_patient(db)
    assert_name_prefixes_carry_their_patient(db)
    assert_patient_counts_match_the_patients(db)
    assert_referrals_match_their_studies(db)


def assert_words_carry_their_patient(db):
    """Check cached_patient_words: each word of each patient's name_key, carrying that name_key and the patient's
    last study date and modalities."""
    expected = {(word[:64], patient["orthanc_id"], patient["name_key"], patient["last_study_date"],
                 patient["modalities"])
                for patient in db.query("SELECT orthanc_id, name_key, last_study_date, modalities FROM cached_patients")
                for word in patient["name_key"].split()}
    kept = {(row["word"], row["patient_orthanc_id"], row["name_key"], row["last_study_date"], row["modalities"])
            for row in db.query("SELECT * FROM cached_patient_words")}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_patient_words") == len(expected)


def assert_name_prefixes_carry_their_patient(db):
    """Check cached_name_prefix_patients: a row per patient and prefix of the kept lengths of their name words,
    carrying the patient's last study date and modalities."""
    expected = {(word[:length], patient["orthanc_id"], patient["last_study_date"], patient["modalities"])
                for patient in db.query("SELECT orthanc_id, name_key, last_study_date, modalities FROM cached_patients")
                for word in patient["name_key"].split() for length in cache.PREFIX_LENGTHS}
    kept = {(row["prefix"], row["orthanc_id"], row["last_study_date"], row["modalities"])
            for row in db.query("SELECT * FROM cached_name_prefix_patients")}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_name_prefix_patients") == len(expected)


def assert_patient_counts_match_the_patients(db):
    """Check cached_patient_modalities (a row per patient and modality, with the patient's last study date),
    cached_modality_counts, cached_modality_dates, cached_last_study_dates and sync_state.newest_study_date
    against the cached patients and studies."""
    expected, counts = set(), {}
    for patient in db.query("SELECT orthanc_id, modalities, last_study_date FROM cached_patients"):
        for modality in filter(None, patient["modalities"].split(",")):
            expected.add((modality, patient["last_study_date"], patient["orthanc_id"]))
            counts[modality] = counts.get(modality, 0) + 1
    kept = {(row["modality"], row["last_study_date"], row["orthanc_id"])
            for row in db.query("SELECT * FROM cached_patient_modalities")}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_patient_modalities") == len(expected)
    assert kept_modality_counts(db) == counts
    assert_study_dates_match_the_studies(db)
    dates = db.query("SELECT last_study_date, COUNT(*) AS n FROM cached_patients GROUP BY last_study_date")
    assert kept_last_study_date_counts(db) == {row["last_study_date"]: row["n"] for row in dates}
    newest = db.query_value("SELECT MAX(last_study_date) FROM cached_patients") or ""
    assert db.query_value("SELECT newest_study_date FROM sync_state") == newest


def assert_study_dates_match_the_studies(db):
    """Check cached_patient_dates and cached_modality_dates: a row per date of a patient's studies (of each
    modality), with the latest of their other dates before it ('' for none), and the patient's last study date,
    name_key and patient_id_key; and cached_name_prefix_dates: each known date's row under each name prefix."""
    studies = db.query("SELECT * FROM cached_studies")
    dates, modality_dates = {}, {}
    for study in studies:
        dates.setdefault(study["patient_orthanc_id"], set()).add(study["study_date"])
        for modality in filter(None, study["modalities"].split(",")):
            modality_dates.setdefault((modality, study["patient_orthanc_id"]), set()).add(study["study_date"])
    patients = {row["orthanc_id"]: (row["last_study_date"], row["name_key"], row["patient_id_key"])
                for row in db.query("SELECT * FROM cached_patients")}
    carried = ("patient_last_study_date", "name_key", "patient_id_key")
    expected = {(date, patient_id, max((d for d in own if d < date), default=""), *patients[patient_id])
                for patient_id, own in dates.items() for date in own}
    kept = {(row["study_date"], row["patient_orthanc_id"], row["previous_date"], *(row[c] for c in carried))
            for row in db.query("SELECT * FROM cached_patient_dates")}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_patient_dates") == len(expected)
    # cached_name_prefix_dates: each known date row under each name prefix of its patient.
    expected = {(word[:length], date, patient_id, previous, last_date)
                for date, patient_id, previous, last_date, name_key, _ in expected if date
                for word in name_key.split() for length in cache.PREFIX_LENGTHS}
    kept = {(row["prefix"], row["study_date"], row["patient_orthanc_id"], row["previous_date"],
             row["patient_last_study_date"]) for row in db.query("SELECT * FROM cached_name_prefix_dates")}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_name_prefix_dates") == len(expected)
    expected = {(modality, date, patient_id, max((d for d in own if d < date), default=""), *patients[patient_id])
                for (modality, patient_id), own in modality_dates.items() for date in own}
    kept = {(row["modality"], row["study_date"], row["patient_orthanc_id"], row["previous_date"],
             *(row[c] for c in carried)) for row in db.query("SELECT * FROM cached_modality_dates")}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_modality_dates") == len(expected)
    assert_period_counts_match_the_studies(db, studies)


def whole_periods(date):
    """Return the year and the month whose whole range holds a date, compared as text as the worklist does (none
    for '', no month for an impossible date)."""
    if not date:
        return []
    found = [date[:4]] if f"{date[:4]}-01-01" <= date <= f"{date[:4]}-12-31" else []
    month = int(date[5:7])
    if 1 <= month <= 12 and f"{date[:7]}-01" <= date <= f"{date[:7]}-{calendar.monthrange(int(date[:4]), month)[1]}":
        found.append(date[:7])
    return found


def assert_period_counts_match_the_studies(db, studies):
    """Check cached_period_counts: how many patients had a study in each year and month (modality ''), and a
    study of each modality in each, by the year or month of that modality in which they had one before; and
    cached_period_patients: those patients, with their last study date."""
    patients = {}
    for study in studies:
        for modality in ["", *filter(None, study["modalities"].split(","))]:
            for period in whole_periods(study["study_date"]):
                patients.setdefault((modality, period), set()).add(study["patient_orthanc_id"])
    steps = Counter()
    for (modality, period), own in patients.items():
        for patient in own:
            before = [p for (m, p), had in patients.items()
                      if m == modality and len(p) == len(period) and p < period and patient in had]
            steps[(modality, "year" if len(period) == 4 else "month", period, max(before, default=""))] += 1
    rows = db.query("SELECT * FROM cached_period_counts WHERE patient_count <> 0")
    assert {(row["modality"], row["span"], row["period"], row["previous_period"]): row["patient_count"]
            for row in rows} == steps
    last_dates = {p["orthanc_id"]: p["last_study_date"]
                  for p in db.query("SELECT orthanc_id, last_study_date FROM cached_patients")}
    expected = {(modality, period, last_dates[patient], patient)
                for (modality, period), own in patients.items() for patient in own}
    kept = {(row["modality"], row["period"], row["last_study_date"], row["orthanc_id"])
            for row in db.query("SELECT * FROM cached_period_patients")}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_period_patients") == len(expected)


def kept_last_study_date_counts(db):
    """Return cached_last_study_dates as {date: patients}, leaving out dates no patient has any more."""
    rows = db.query("SELECT last_study_date, patient_count FROM cached_last_study_dates WHERE patient_count <> 0")
    return {row["last_study_date"]: row["patient_count"] for row in rows}


def kept_modality_counts(db):
    """Return cached_modality_counts as {modality: patients}, leaving out modalities no patient has any more."""
    rows = db.query("SELECT modality, patient_count FROM cached_modality_counts WHERE patient_count <> 0")
    return {row["modality"]: row["patient_count"] for row in rows}


def assert_referrals_match_their_studies(db):
    """Check cached_referrals: one row per referring physician and patient, derived from that physician's studies."""
    expected = {}
    for study in db.query("SELECT * FROM cached_studies WHERE referring_physician_key <> ''"):
        row = expected.setdefault((study["referring_physician_key"], study["patient_orthanc_id"]),
                                  {"study_count": 0, "last_study_date": "", "modalities": set()})
        row["study_count"] += 1
        row["last_study_date"] = max(row["last_study_date"], study["study_date"])
        row["modalities"].update(m for m in study["modalities"].split(",") if m)
    kept = {}
    for row in db.query("SELECT r.*, p.name_key AS patient_name_key FROM cached_referrals r "
                        "JOIN cached_patients p ON p.orthanc_id = r.orthanc_id"):
        assert row["name_key"] == row["patient_name_key"]
        kept[(row["referring_physician_key"], row["orthanc_id"])] = {
            "study_count": row["study_count"], "last_study_date": row["last_study_date"],
            "modalities": set(filter(None, row["modalities"].split(",")))}
    assert kept == expected and db.query_value("SELECT COUNT(*) FROM cached_referrals") == len(expected)


def kept_prefix_counts(db):
    """Return cached_name_prefixes as {prefix: patients}, leaving out prefixes no patient has any more."""
    rows = db.query("SELECT prefix, patient_count FROM cached_name_prefixes WHERE patient_count <> 0")
    return {row["prefix"]: row["patient_count"] for row in rows}


def counted_prefix_counts(db):
    """Count, from the cached name words, the patients of every word prefix of the kept lengths."""
    rows = db.query("SELECT DISTINCT word, patient_orthanc_id FROM cached_patient_words")
    pairs = {(row["word"][:length], row["patient_orthanc_id"]) for row in rows for length in cache.PREFIX_LENGTHS}
    counts = {}
    for prefix, _ in pairs:
        counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def kept_prefix_modality_counts(db):
    """Return cached_name_prefix_modalities as {(prefix, modality): patients}, leaving out the empty ones."""
    rows = db.query("SELECT * FROM cached_name_prefix_modalities WHERE patient_count <> 0")
    return {(row["prefix"], row["modality"]): row["patient_count"] for row in rows}


def counted_prefix_modality_counts(db):
    """Count, from the cached patients, the patients of every name-word prefix of the kept lengths with each
    modality of their studies."""
    counts = {}
    for patient in db.query("SELECT name_key, modalities FROM cached_patients"):
        for key in {(word[:length], modality) for word in patient["name_key"].split()
                    for length in cache.PREFIX_LENGTHS for modality in filter(None, patient["modalities"].split(","))}:
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_first_fill_caches_every_sample_study_true_to_the_plan(app, db, sample_client, sample_plan):
    result = run_sync(app, sample_client)
    assert result.full and result.reason == "empty cache"
    assert result.added == len(sample_plan.studies)
    counts = cache.counts(db)
    assert counts == {
        "patients": len(sample_plan.patients),
        "studies": len(sample_plan.studies),
        "series": sum(len(s.series) for s in sample_plan.studies),
    }
    for patient in sample_plan.patients:
        for study in patient.studies:
            row = cached_study(db, study.study_uid)
            assert row["patient_id"] == patient.patient_id
            assert row["patient_name"] == patient.patient_name  # Unicode survives, all character sets
            assert row["study_date"] == f"{study.study_date[:4]}-{study.study_date[4:6]}-{study.study_date[6:]}"
            assert row["modalities"] == ",".join(study.modalities)
            assert row["series_count"] == len(study.series)
            assert row["instance_count"] == study.instance_count
            assert row["description"] == (study.description or "")
            assert row["referring_physician"] == display_name(study.referring_physician or "")
    assert_patients_match_their_studies(db)
    state = cache.get_sync_state(db)
    assert state["last_seq"] == result.last_seq == sample_client.last_change_seq()
    assert state["last_success_at"] is not None


def test_names_are_stored_for_display_and_for_search(app, db, sample_client):
    run_sync(app, sample_client)
    muller = db.query_one("SELECT * FROM cached_patients WHERE name_key LIKE 'MULLER%'")
    assert muller["patient_name"] == "MÜLLER, JÜRGEN"
    assert muller["name_key"] == "MULLER JURGEN"
    yamada = db.query_one("SELECT * FROM cached_patients WHERE name_key LIKE 'YAMADA%'")
    assert yamada["patient_name"] == "Yamada, Tarou"
    assert "山田" in yamada["name_key"]
    house = {r["referring_physician_key"] for r in db.query("SELECT referring_physician_key FROM cached_studies")}
    assert "HOUSE GREGORY" in house and "house^gregory^^" not in house


def test_a_second_pass_with_no_changes_changes_nothing(app, db, sample_client):
    run_sync(app, sample_client)
    again = run_sync(app, sample_client)
    assert not again.full and (again.added, again.updated, again.removed) == (0, 0, 0)


def test_a_new_study_shows_up_after_one_incremental_pass(app, db, empty_client, sample_plan):
    upload_study(empty_client, sample_plan, 0, 0)
    assert run_sync(app, empty_client).added == 1
    _, study = upload_study(empty_client, sample_plan, 1, 0)
    result = run_sync(app, empty_client)
    assert not result.full and result.added == 1
    assert cached_study(db, study.study_uid)["instance_count"] == study.instance_count
    assert cache.counts(db)["patients"] == 2
    assert_patients_match_their_studies(db)


def test_a_study_gaining_a_series_updates_its_counts(app, db, empty_client, sample_plan):
    patient = next(p for p in sample_plan.patients if any(len(s.series) > 1 for s in p.studies))
    study = next(s for s in patient.studies if len(s.series) > 1)
    first, *others = study.series
    only_first = type(study)(**{**study.__dict__, "series": (first,)})
    upload_files(generate_study_files(patient, only_first), empty_client)
    run_sync(app, empty_client)
    assert cached_study(db, study.study_uid)["series_count"] == 1
    upload_files(generate_study_files(patient, study), empty_client)
    result = run_sync(app, empty_client)
    assert result.updated == 1
    row = cached_study(db, study.study_uid)
    assert row["series_count"] == len(study.series) and row["instance_count"] == study.instance_count
    assert row["modalities"] == ",".join(study.modalities)
    assert_patients_match_their_studies(db)  # the patient's modalities and their kept counts too


def test_a_study_deleted_in_orthanc_leaves_the_cache(app, db, empty_client, sample_plan):
    upload_study(empty_client, sample_plan, 0, 0)
    _, study = upload_study(empty_client, sample_plan, 1, 0)
    run_sync(app, empty_client)
    orthanc_id = cached_study(db, study.study_uid)["orthanc_id"]
    empty_client.delete_study(orthanc_id)
    result = run_sync(app, empty_client)
    assert result.removed == 1
    assert cached_study(db, study.study_uid) is None
    assert cache.counts(db) == {"patients": 1, "studies": 1, "series": len(sample_plan.patients[0].studies[0].series)}
    assert_patients_match_their_studies(db)


def test_evicting_a_study_orthanc_lost_fixes_the_patient_at_once(app, db, empty_client, sample_plan):
    patient = next(p for p in sample_plan.patients if len(p.studies) > 1)
    index = sample_plan.patients.index(patient)
    upload_study(empty_client, sample_plan, index, 0)
    upload_study(empty_client, sample_plan, index, 1)
    run_sync(app, empty_client)
    row = cached_study(db, patient.studies[0].study_uid)
    sync.evict_study(db, row["orthanc_id"])
    assert cached_study(db, patient.studies[0].study_uid) is None
    assert db.query_value("SELECT study_count FROM cached_patients") == 1
    assert_patients_match_their_studies(db)


def patient_row(letter, name_key, modalities="CT", last_study_date="2024-01-01"):
    """Return a cached_patients row of a made-up patient whose Orthanc id is made of letter."""
    return {"orthanc_id": letter * 8 + f"-{letter * 8}" * 4, "patient_id": letter, "patient_name": name_key,
            "name_key": name_key, "patient_id_key": letter.upper(), "birth_date": "", "sex": "",
            "study_count": 1, "last_study_date": last_study_date, "modalities": modalities, "last_arrival_at": None,
            "updated_at": datetime.datetime(2026, 1, 1)}


def test_modality_and_last_study_date_counts_follow_new_changed_and_deleted_patients(db):
    cache.save_patients(db, [patient_row("a", "A", "CT,MR"), patient_row("b", "B", "CT")])
    assert kept_modality_counts(db) == {"CT": 2, "MR": 1}
    assert kept_prefix_modality_counts(db) == {("A", "CT"): 1, ("A", "MR"): 1, ("B", "CT"): 1}
    cache.save_patients(db, [patient_row("a", "A", "MR,US", last_study_date="2025-02-03")])
    assert_words_carry_their_patient(db)  # the same name, a new last study date
    assert kept_modality_counts(db) == {"CT": 1, "MR": 1, "US": 1}
    assert kept_prefix_modality_counts(db) == {("A", "MR"): 1, ("A", "US"): 1, ("B", "CT"): 1}
    assert db.query_value("SELECT last_study_date FROM cached_patient_modalities WHERE modality = 'US'") == "2025-02-03"
    assert kept_last_study_date_counts(db) == {"2024-01-01": 1, "2025-02-03": 1}
    assert db.query_value("SELECT newest_study_date FROM sync_state") == "2025-02-03"
    cache.delete_patients(db, [patient_row("a", "")["orthanc_id"]])
    assert kept_modality_counts(db) == {"CT": 1}
    assert kept_prefix_modality_counts(db) == {("B", "CT"): 1}
    assert kept_last_study_date_counts(db) == {"2024-01-01": 1}
    assert db.query_value("SELECT newest_study_date FROM sync_state") == "2024-01-01"
    assert_patient_counts_match_the_patients(db)
    assert_words_carry_their_patient(db)


def test_study_dates_follow_changed_deleted_and_moved_studies(db):
    now = datetime.datetime(2026, 1, 1)
    first, middle, last = (made_up_study("a", number, date, modalities) for number, date, modalities in
                           [(1, "20200101", ["CT"]), (2, "20210101", ["MR", "CT"]), (3, "20220101", ["CT"])])
    other = made_up_study("b", 4, "20190101", ["CT"])

    def dates_of(patient):
        rows = db.query("SELECT study_date, previous_date FROM cached_patient_dates WHERE patient_orthanc_id = ? "
                        "ORDER BY study_date", (patient * 8 + f"-{patient * 8}" * 4,))
        return [(row["study_date"], row["previous_date"]) for row in rows]

    def write(*studies):
        with db.transaction():
            sync.write_studies(db, studies, now)
        assert_patients_match_their_studies(db)

    write(first, middle, last, other)
    assert dates_of("a") == [("2020-01-01", ""), ("2021-01-01", "2020-01-01"), ("2022-01-01", "2021-01-01")]
    middle[0]["MainDicomTags"]["StudyDate"] = "20230601"  # a date corrected in the middle of the history
    write(middle)
    assert dates_of("a") == [("2020-01-01", ""), ("2022-01-01", "2020-01-01"), ("2023-06-01", "2022-01-01")]
    with db.transaction():
        sync.remove_studies(db, [last[0]["ID"]], now)
    assert_patients_match_their_studies(db)
    assert dates_of("a") == [("2020-01-01", ""), ("2023-06-01", "2020-01-01")]
    # The first study sent again with another PatientID: a new Orthanc id and patient, the same UID.
    moved = made_up_study("c", 5, "20200101", ["CT"])
    moved[0]["MainDicomTags"]["StudyInstanceUID"] = first[0]["MainDicomTags"]["StudyInstanceUID"]
    write(moved)
    assert dates_of("a") == [("2023-06-01", "")] and dates_of("c") == [("2020-01-01", "")]
    moved_too = made_up_study("c", 6, "20230601", ["MR", "CT"])
    moved_too[0]["MainDicomTags"]["StudyInstanceUID"] = middle[0]["MainDicomTags"]["StudyInstanceUID"]
    write(moved_too)
    assert dates_of("a") == [] and dates_of("c") == [("2020-01-01", ""), ("2023-06-01", "2020-01-01")]
    assert db.query_value("SELECT COUNT(*) FROM cached_patients WHERE patient_id = 'A'") == 0
    # A patient renamed: their date rows carry the new name (checked by assert_patients_match_their_studies).
    other[0]["PatientMainDicomTags"]["PatientName"] = "RENAMED^PATIENT"
    write(other)
    assert db.query_value("SELECT name_key FROM cached_modality_dates WHERE patient_orthanc_id = ?",
                          (other[0]["ParentPatient"],)) == "RENAMED PATIENT"


def test_a_study_date_that_is_no_day_of_the_calendar_is_kept_as_unknown(db):
    studies = [made_up_study("a", 1, "20201345", ["CT"]), made_up_study("a", 2, "20200230", ["MR"]),
               made_up_study("a", 3, "20240229", ["CT"]), made_up_study("b", 4, "2020-1-5", ["CT"])]
    with db.transaction():
        sync.write_studies(db, studies, datetime.datetime(2026, 1, 1))
    assert_patients_match_their_studies(db)
    dates = db.query("SELECT study_uid, study_date FROM cached_studies ORDER BY study_uid")
    assert [(row["study_uid"][-1], row["study_date"]) for row in dates] == [
        ("1", ""), ("2", ""), ("3", "2024-02-29"), ("4", "")]
    assert db.query_value("SELECT last_study_date FROM cached_patients WHERE patient_id = 'A'") == "2024-02-29"
    assert db.query_value("SELECT COUNT(*) FROM cached_period_patients WHERE period LIKE '2020%'") == 0


def test_name_prefix_counts_follow_new_renamed_and_deleted_patients(db):
    cache.save_patients(db, [patient_row("a", "MULLER JURGEN"), patient_row("b", "MARTIN JOHN J")])
    assert kept_prefix_counts(db) == {"M": 2, "MU": 1, "MUL": 1, "MULL": 1, "MA": 1, "MAR": 1, "MART": 1, "J": 2,
                                      "JU": 1, "JUR": 1, "JURG": 1, "JO": 1, "JOH": 1, "JOHN": 1}
    cache.save_patients(db, [patient_row("a", "SMITH JURGEN")])
    assert kept_prefix_counts(db) == {"M": 1, "MA": 1, "MAR": 1, "MART": 1, "S": 1, "SM": 1, "SMI": 1, "SMIT": 1,
                                      "J": 2, "JU": 1, "JUR": 1, "JURG": 1, "JO": 1, "JOH": 1, "JOHN": 1}
    cache.delete_patients(db, [patient_row("b", "")["orthanc_id"]])
    assert kept_prefix_counts(db) == {"S": 1, "SM": 1, "SMI": 1, "SMIT": 1, "J": 1, "JU": 1, "JUR": 1,
                                      "JURG": 1} == counted_prefix_counts(db)


def test_a_feed_that_went_backwards_forces_a_full_pass(app, db, sample_client):
    run_sync(app, sample_client)
    db.execute("UPDATE sync_state SET last_seq = ?", (10**9,))
    db.commit()
    result = run_sync(app, sample_client)
    assert result.full and "went backwards" in result.reason
    assert cache.get_sync_state(db)["last_seq"] == sample_client.last_change_seq()


def test_a_full_pass_removes_what_orthanc_no_longer_has(app, db, sample_client, sample_plan):
    run_sync(app, sample_client)
    db.execute("INSERT INTO cached_studies (orthanc_id, patient_orthanc_id, study_uid, updated_at) "
               "VALUES (?, ?, '9.9.9', '2026-01-01 00:00:00')", ("0" * 8 + "-00000000" * 4, "1" * 8 + "-11111111" * 4))
    db.commit()
    result = run_sync(app, sample_client, full=True)
    assert result.full and result.removed == 1 and result.updated == len(sample_plan.studies)
    assert cached_study(db, "9.9.9") is None


def test_a_pass_killed_midway_leaves_the_cache_consistent_and_the_next_one_finishes(
    app, db, sample_client, sample_plan, monkeypatch
):
    monkeypatch.setattr(sync, "WRITE_BATCH", 5)

    def fail_after_twelve(done, total):
        if done == 12:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        run_sync(app, sample_client, progress=fail_after_twelve)
    assert cache.counts(db)["studies"] == 10  # two whole batches were committed, the third rolled back
    assert_patients_match_their_studies(db)
    assert cache.get_sync_state(db)["last_error"] == "RuntimeError: power cut"
    result = run_sync(app, sample_client)
    assert cache.counts(db)["studies"] == len(sample_plan.studies)
    assert result.added == len(sample_plan.studies) - 10
    assert_patients_match_their_studies(db)
    assert cache.get_sync_state(db)["last_error"] == ""


def test_an_incremental_pass_killed_midway_changes_nothing_and_is_redone(app, db, empty_client, sample_plan):
    upload_study(empty_client, sample_plan, 0, 0)
    run_sync(app, empty_client)
    seq_before = cache.get_sync_state(db)["last_seq"]
    for index in (1, 2, 3):
        upload_study(empty_client, sample_plan, index, 0)

    def fail_on_second(done, total):
        if done == 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run_sync(app, empty_client, progress=fail_on_second)
    assert cache.counts(db)["studies"] == 1 and cache.get_sync_state(db)["last_seq"] == seq_before
    assert run_sync(app, empty_client).added == 3
    assert cache.counts(db)["studies"] == 4


def test_two_syncs_never_run_at_once(app, db, sample_client, tmp_path):
    url = app.config["DATABASE_URL"]
    with exclusive_lock(url, sync.LOCK_NAME) as got:
        assert got
        with pytest.raises(sync.SyncBusy):
            run_sync(app, sample_client)
        result = run_cli(app, tmp_path, "sync")
        assert result.returncode == 0, result.stderr
        assert "Another sync is running" in result.stdout
    assert cache.counts(db)["studies"] == 0
    assert run_sync(app, sample_client).full


def run_cli(app, tmp_path, *args):
    """Run pacs-lite with the app's database and Orthanc settings."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "ORTHANC_URL", "ORTHANC_USERNAME", "ORTHANC_PASSWORD"):
        env[f"PACS_LITE_{name}"] = app.config[name]
    env["PACS_LITE_INSTANCE_PATH"] = str(tmp_path / "cli-instance")
    return subprocess.run([sys.executable, "-m", "pacs_lite", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_sync_command_prints_one_summary_line(app, db, sample_client, tmp_path, sample_plan):
    result = run_cli(app, tmp_path, "sync")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Full sync (empty cache): {len(sample_plan.studies)} studies added")
    assert "last change" in result.stdout
    result = run_cli(app, tmp_path, "sync", "--full")
    assert result.returncode == 0 and result.stdout.startswith("Full sync (asked for): 0 studies added")
    script = subprocess.run([sys.executable, "scripts/orthanc_cache_sync.py"], capture_output=True, text=True,
                            env={**os.environ, **{f"PACS_LITE_{k}": app.config[k] for k in
                                 ("DATABASE_URL", "ORTHANC_URL", "ORTHANC_USERNAME", "ORTHANC_PASSWORD")},
                                 "PACS_LITE_INSTANCE_PATH": str(tmp_path / "cli-instance")}, timeout=120)
    assert script.returncode == 0 and script.stdout.startswith("Incremental sync: 0 studies added")


def test_orthanc_down_gives_a_clear_error_and_leaves_the_cache_alone(app, db, empty_client, empty_orthanc,
                                                                    sample_plan, tmp_path):
    upload_study(empty_client, sample_plan, 0, 0)
    run_sync(app, empty_client)
    before = db.query("SELECT * FROM cached_studies")
    empty_orthanc.stop(kill=True)
    result = run_cli(app, tmp_path, "sync")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "sync failed" in result.stderr and "Orthanc" in result.stderr
    assert db.query("SELECT * FROM cached_studies") == before
    assert "Orthanc" in cache.get_sync_state(db)["last_error"]


def test_the_follower_picks_up_a_new_study_within_seconds_and_survives_a_restart(
    app, db, empty_client, empty_orthanc, sample_plan
):
    stop = threading.Event()
    url = app.config["DATABASE_URL"]
    follower = threading.Thread(
        target=sync.follow, args=(empty_client, url, 0.3, 60), kwargs={"should_stop": stop.is_set}, daemon=True
    )
    follower.start()
    try:
        _, study = upload_study(empty_client, sample_plan, 2, 0)
        assert wait_for(lambda: cached_study(connect(url), study.study_uid) is not None)
        empty_orthanc.stop(kill=True)
        time.sleep(1.0)  # the follower meets the outage and backs off
        empty_orthanc.start()
        _, study = upload_study(empty_client, sample_plan, 3, 0)
        assert wait_for(lambda: cached_study(connect(url), study.study_uid) is not None, seconds=15)
    finally:
        stop.set()
        follower.join(timeout=10)
    assert not follower.is_alive()


@pytest.mark.parametrize("change, advice", [
    ("DELETE FROM schema_version WHERE version = (SELECT v FROM (SELECT MAX(version) AS v FROM schema_version) m)",
     "run 'pacs-lite init-db'"),
    ("INSERT INTO schema_version (version, applied_at) VALUES (99, '2026-01-01 00:00:00')",
     "restart it from the upgraded one"),
])
def test_a_sync_writes_nothing_to_a_schema_of_another_version(app, db, sample_client, change, advice):
    db.execute(change)
    db.commit()
    with pytest.raises(sync.SchemaMismatch, match=advice):
        run_sync(app, sample_client)
    assert cache.counts(db)["studies"] == 0
    # A follower started before an upgrade stops at its next pass instead of writing the old shape.
    slept = []
    with pytest.raises(sync.SchemaMismatch, match=advice):
        sync.follow(sample_client, app.config["DATABASE_URL"], 0.2, 60, sleep=slept.append)
    # follow closes this thread's connections when it ends: count on a new one.
    assert slept == [] and cache.counts(connect(app.config["DATABASE_URL"]))["studies"] == 0


def wait_for(condition, seconds=5.0):
    """Poll condition until it holds or time runs out; tell whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
