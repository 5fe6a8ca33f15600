"""The pacs-lite command line, run as a real process, on SQLite and MariaDB."""

import datetime
import os
import subprocess
import sys

import pytest

from pacs_lite import schema
from pacs_lite.db import connect

PACS_LITE = [sys.executable, "-m", "pacs_lite"]


@pytest.fixture
def run(database_url, tmp_path):
    """Run pacs-lite with the test database; return the finished process."""

    def run(*args, stdin="", env=None):
        environ = dict(os.environ)
        environ.update(
            PACS_LITE_INSTANCE_PATH=str(tmp_path / "instance"),
            PACS_LITE_DATABASE_URL=database_url,
            PACS_LITE_BCRYPT_ROUNDS="4",
        )
        environ.update(env or {})
        return subprocess.run([*PACS_LITE, *args], input=stdin, capture_output=True, text=True, env=environ,
                              timeout=60)

    return run


def assert_clean_failure(result, *words):
    """Check a command failed with exit code 2 and one clear line, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def test_init_db_creates_the_schema_and_is_idempotent(run, database_url):
    first = run("init-db")
    assert first.returncode == 0, first.stderr
    assert f"Created the schema (version {schema.LATEST_VERSION})" in first.stdout
    db = connect(database_url)
    tables = db.table_names()
    for table in ("users", "sessions", "login_attempts", "cached_patients", "cached_studies", "cached_series",
                  "study_access_log", "auth_events", "sync_state", "schema_version"):
        assert table in tables
    second = run("init-db")
    assert second.returncode == 0 and f"The schema is current (version {schema.LATEST_VERSION})" in second.stdout
    assert db.query_value("SELECT COUNT(*) FROM schema_version") == schema.LATEST_VERSION


def test_init_db_upgrades_in_place_and_keeps_the_rows(database_url, monkeypatch):
    db = connect(database_url)
    monkeypatch.setattr(schema, "LATEST_VERSION", 1)
    assert schema.init_db(db) == (0, 1)
    db.execute("INSERT INTO auth_events (created_at, event_type, username) VALUES ('2026-01-02 03:04:05', 'login', 'kept')")
    db.execute("INSERT INTO cached_patients (orthanc_id, patient_name, name_key, last_study_date, modalities, "
               "updated_at) VALUES (?, 'MÜLLER, JÜRGEN', 'MULLER JURGEN', '2024-03-01', 'CT,MR', '2026-01-02 03:04:05')",
               ("a" * 8 + "-aaaaaaaa" * 4,))
    db.execute("INSERT INTO cached_studies (orthanc_id, patient_orthanc_id, study_uid, study_date, modalities, "
               "referring_physician_key, updated_at) VALUES (?, ?, '1.2.3', '2024-03-01', 'CT,MR', 'HOUSE GREGORY', "
               "'2026-01-02 03:04:05')", ("b" * 8 + "-bbbbbbbb" * 4, "a" * 8 + "-aaaaaaaa" * 4))
    db.commit()
    monkeypatch.undo()
    assert schema.init_db(db) == (1, schema.LATEST_VERSION)
    assert db.query_value("SELECT username FROM auth_events") == "kept"
    assert db.query_value("SELECT patient_name FROM cached_patients") == "MÜLLER, JÜRGEN"
    words = db.query("SELECT word FROM cached_patient_words ORDER BY word")
    assert [w["word"] for w in words] == ["JURGEN", "MULLER"]  # the migration indexed the existing names
    assert db.query_value("SELECT patient_count FROM sync_state") == 1  # and counted them
    assert db.query_value("SELECT patients_version FROM sync_state") != 0  # and gave them a version
    dates = db.query("SELECT study_date, previous_date, patient_last_study_date FROM cached_patient_dates")
    assert [(d["study_date"], d["previous_date"], d["patient_last_study_date"]) for d in dates] == [
        ("2024-03-01", "", "2024-03-01")]
    if db.dialect == "sqlite":
        words_table = db.query_value("SELECT sql FROM sqlite_master WHERE name = 'cached_patient_words'")
        assert words_table.endswith("WITHOUT ROWID") and "name_key" in words_table
    prefixes = db.query("SELECT prefix, patient_count FROM cached_name_prefixes ORDER BY prefix")
    assert [(p["prefix"], p["patient_count"]) for p in prefixes] == [("J", 1), ("JU", 1), ("JUR", 1), ("JURG", 1),
                                                                      ("M", 1), ("MU", 1), ("MUL", 1), ("MULL", 1)]
    words = db.query("SELECT name_key, last_study_date FROM cached_patient_words")
    assert {(w["name_key"], w["last_study_date"]) for w in words} == {("MULLER JURGEN", "2024-03-01")}
    modalities = db.query("SELECT modality, last_study_date FROM cached_patient_modalities ORDER BY modality")
    assert [(m["modality"], m["last_study_date"]) for m in modalities] == [("CT", "2024-03-01"), ("MR", "2024-03-01")]
    assert db.query_value("SELECT SUM(patient_count) FROM cached_modality_counts") == 2
    modality_dates = db.query("SELECT * FROM cached_modality_dates ORDER BY modality")
    assert [(m["modality"], m["study_date"], m["patient_last_study_date"]) for m in modality_dates] == [
        ("CT", "2024-03-01", "2024-03-01"), ("MR", "2024-03-01", "2024-03-01")]
    assert db.query_value("SELECT patient_count FROM cached_last_study_dates WHERE last_study_date = '2024-03-01'") == 1
    assert db.query_value("SELECT newest_study_date FROM sync_state") == "2024-03-01"
    referral = db.query_one("SELECT * FROM cached_referrals")
    assert (referral["referring_physician_key"], referral["name_key"], referral["study_count"],
            referral["last_study_date"], referral["modalities"]) == ("HOUSE GREGORY", "MULLER JURGEN", 1,
                                                                     "2024-03-01", "CT,MR")
    assert db.query_value("SELECT previous_login_at FROM users") is None  # the new column is there
    assert schema.current_version(db) == schema.LATEST_VERSION
    assert schema.init_db(db) == (schema.LATEST_VERSION, schema.LATEST_VERSION)


def test_version_8_gives_each_name_word_its_patients_last_study_date(database_url):
    db = database_at_version(database_url, 7)
    patients = {"a" * 8 + "-aaaaaaaa" * 4: ("MULLER JURGEN", "2024-03-01"),
                "c" * 8 + "-cccccccc" * 4: ("DOE JANE", "2019-05-06")}
    for orthanc_id, (name_key, last_study_date) in patients.items():
        db.execute("INSERT INTO cached_patients (orthanc_id, name_key, last_study_date, updated_at) "
                   "VALUES (?, ?, ?, '2026-01-02 03:04:05')", (orthanc_id, name_key, last_study_date))
        db.executemany("INSERT INTO cached_patient_words (word, patient_orthanc_id, name_key) VALUES (?, ?, ?)",
                       [(word, orthanc_id, name_key) for word in name_key.split()])
    db.commit()
    assert schema.init_db(db) == (7, schema.LATEST_VERSION)
    words = {(w["word"], w["last_study_date"]) for w in db.query("SELECT * FROM cached_patient_words")}
    assert words == {("MULLER", "2024-03-01"), ("JURGEN", "2024-03-01"), ("DOE", "2019-05-06"), ("JANE", "2019-05-06")}


def test_version_9_fills_the_dates_before_and_the_name_words_modalities(database_url):
    db = database_at_version(database_url, 8)
    patient = "a" * 8 + "-aaaaaaaa" * 4
    db.execute("INSERT INTO cached_patients (orthanc_id, name_key, last_study_date, modalities, updated_at) "
               "VALUES (?, 'DOE JANE', '2024-03-01', 'CT,MR,US', '2026-01-02 03:04:05')", (patient,))
    db.executemany("INSERT INTO cached_patient_words (word, patient_orthanc_id, name_key, last_study_date) "
                   "VALUES (?, ?, 'DOE JANE', '2024-03-01')", [("DOE", patient), ("JANE", patient)])
    for number, (study_date, modalities) in enumerate([("2024-03-01", "CT"), ("2019-05-06", "CT,MR"),
                                                       ("2019-05-06", "MR"), ("", "US")]):
        db.execute("INSERT INTO cached_studies (orthanc_id, patient_orthanc_id, study_uid, study_date, modalities, "
                   "updated_at) VALUES (?, ?, ?, ?, ?, '2026-01-02 03:04:05')",
                   (f"{number:08d}" + "-bbbbbbbb" * 4, patient, f"1.2.{number}", study_date, modalities))
    db.commit()
    assert schema.init_db(db) == (8, schema.LATEST_VERSION)
    dates = {(d["study_date"], d["previous_date"], d["patient_last_study_date"])
             for d in db.query("SELECT * FROM cached_patient_dates")}
    assert dates == {("", "", "2024-03-01"), ("2019-05-06", "", "2024-03-01"),
                     ("2024-03-01", "2019-05-06", "2024-03-01")}
    dates = {(d["modality"], d["study_date"], d["previous_date"])
             for d in db.query("SELECT * FROM cached_modality_dates")}
    assert dates == {("CT", "2019-05-06", ""), ("CT", "2024-03-01", "2019-05-06"), ("MR", "2019-05-06", ""),
                     ("US", "", "")}
    words = {(w["word"], w["modalities"]) for w in db.query("SELECT * FROM cached_patient_words")}
    assert words == {("DOE", "CT,MR,US"), ("JANE", "CT,MR,US")}


def test_version_10_counts_four_character_name_prefixes_and_gives_date_rows_their_patient(database_url,
                                                                                          monkeypatch):
    db = database_at_version(database_url, 9)
    patients = {"a" * 8 + "-aaaaaaaa" * 4: ("MULLER JURGEN", "PID-A"), "c" * 8 + "-cccccccc" * 4: ("MULLIGAN JO", "")}
    for number, (orthanc_id, (name_key, patient_id_key)) in enumerate(patients.items()):
        modalities = "CT" if number == 0 else "MR"  # as the words of version 9 carry them
        db.execute("INSERT INTO cached_patients (orthanc_id, name_key, patient_id_key, last_study_date, updated_at) "
                   "VALUES (?, ?, ?, '2024-03-01', '2026-01-02 03:04:05')", (orthanc_id, name_key, patient_id_key))
        db.execute("INSERT INTO cached_studies (orthanc_id, patient_orthanc_id, study_uid, study_date, modalities, "
                   "updated_at) VALUES (?, ?, ?, '2024-03-01', 'CT', '2026-01-02 03:04:05')",
                   (f"{number:08d}" + "-bbbbbbbb" * 4, orthanc_id, f"1.2.{number}"))
        db.executemany("INSERT INTO cached_patient_words (word, patient_orthanc_id, name_key, modalities) "
                       "VALUES (?, ?, ?, ?)", [(word, orthanc_id, name_key, modalities) for word in name_key.split()])
    # What version 9 kept: prefixes of up to three characters, and date rows without the patient's name.
    db.executemany("INSERT INTO cached_name_prefixes (prefix, patient_count) VALUES (?, ?)",
                   [("M", 2), ("MU", 2), ("MUL", 2), ("J", 2), ("JU", 1), ("JUR", 1), ("JO", 1)])
    db.execute("INSERT INTO cached_patient_dates (study_date, patient_orthanc_id, patient_last_study_date, "
               "previous_date) VALUES ('2024-03-01', ?, '2024-03-01', '')", ("a" * 8 + "-aaaaaaaa" * 4,))
    db.commit()
    assert schema.init_db(db) == (9, schema.LATEST_VERSION)
    prefixes = {p["prefix"]: p["patient_count"] for p in db.query("SELECT * FROM cached_name_prefixes")}
    assert prefixes == {"M": 2, "MU": 2, "MUL": 2, "MULL": 2, "J": 2, "JU": 1, "JUR": 1, "JURG": 1, "JO": 1}
    prefixes = {(p["prefix"], p["modality"]): p["patient_count"]
                for p in db.query("SELECT * FROM cached_name_prefix_modalities")}
    assert prefixes == {("M", "CT"): 1, ("MU", "CT"): 1, ("MUL", "CT"): 1, ("MULL", "CT"): 1, ("J", "CT"): 1,
                        ("JU", "CT"): 1, ("JUR", "CT"): 1, ("JURG", "CT"): 1, ("M", "MR"): 1, ("MU", "MR"): 1,
                        ("MUL", "MR"): 1, ("MULL", "MR"): 1, ("J", "MR"): 1, ("JO", "MR"): 1}
    assert kept_period_counts(db) == {("", "year", "2024", ""): 2, ("", "month", "2024-03", ""): 2,
                                      ("CT", "year", "2024", ""): 2, ("CT", "month", "2024-03", ""): 2}
    for table in ("cached_patient_dates", "cached_modality_dates"):
        rows = db.query(f"SELECT * FROM {table}")
        assert {(r["patient_orthanc_id"], r["name_key"], r["patient_id_key"], r["study_date"], r["previous_date"])
                for r in rows} == {(orthanc_id, name_key, patient_id_key, "2024-03-01", "")
                                   for orthanc_id, (name_key, patient_id_key) in patients.items()}
        assert_stored_in_its_key_on_sqlite(db, table)


def test_version_10_finishes_when_run_again_after_stopping_part_way(database_url, monkeypatch):
    db = database_at_version(database_url, 9)
    patient = "a" * 8 + "-aaaaaaaa" * 4
    db.execute("INSERT INTO cached_patients (orthanc_id, name_key, patient_id_key, last_study_date, modalities, "
               "updated_at) VALUES (?, 'DOE JANE', 'P1', '2024-03-01', 'CT', '2026-01-02 03:04:05')", (patient,))
    db.execute("INSERT INTO cached_studies (orthanc_id, patient_orthanc_id, study_uid, study_date, modalities, "
               "updated_at) VALUES (?, ?, '1.2.3', '2024-03-01', 'CT', '2026-01-02 03:04:05')",
               ("b" * 8 + "-bbbbbbbb" * 4, patient))
    db.executemany("INSERT INTO cached_patient_words (word, patient_orthanc_id, name_key, modalities) "
                   "VALUES (?, ?, 'DOE JANE', 'CT')", [("DOE", patient), ("JANE", patient)])
    db.commit()
    assert upgrade_stopping_once(db, monkeypatch, "save_study_dates") == (9, schema.LATEST_VERSION)
    assert [(r["study_date"], r["name_key"]) for r in db.query("SELECT * FROM cached_patient_dates")] == [
        ("2024-03-01", "DOE JANE")]
    assert kept_period_counts(db) == {("", "year", "2024", ""): 1, ("", "month", "2024-03", ""): 1,
                                      ("CT", "year", "2024", ""): 1, ("CT", "month", "2024-03", ""): 1}
    assert db.query_value("SELECT patient_count FROM cached_name_prefix_modalities "
                          "WHERE prefix = 'JANE' AND modality = 'CT'") == 1


def database_at_version(database_url, version):
    """Return a connection to the test database, its schema created up to an older version."""
    db = connect(database_url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, "LATEST_VERSION", version)
        schema.init_db(db)
    return db


def insert_patient_doe_jo(db, orthanc_id):
    """Insert the cached patient DOE JO, last seen on 2024-03-01 with CT and MR."""
    db.execute("INSERT INTO cached_patients (orthanc_id, name_key, last_study_date, modalities, updated_at) "
               "VALUES (?, 'DOE JO', '2024-03-01', 'CT,MR', '2026-01-02 03:04:05')", (orthanc_id,))


def upgrade_stopping_once(db, monkeypatch, step):
    """Upgrade db with cache.<step> failing the first time (a full disk): check that the schema version did not
    move, then upgrade again; return what that second init_db returned."""
    from pacs_lite import cache

    before = schema.current_version(db)
    finish = getattr(cache, step)

    def stop(*_):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(cache, step, stop)
    with pytest.raises(RuntimeError, match="disk is full"):
        schema.init_db(db)
    assert schema.current_version(db) == before
    monkeypatch.setattr(cache, step, finish)
    return schema.init_db(db)


def assert_stored_in_its_key_on_sqlite(db, table):
    """On SQLite, check that a table is stored in its key (WITHOUT ROWID), as InnoDB stores every table."""
    if db.dialect == "sqlite":
        assert db.query_value("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).endswith("WITHOUT ROWID")


def test_version_11_files_each_patient_under_their_name_prefixes_even_when_run_again(database_url, monkeypatch):
    db = database_at_version(database_url, 10)
    patient = "a" * 8 + "-aaaaaaaa" * 4
    insert_patient_doe_jo(db, patient)
    db.commit()
    assert upgrade_stopping_once(db, monkeypatch, "save_name_prefix_patients") == (10, schema.LATEST_VERSION)
    rows = {(r["prefix"], r["last_study_date"], r["orthanc_id"], r["modalities"])
            for r in db.query("SELECT * FROM cached_name_prefix_patients")}
    assert rows == {(prefix, "2024-03-01", patient, "CT,MR") for prefix in ("D", "DO", "DOE", "J", "JO")}
    assert_stored_in_its_key_on_sqlite(db, "cached_name_prefix_patients")


def test_version_12_files_each_patient_under_their_years_and_months_even_when_run_again(database_url, monkeypatch):
    db = database_at_version(database_url, 11)
    patient = "a" * 8 + "-aaaaaaaa" * 4
    insert_patient_doe_jo(db, patient)
    carried = ("2024-03-01", "DOE JO", "")
    db.executemany("INSERT INTO cached_patient_dates (study_date, patient_orthanc_id, previous_date, "
                   "patient_last_study_date, name_key, patient_id_key) VALUES (?, ?, ?, ?, ?, ?)",
                   [("2019-05-06", patient, "", *carried), ("2024-03-01", patient, "2019-05-06", *carried)])
    db.executemany("INSERT INTO cached_modality_dates (modality, study_date, patient_orthanc_id, previous_date, "
                   "patient_last_study_date, name_key, patient_id_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [("MR", "2019-05-06", patient, "", *carried), ("CT", "2024-03-01", patient, "", *carried)])
    db.commit()
    assert upgrade_stopping_once(db, monkeypatch, "save_period_patients") == (11, schema.LATEST_VERSION)
    rows = {(r["modality"], r["period"], r["last_study_date"], r["orthanc_id"])
            for r in db.query("SELECT * FROM cached_period_patients")}
    assert rows == {(modality, period, "2024-03-01", patient)
                    for modality, period in (("", "2019"), ("", "2019-05"), ("MR", "2019"), ("MR", "2019-05"),
                                             ("", "2024"), ("", "2024-03"), ("CT", "2024"), ("CT", "2024-03"))}
    assert_stored_in_its_key_on_sqlite(db, "cached_period_patients")


def test_version_13_keeps_every_referral_and_stores_them_in_their_key_on_sqlite(database_url):
    db = database_at_version(database_url, 12)
    patient = "a" * 8 + "-aaaaaaaa" * 4
    referrals = [("HOUSE GREGORY", patient, "DOE JO"), ("WILSON JAMES", patient, "DOE JO")]
    db.executemany("INSERT INTO cached_referrals (referring_physician_key, orthanc_id, name_key, last_study_date, "
                   "updated_at) VALUES (?, ?, ?, '2024-03-01', '2026-01-02 03:04:05')", referrals)
    if db.dialect == "sqlite":  # what a run that stopped part-way leaves
        db.execute("CREATE TABLE cached_referrals_by_key (referring_physician_key VARCHAR(324))")
    db.commit()
    assert schema.init_db(db) == (12, schema.LATEST_VERSION)
    kept = db.query("SELECT referring_physician_key, orthanc_id, name_key FROM cached_referrals "
                    "ORDER BY referring_physician_key")
    assert [tuple(row.values()) for row in kept] == referrals
    assert_stored_in_its_key_on_sqlite(db, "cached_referrals")
    if db.dialect == "sqlite":
        indexes = {row["name"] for row in db.query("SELECT name FROM sqlite_master WHERE tbl_name = 'cached_referrals' "
                                                   "AND type = 'index' AND sql IS NOT NULL")}
        assert indexes == {"cached_referrals_patient", "cached_referrals_last_study", "cached_referrals_name",
                           "cached_referrals_patient_id"}
        assert "cached_referrals_by_key" not in db.table_names()


def test_version_14_counts_the_patients_of_each_period_by_the_one_before_even_when_run_again(database_url,
                                                                                           monkeypatch):
    db = database_at_version(database_url, 13)
    patient, other = "a" * 8 + "-aaaaaaaa" * 4, "b" * 8 + "-bbbbbbbb" * 4
    # DOE JO had an MR in May 2019 and a CT in March 2024; the other patient a CT in January 2024 and a study of no
    # known modality in March 2024.
    periods = {patient: [("", "2019"), ("", "2019-05"), ("MR", "2019"), ("MR", "2019-05"), ("", "2024"),
                         ("", "2024-03"), ("CT", "2024"), ("CT", "2024-03")],
               other: [("", "2024"), ("", "2024-01"), ("", "2024-03"), ("CT", "2024"), ("CT", "2024-01")]}
    db.executemany("INSERT INTO cached_period_patients (modality, period, last_study_date, orthanc_id) "
                   "VALUES (?, ?, '2024-03-01', ?)",
                   [(modality, period, orthanc_id) for orthanc_id, own in periods.items() for modality, period in own])
    # The table as an earlier release's version 10 made it.
    db.execute("DROP TABLE cached_period_counts")
    db.execute("CREATE TABLE cached_period_counts (modality VARCHAR(16) NOT NULL, period VARCHAR(7) NOT NULL, "
               "patient_count INTEGER NOT NULL, PRIMARY KEY (modality, period))")
    db.execute("INSERT INTO cached_period_counts (modality, period, patient_count) VALUES ('', '2024', 2)")
    db.commit()
    assert upgrade_stopping_once(db, monkeypatch, "add_to_period_counts") == (13, schema.LATEST_VERSION)
    assert kept_period_counts(db) == {
        ("", "year", "2019", ""): 1, ("", "month", "2019-05", ""): 1, ("MR", "year", "2019", ""): 1,
        ("MR", "month", "2019-05", ""): 1, ("", "year", "2024", "2019"): 1, ("", "year", "2024", ""): 1,
        ("", "month", "2024-03", "2019-05"): 1, ("", "month", "2024-01", ""): 1, ("", "month", "2024-03", "2024-01"): 1,
        ("CT", "year", "2024", ""): 2, ("CT", "month", "2024-03", ""): 1, ("CT", "month", "2024-01", ""): 1}


def test_version_15_files_each_known_date_under_the_patients_name_prefixes(database_url):
    from pacs_lite import sync
    from tests.conftest import made_up_study

    db = database_at_version(database_url, 15)
    with db.transaction():
        sync.write_studies(db, [made_up_study("a", 1, "20190301", ["CT"]), made_up_study("a", 2, "20240105", ["MR"]),
                                made_up_study("a", 3, "", ["CR"])], datetime.datetime(2026, 1, 1))
    back_to_version_14(db)
    assert schema.init_db(db) == (14, schema.LATEST_VERSION)
    rows = db.query("SELECT * FROM cached_name_prefix_dates")
    assert {(r["prefix"], r["study_date"], r["previous_date"], r["patient_last_study_date"]) for r in rows} == {
        (prefix, date, previous, "2024-01-05") for prefix in ("A", "T", "TE", "TES", "TEST")
        for date, previous in (("2019-03-01", ""), ("2024-01-05", "2019-03-01"))}
    assert_stored_in_its_key_on_sqlite(db, "cached_name_prefix_dates")


def test_version_15_makes_the_study_dates_that_are_no_days_unknown_even_when_run_again(database_url, monkeypatch):
    from pacs_lite import sync
    from tests.conftest import made_up_study

    db = database_at_version(database_url, 15)
    # What an earlier release cached at version 14: any eight digits as a date.
    with monkeypatch.context() as patch:
        patch.setattr(sync, "dicom_date", lambda value: f"{value[:4]}-{value[4:6]}-{value[6:]}" if value else "")
        with db.transaction():
            sync.write_studies(db, [made_up_study("a", 1, "20201345", ["CT"]), made_up_study("a", 2, "20190301", ["CT"]),
                                    made_up_study("b", 3, "20200230", ["MR"])], datetime.datetime(2026, 1, 1))
    back_to_version_14(db)
    assert upgrade_stopping_once(db, monkeypatch, "save_patients") == (14, schema.LATEST_VERSION)
    dates = db.query("SELECT study_uid, study_date FROM cached_studies ORDER BY study_uid")
    assert [row["study_date"] for row in dates] == ["", "2019-03-01", ""]
    patients = db.query("SELECT patient_id, last_study_date FROM cached_patients ORDER BY patient_id")
    assert [(row["patient_id"], row["last_study_date"]) for row in patients] == [("A", "2019-03-01"), ("B", "")]
    assert sorted(row["study_date"] for row in db.query("SELECT study_date FROM cached_patient_dates")) == [
        "", "", "2019-03-01"]
    assert {row["period"] for row in db.query("SELECT period FROM cached_period_patients")} == {"2019", "2019-03"}
    assert kept_period_counts(db) == {("", "year", "2019", ""): 1, ("", "month", "2019-03", ""): 1,
                                      ("CT", "year", "2019", ""): 1, ("CT", "month", "2019-03", ""): 1}
    rows = db.query("SELECT * FROM cached_name_prefix_dates")
    assert {(r["prefix"], r["study_date"], r["previous_date"], r["patient_last_study_date"]) for r in rows} == {
        (prefix, "2019-03-01", "", "2019-03-01") for prefix in ("A", "T", "TE", "TES", "TEST")}


def back_to_version_14(db):
    """Take a database of version 15 back to what version 14 left: no cached_name_prefix_dates."""
    db.execute("DROP TABLE cached_name_prefix_dates")
    db.execute("DELETE FROM schema_version WHERE version = 15")
    db.commit()


def kept_period_counts(db):
    """Return cached_period_counts as {(modality, span, period, previous_period): patients}, leaving out the counts
    no patient has any more."""
    return {(r["modality"], r["span"], r["period"], r["previous_period"]): r["patient_count"]
            for r in db.query("SELECT * FROM cached_period_counts WHERE patient_count <> 0")}


def test_init_db_refuses_a_schema_newer_than_the_code(run, database_url):
    run("init-db")
    db = connect(database_url)
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, '2026-01-01 00:00:00')")
    db.commit()
    assert_clean_failure(run("init-db"), "schema version 99", "upgrade pacs_lite")


def test_sync_refuses_a_schema_newer_than_the_code(run, database_url):
    run("init-db")
    db = connect(database_url)
    db.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, '2026-01-01 00:00:00')")
    db.commit()
    # Refused before Orthanc is asked: none answers at this address.
    env = {"PACS_LITE_ORTHANC_URL": "http://127.0.0.1:9/"}
    assert_clean_failure(run("sync", env=env), "schema version 99", "older pacs_lite is still running")
    assert_clean_failure(run("sync", "--follow", env=env), "stopped following", "schema version 99")


def test_create_user_with_a_password_on_stdin(run, database_url):
    run("init-db")
    result = run("create-user", "Dr.Who", "--role", "referring_doctor", "--full-name", "The Doctor",
                 "--dicom-name", "who^the^^", "--password-stdin", stdin="a long enough secret\n")
    assert result.returncode == 0, result.stderr
    assert "One-time password" not in result.stdout
    user = connect(database_url).query_one("SELECT * FROM users")
    assert user["username"] == "dr.who" and user["role"] == "referring_doctor"
    assert user["dicom_name_key"] == "WHO THE" and user["must_change_password"] == 0
    assert user["password_hash"].startswith("$2b$04$")


def test_create_user_without_a_password_prints_a_one_time_password_to_change(run, database_url):
    run("init-db")
    result = run("create-user", "admin", "--role", "admin")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("One-time password: "))
    assert len(line.split(": ", 1)[1]) >= 10
    assert connect(database_url).query_value("SELECT must_change_password FROM users") == 1


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["--role", "surgeon"], "a long enough secret\n", "Invalid value for '--role'"),
        (["--role", "admin"], "\n", "the password is empty"),
        (["--role", "admin"], "short\n", "too short"),
    ],
)
def test_create_user_rejects_bad_input_clearly(run, args, stdin, message):
    run("init-db")
    result = run("create-user", "carol", *args, "--password-stdin", stdin=stdin)
    assert_clean_failure(result, message)


def test_create_user_rejects_a_duplicate_and_a_bad_username(run):
    run("init-db")
    assert run("create-user", "carol", "--role", "admin", "--password-stdin", stdin="a long enough secret\n").returncode == 0
    assert_clean_failure(run("create-user", "CAROL", "--role", "admin", "--password-stdin", stdin="another long secret\n"),
                         "exists already")
    assert_clean_failure(run("create-user", "bad name", "--role", "admin", "--password-stdin", stdin="a long enough secret\n"),
                         "username must be")


def test_commands_before_init_db_say_to_run_it(run):
    assert_clean_failure(run("create-user", "carol", "--role", "admin"), "run 'pacs-lite init-db' first")


def test_set_password_resets_and_ends_sessions(run, database_url):
    run("init-db")
    run("create-user", "carol", "--role", "radiologist", "--password-stdin", stdin="a long enough secret\n")
    db = connect(database_url)
    db.execute("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) "
               "VALUES (?, 1, '2026-01-01 00:00:00', '2099-01-01 00:00:00', '2026-01-01 00:00:00')", ("f" * 64,))
    db.commit()
    old_hash = db.query_value("SELECT password_hash FROM users")
    result = run("set-password", "carol")
    assert result.returncode == 0, result.stderr
    assert "One-time password: " in result.stdout
    row = db.query_one("SELECT password_hash, must_change_password FROM users")
    assert row["password_hash"] != old_hash and row["must_change_password"] == 1
    assert db.query_value("SELECT COUNT(*) FROM sessions") == 0
    assert run("set-password", "carol", "--password-stdin", stdin="my chosen secret\n").returncode == 0
    assert db.query_value("SELECT must_change_password FROM users") == 0
    assert_clean_failure(run("set-password", "nobody"), "no user named 'nobody'")


def test_clean_sessions_removes_expired_rows_and_old_audit(run, database_url):
    run("init-db")
    run("create-user", "carol", "--role", "radiologist", "--password-stdin", stdin="a long enough secret\n")
    db = connect(database_url)
    for token, expires in (("a", "2020-01-01 00:00:00"), ("b", "2099-01-01 00:00:00")):
        db.execute("INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at) "
                   "VALUES (?, 1, '2020-01-01 00:00:00', ?, '2020-01-01 00:00:00')", (token * 64, expires))
    db.execute("INSERT INTO auth_events (created_at, event_type, username) VALUES ('2020-01-01 00:00:00', 'login', 'old')")
    db.execute("INSERT INTO study_access_log (accessed_at, user_id, username, study_uid) "
               "VALUES ('2020-01-01 00:00:00', 1, 'carol', '1.2.3')")
    db.commit()
    result = run("clean-sessions")
    assert result.returncode == 0, result.stderr
    assert "Removed 1 expired sessions" in result.stdout and "and 2 audit rows older than 90 days" in result.stdout
    assert db.query_value("SELECT COUNT(*) FROM sessions") == 1
    assert db.query_value("SELECT COUNT(*) FROM auth_events WHERE username = 'old'") == 0
    assert db.query_value("SELECT COUNT(*) FROM auth_events WHERE username = 'carol'") == 1


def test_the_task_scheduler_script_runs_the_same_cleanup(run, database_url, tmp_path):
    run("init-db")
    environ = dict(os.environ, PACS_LITE_INSTANCE_PATH=str(tmp_path / "instance"), PACS_LITE_DATABASE_URL=database_url)
    result = subprocess.run([sys.executable, "scripts/clean_sessions.py"], capture_output=True, text=True,
                            env=environ, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Removed 0 expired sessions" in result.stdout


@pytest.mark.parametrize(
    "env, message",
    [
        ({"PACS_LITE_DATABASE_URL": "postgres://x/y"}, "DATABASE_URL 'postgres://x/y' is not a database URL"),
        ({"PACS_LITE_DATABASE_URL": "mysql://u:p@127.0.0.1:1/db"}, "cannot open the MySQL database 'db' at 127.0.0.1:1"),
        ({"PACS_LITE_DATABASE_URL": "mysql://u:p@127.0.0.1:99999/db"}, "bad port number"),
        ({"PACS_LITE_SESSION_HOURS": "eight"}, "SESSION_HOURS must be a whole number"),
        ({"PACS_LITE_ORTHANC_URL": "localhost:8042"}, "ORTHANC_URL must start with http://"),
        ({"PACS_LITE_CONFIG": "/nonexistent/pacs_lite.toml"}, "PACS_LITE_CONFIG: no file at /nonexistent/pacs_lite.toml"),
    ],
)
def test_a_wrong_setting_gives_one_clear_line(run, env, message):
    result = run("init-db", env=env)
    assert_clean_failure(result, message)
    assert len(result.stderr.strip().splitlines()) == 1


def test_settings_come_from_the_instance_file_then_the_environment(run, tmp_path, database_url):
    config = tmp_path / "site.toml"
    config.write_text(f'DATABASE_URL = "{database_url}"\nSESSION_HOURS = 3\nPAGE_SIZE = 25\n')
    from pacs_lite import create_app

    os.environ["PACS_LITE_CONFIG"] = str(config)
    os.environ["PACS_LITE_PAGE_SIZE"] = "40"
    try:
        app = create_app(instance_path=str(tmp_path / "instance"))
    finally:
        del os.environ["PACS_LITE_CONFIG"], os.environ["PACS_LITE_PAGE_SIZE"]
    assert app.config["SESSION_HOURS"] == 3  # from the file
    assert app.config["PAGE_SIZE"] == 40  # the environment wins over the file
    assert app.config["DATABASE_URL"] == database_url
    assert len(app.config["SECRET_KEY"]) == 64  # generated and kept in the instance folder
    assert (tmp_path / "instance" / "secret_key").read_text().strip() == app.config["SECRET_KEY"]


def test_a_broken_instance_file_is_named(run, tmp_path):
    config = tmp_path / "broken.toml"
    config.write_text("DATABASE_URL = \n")
    assert_clean_failure(run("init-db", env={"PACS_LITE_CONFIG": str(config)}), "is not valid TOML")
