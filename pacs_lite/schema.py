"""Create the schema, or upgrade it in place, keeping every row.

Version 1 is schema.sql. Each later version is a list of statements in
MIGRATIONS, written in the MySQL dialect like schema.sql; SQLite gets them
through the same translation.
"""

from collections import Counter

from pacs_lite.clock import utc_now
from pacs_lite.db import split_statements, sqlite_ddl
from pacs_lite.resources import resource_path

def index_patient_names(db):
    """Fill cached_patient_words from the cached patients (their name_key)."""
    rows = db.query("SELECT orthanc_id, name_key FROM cached_patients")
    words = {(word[:64], row["orthanc_id"]) for row in rows for word in row["name_key"].split()}
    db.executemany("INSERT INTO cached_patient_words (word, patient_orthanc_id) VALUES (?, ?)", sorted(words))


def sort_indexes_with_ids(db):
    """Replace the name and PatientID indexes by ones that also order ties by orthanc_id, as the worklist does."""
    db.drop_index("cached_patients_name", "cached_patients")
    db.drop_index("cached_patients_patient_id", "cached_patients")
    db.drop_index("cached_patient_words_patient", "cached_patient_words")


def set_first_patients_version(db):
    """Give the cached patients their first patients_version."""
    from pacs_lite import cache

    db.execute("UPDATE sync_state SET patients_version = ? WHERE id = 1", (cache.new_patients_version(),))


def count_name_prefixes(db):
    """Fill cached_name_prefixes from cached_patient_words."""
    from pacs_lite import cache

    words = {}
    for row in db.query("SELECT patient_orthanc_id, word FROM cached_patient_words"):
        words.setdefault(row["patient_orthanc_id"], []).append(row["word"])
    counts = Counter()
    for own in words.values():
        counts.update(cache.name_prefixes(own))
    cache.add_to_counts(db, "cached_name_prefixes", "prefix", counts)


def count_name_prefix_modalities(db):
    """Fill cached_name_prefix_modalities from cached_patient_words."""
    from pacs_lite import cache

    patients = {}
    for row in db.query("SELECT patient_orthanc_id, word, modalities FROM cached_patient_words"):
        words, _ = patients.setdefault(row["patient_orthanc_id"], ([], cache.modality_set(row["modalities"])))
        words.append(row["word"])
    counts = Counter((prefix, modality) for words, modalities in patients.values()
                     for prefix in cache.name_prefixes(words) for modality in modalities)
    cache.add_to_counts(db, "cached_name_prefix_modalities", ("prefix", "modality"), counts)


def fill_referrals(db):
    """Fill cached_referrals from the cached patients and their studies."""
    from pacs_lite import cache, sync

    patients = {row["orthanc_id"]: row for row in db.query(
        f"SELECT {', '.join(cache.PATIENT_COLUMNS)} FROM cached_patients")}
    studies = {}
    for study in db.query("SELECT patient_orthanc_id, referring_physician_key, study_date, modalities, first_seen_at "
                          "FROM cached_studies WHERE referring_physician_key <> ''"):
        studies.setdefault(study["patient_orthanc_id"], []).append(study)
    rows = [row for patient_id, own in studies.items() if patient_id in patients
            for row in sync.referral_rows(patients[patient_id], own)]
    cache.save_referrals(db, [], rows)


def drop_referring_index(db):
    """Drop the referring doctor's index of version 4, to be rebuilt with the study's modalities."""
    db.drop_index("cached_studies_referring_patient", "cached_studies")


def drop_date_index(db):
    """Drop the date index of cached_studies (version 6 rebuilds it with the patient's last study date; version 9
    drops it for good)."""
    db.drop_index("cached_studies_date_patient", "cached_studies")


def widen_name_prefixes(db):
    """Let cached_name_prefixes hold the longest kept prefix (SQLite does not check the length)."""
    from pacs_lite import cache

    if db.dialect == "mysql":
        db.execute(f"ALTER TABLE cached_name_prefixes MODIFY prefix VARCHAR({max(cache.PREFIX_LENGTHS)}) NOT NULL")


REFERRAL_COLUMNS = """referring_physician_key VARCHAR(324) NOT NULL,
    orthanc_id CHAR(44) NOT NULL,
    patient_id VARCHAR(64) NOT NULL DEFAULT '',
    patient_name VARCHAR(324) NOT NULL DEFAULT '',
    name_key VARCHAR(324) NOT NULL DEFAULT '',
    patient_id_key VARCHAR(64) NOT NULL DEFAULT '',
    birth_date CHAR(10) NOT NULL DEFAULT '',
    sex VARCHAR(16) NOT NULL DEFAULT '',
    study_count INTEGER NOT NULL DEFAULT 0,
    last_study_date CHAR(10) NOT NULL DEFAULT '',
    modalities VARCHAR(255) NOT NULL DEFAULT '',
    last_arrival_at DATETIME NULL,
    updated_at DATETIME NOT NULL,
    PRIMARY KEY (referring_physician_key, orthanc_id)"""
REFERRAL_INDEXES = [
    "CREATE INDEX cached_referrals_patient ON cached_referrals (orthanc_id)",
    "CREATE INDEX cached_referrals_last_study ON cached_referrals "
    "(referring_physician_key, last_study_date, orthanc_id)",
    "CREATE INDEX cached_referrals_name ON cached_referrals (referring_physician_key, name_key, orthanc_id)",
    "CREATE INDEX cached_referrals_patient_id ON cached_referrals "
    "(referring_physician_key, patient_id_key, orthanc_id)",
]


def keep_referrals_in_their_key(db):
    """On SQLite, store cached_referrals in its primary key alone (WITHOUT ROWID), as InnoDB stores every table: a
    referring doctor's patients are then side by side, and a search among them reads few pages. MySQL has nothing
    to do. A copy left by a run that stopped part-way is dropped first."""
    if db.dialect != "sqlite":
        return
    db.execute("DROP TABLE IF EXISTS cached_referrals_by_key")
    db.execute(f"CREATE TABLE cached_referrals_by_key ({REFERRAL_COLUMNS}) WITHOUT ROWID")
    db.execute("INSERT INTO cached_referrals_by_key SELECT * FROM cached_referrals")
    db.execute("DROP TABLE cached_referrals")
    db.execute("ALTER TABLE cached_referrals_by_key RENAME TO cached_referrals")
    for statement in REFERRAL_INDEXES:
        db.execute(statement)


def keep_words_in_their_key(db):
    """On SQLite, store cached_patient_words in its primary key alone (WITHOUT ROWID), as InnoDB stores every
    table: a word's range then reads each row's name_key without a second lookup. MySQL has nothing to do."""
    if db.dialect != "sqlite":
        return
    db.execute("""CREATE TABLE cached_patient_words_by_key (
        word VARCHAR(64) NOT NULL,
        patient_orthanc_id CHAR(44) NOT NULL,
        name_key VARCHAR(324) NOT NULL DEFAULT '',
        PRIMARY KEY (word, patient_orthanc_id)
    ) WITHOUT ROWID""")
    db.execute("INSERT INTO cached_patient_words_by_key (word, patient_orthanc_id, name_key) "
               "SELECT word, patient_orthanc_id, name_key FROM cached_patient_words")
    db.execute("DROP TABLE cached_patient_words")
    db.execute("ALTER TABLE cached_patient_words_by_key RENAME TO cached_patient_words")
    db.execute("CREATE INDEX cached_patient_words_patient ON cached_patient_words (patient_orthanc_id, word)")


def fill_patient_modalities(db):
    """Fill cached_patient_modalities, cached_modality_counts, cached_last_study_dates and
    sync_state.newest_study_date from the cached patients. (cached_modality_dates, created empty in version 7,
    is filled in version 10.)"""
    from pacs_lite import cache

    patients = db.query("SELECT orthanc_id, modalities, last_study_date FROM cached_patients")
    cache.save_patient_modalities(db, patients)
    cache.add_to_counts(db, "cached_last_study_dates", "last_study_date",
                        Counter(p["last_study_date"] for p in patients))
    db.execute(f"UPDATE sync_state SET newest_study_date = {cache.NEWEST_STUDY_DATE} WHERE id = 1")


def create_study_date_tables(db):
    """Create cached_patient_dates and cached_modality_dates as version 10 has them: each date row carries its
    patient's name and PatientID, read in place (see create_tables_in_their_keys)."""
    columns = """study_date CHAR(10) NOT NULL,
        patient_orthanc_id CHAR(44) NOT NULL,
        previous_date CHAR(10) NOT NULL,
        patient_last_study_date CHAR(10) NOT NULL,
        name_key VARCHAR(324) NOT NULL,
        patient_id_key VARCHAR(64) NOT NULL"""
    create_tables_in_their_keys(db, [
        f"CREATE TABLE cached_patient_dates ({columns}, PRIMARY KEY (study_date, patient_orthanc_id))",
        f"CREATE TABLE cached_modality_dates (modality VARCHAR(16) NOT NULL, {columns}, "
        "PRIMARY KEY (modality, study_date, patient_orthanc_id))",
    ])


def fill_period_patients(db):
    """Fill cached_period_patients from the cached patients and their date rows."""
    from pacs_lite import cache

    patients = db.query("SELECT orthanc_id, last_study_date FROM cached_patients")
    cache.save_period_patients(db, patients, cache.study_periods_of(db, [p["orthanc_id"] for p in patients]))


def count_period_steps(db):
    """Fill cached_period_counts from cached_period_patients: each patient's years and months."""
    from pacs_lite import cache

    periods = {}
    for row in db.query("SELECT orthanc_id, modality, period FROM cached_period_patients"):
        periods.setdefault(row["orthanc_id"], set()).add((row["modality"], row["period"]))
    cache.add_to_period_counts(db, {}, periods)


def forget_impossible_study_dates(db):
    """Make the study dates that are no day of the calendar ('2020-13-45') unknown, as the sync now reads them
    (see sync.dicom_date), and refresh their patients. Their patients are also found by their date rows, so that
    a run that stopped part-way refreshes them when run again."""
    from pacs_lite import sync

    dates = db.query("SELECT study_date FROM cached_studies UNION SELECT study_date FROM cached_patient_dates")
    impossible = [row["study_date"] for row in dates
                  if row["study_date"] and not sync.dicom_date(row["study_date"].replace("-", ""))]
    if not impossible:
        return
    marks = ", ".join("?" for _ in impossible)
    patients = {row["patient_orthanc_id"] for row in db.query(
        f"SELECT patient_orthanc_id FROM cached_studies WHERE study_date IN ({marks}) UNION "
        f"SELECT patient_orthanc_id FROM cached_patient_dates WHERE study_date IN ({marks})", impossible * 2)}
    db.execute(f"UPDATE cached_studies SET study_date = '' WHERE study_date IN ({marks})", impossible)
    sync.refresh_patients(db, patients, utc_now())


def remade_in_its_key(table, create_table, patient_column, fill):
    """Return the migration steps that make a table the cache derives, stored in its key (see
    create_tables_in_their_keys), with an index on its patient column, and fill it (fill: a function of db). The
    table is dropped first, so that the steps can run again after an upgrade stopped part-way."""
    return [
        f"DROP TABLE IF EXISTS {table}",
        lambda db: create_tables_in_their_keys(db, [create_table]),
        f"CREATE INDEX {table}_patient ON {table} ({patient_column})",
        fill,
    ]


def create_tables_in_their_keys(db, tables):
    """Run CREATE TABLE statements (MySQL dialect, without table options). SQLite stores the tables in their keys
    (WITHOUT ROWID), as InnoDB stores every table, so that a range of the key reads each row's other columns in
    place."""
    for table in tables:
        for statement in statements_for(db, f"{table} ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"):
            db.execute(f"{statement} WITHOUT ROWID" if db.dialect == "sqlite" else statement)


def fill_name_prefix_dates(db):
    """Fill cached_name_prefix_dates from the cached name prefix and date rows."""
    from pacs_lite import cache

    cache.save_name_prefix_dates(db)


def fill_name_prefix_patients(db):
    """Fill cached_name_prefix_patients from the cached patients."""
    from pacs_lite import cache

    cache.save_name_prefix_patients(db, db.query("SELECT orthanc_id, name_key, last_study_date, modalities "
                                                 "FROM cached_patients"))


def fill_study_dates(db):
    """Fill cached_patient_dates, cached_modality_dates and cached_period_counts from the cached patients and
    studies."""
    from pacs_lite import cache

    cache.save_study_dates(db, db.query("SELECT orthanc_id, last_study_date, name_key, patient_id_key "
                                        "FROM cached_patients"))


PERIOD_COUNTS_TABLE = """CREATE TABLE cached_period_counts (
    modality VARCHAR(16) NOT NULL,
    span VARCHAR(5) NOT NULL,
    period VARCHAR(7) NOT NULL,
    previous_period VARCHAR(7) NOT NULL,
    patient_count INTEGER NOT NULL,
    PRIMARY KEY (modality, span, period, previous_period)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""

# version -> statements (SQL in the MySQL dialect, or a function of db) that bring version - 1 up to it.
MIGRATIONS = {
    2: [
        # One row per word of a patient's name, for word-prefix search that an index serves.
        """CREATE TABLE cached_patient_words (
            word VARCHAR(64) NOT NULL,
            patient_orthanc_id CHAR(44) NOT NULL,
            PRIMARY KEY (word, patient_orthanc_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "CREATE INDEX cached_patient_words_patient ON cached_patient_words (patient_orthanc_id)",
        # The instances of studies opened in the viewer: which study an image belongs to.
        """CREATE TABLE cached_instances (
            orthanc_id CHAR(44) NOT NULL PRIMARY KEY,
            study_orthanc_id CHAR(44) NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "CREATE INDEX cached_instances_study ON cached_instances (study_orthanc_id)",
        "CREATE INDEX cached_series_study_modality ON cached_series (study_orthanc_id, modality)",
        "CREATE INDEX study_access_log_user_study ON study_access_log (user_id, study_uid, accessed_at)",
        "ALTER TABLE cached_studies ADD COLUMN first_seen_at DATETIME NULL",
        "ALTER TABLE users ADD COLUMN previous_login_at DATETIME NULL",
        # A referring doctor's time-limited access to a patient outside their scope.
        """CREATE TABLE break_glass_grants (
            id BIGINT AUTO_INCREMENT PRIMARY KEY,
            user_id BIGINT NOT NULL,
            patient_orthanc_id CHAR(44) NOT NULL,
            reason VARCHAR(255) NOT NULL,
            granted_at DATETIME NOT NULL,
            expires_at DATETIME NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "CREATE INDEX break_glass_grants_user ON break_glass_grants (user_id, expires_at)",
        index_patient_names,
    ],
    3: [
        sort_indexes_with_ids,
        "CREATE INDEX cached_patients_name ON cached_patients (name_key, orthanc_id)",
        "CREATE INDEX cached_patients_patient_id ON cached_patients (patient_id_key, orthanc_id)",
        "CREATE INDEX cached_patient_words_patient ON cached_patient_words (patient_orthanc_id, word)",
        "CREATE INDEX cached_series_modality ON cached_series (modality, study_orthanc_id)",
        # The worklist's unfiltered total, kept by cache.save_patients and cache.delete_patients.
        "ALTER TABLE sync_state ADD COLUMN patient_count INTEGER NOT NULL DEFAULT 0",
        "UPDATE sync_state SET patient_count = (SELECT COUNT(*) FROM cached_patients) WHERE id = 1",
    ],
    4: [
        # Covering indexes for the worklist's study-level questions (see bench/README.md).
        "CREATE INDEX cached_studies_patient_arrival ON cached_studies (patient_orthanc_id, first_seen_at)",
        "CREATE INDEX cached_studies_date_patient ON cached_studies (study_date, patient_orthanc_id, modalities)",
        "CREATE INDEX cached_studies_referring_patient ON cached_studies "
        "(referring_physician_key, patient_orthanc_id, study_date)",
    ],
    5: [
        # How many patients have a name word starting with each short prefix: the exact total of
        # a broad search without counting thousands of words (kept by cache.save_patient_words).
        """CREATE TABLE cached_name_prefixes (
            prefix VARCHAR(3) NOT NULL PRIMARY KEY,
            patient_count INTEGER NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        # (Counted in version 6, once the column holds the longest prefix.)
        # Each name word's row carries the whole name (see cache.save_patient_words).
        "ALTER TABLE cached_patient_words ADD COLUMN name_key VARCHAR(324) NOT NULL DEFAULT ''",
        """UPDATE cached_patient_words SET name_key = COALESCE((
            SELECT p.name_key FROM cached_patients p WHERE p.orthanc_id = cached_patient_words.patient_orthanc_id), '')""",
        # When the patient's newest study arrived in the cache: "new since your last login" without a query.
        "ALTER TABLE cached_patients ADD COLUMN last_arrival_at DATETIME NULL",
        """UPDATE cached_patients SET last_arrival_at = (
            SELECT MAX(s.first_seen_at) FROM cached_studies s WHERE s.patient_orthanc_id = cached_patients.orthanc_id)""",
        # Each patient as each referring physician sees them (their referred studies only): a referring
        # doctor's worklist is then read like everyone's, along an index (kept by sync.refresh_patients).
        f"CREATE TABLE cached_referrals ({REFERRAL_COLUMNS}) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        *REFERRAL_INDEXES,
        fill_referrals,
        # A referring doctor's worklist with filters or break-glass grants, read from this index alone.
        drop_referring_index,
        "CREATE INDEX cached_studies_referring_patient ON cached_studies "
        "(referring_physician_key, patient_orthanc_id, study_date, modalities, first_seen_at)",
    ],
    6: [
        # Changes with every write to cached_patients: the worklist's page anchors are kept under it.
        "ALTER TABLE sync_state ADD COLUMN patients_version BIGINT NOT NULL DEFAULT 0",
        set_first_patients_version,
        # Each study carries its patient's last study date (kept by cache.save_patients), and the date index
        # holds it: a date filter's patients are sorted newest first from that index alone.
        "ALTER TABLE cached_studies ADD COLUMN patient_last_study_date CHAR(10) NOT NULL DEFAULT ''",
        """UPDATE cached_studies SET patient_last_study_date = COALESCE((
            SELECT p.last_study_date FROM cached_patients p WHERE p.orthanc_id = cached_studies.patient_orthanc_id), '')""",
        drop_date_index,
        "CREATE INDEX cached_studies_date_patient ON cached_studies "
        "(study_date, patient_orthanc_id, modalities, patient_last_study_date)",
        keep_words_in_their_key,
        # Longer prefixes too: a search of one such word gets its exact total, and a longer word a bound.
        widen_name_prefixes,
        "DELETE FROM cached_name_prefixes",
        count_name_prefixes,
    ],
    7: [
        # Each patient under each modality of their studies, newest first, and how many patients each modality
        # has (kept by cache.save_patients): a modality filter reads its page and its total from these.
        """CREATE TABLE cached_patient_modalities (
            modality VARCHAR(16) NOT NULL,
            last_study_date CHAR(10) NOT NULL,
            orthanc_id CHAR(44) NOT NULL,
            PRIMARY KEY (modality, last_study_date, orthanc_id)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "CREATE INDEX cached_patient_modalities_patient ON cached_patient_modalities (orthanc_id, modality)",
        """CREATE TABLE cached_modality_counts (
            modality VARCHAR(16) NOT NULL PRIMARY KEY,
            patient_count INTEGER NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        # Each modality and date of each patient's studies, with the patient's last study date (kept by
        # cache.save_patients): a date range and a modality read their few patients from one range of it. The
        # key holds every column, so that SQLite reads it alone too.
        """CREATE TABLE cached_modality_dates (
            modality VARCHAR(16) NOT NULL,
            study_date CHAR(10) NOT NULL,
            patient_orthanc_id CHAR(44) NOT NULL,
            patient_last_study_date CHAR(10) NOT NULL,
            PRIMARY KEY (modality, study_date, patient_orthanc_id, patient_last_study_date)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "CREATE INDEX cached_modality_dates_patient ON cached_modality_dates (patient_orthanc_id)",
        # How many patients have their last study on each date, and the newest: a date range open at its end
        # (or reaching past the newest study) matches the patients whose last study is in it.
        """CREATE TABLE cached_last_study_dates (
            last_study_date CHAR(10) NOT NULL PRIMARY KEY,
            patient_count INTEGER NOT NULL
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "ALTER TABLE sync_state ADD COLUMN newest_study_date CHAR(10) NOT NULL DEFAULT ''",
        fill_patient_modalities,
    ],
    8: [
        # Each name word carries its patient's last study date: a search's matches are sorted newest first
        # without reading their patients.
        "ALTER TABLE cached_patient_words ADD COLUMN last_study_date CHAR(10) NOT NULL DEFAULT ''",
        """UPDATE cached_patient_words SET last_study_date = COALESCE((
            SELECT p.last_study_date FROM cached_patients p WHERE p.orthanc_id = cached_patient_words.patient_orthanc_id
        ), '')""",
    ],
    9: [
        # Each date of each patient's studies, and each modality and date, with the date before it (kept by
        # cache.save_patients): the patients a date range keeps are its rows whose date before is not in it, one
        # each, so they are counted and read without gathering each patient's rows. The keys hold every column,
        # so that SQLite reads them alone too; the patient indexes test one patient's dates.
        "DROP TABLE cached_modality_dates",
        """CREATE TABLE cached_modality_dates (
            modality VARCHAR(16) NOT NULL,
            study_date CHAR(10) NOT NULL,
            patient_orthanc_id CHAR(44) NOT NULL,
            patient_last_study_date CHAR(10) NOT NULL,
            previous_date CHAR(10) NOT NULL,
            PRIMARY KEY (modality, study_date, patient_orthanc_id, patient_last_study_date, previous_date)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "CREATE INDEX cached_modality_dates_patient ON cached_modality_dates "
        "(patient_orthanc_id, modality, study_date)",
        """CREATE TABLE cached_patient_dates (
            study_date CHAR(10) NOT NULL,
            patient_orthanc_id CHAR(44) NOT NULL,
            patient_last_study_date CHAR(10) NOT NULL,
            previous_date CHAR(10) NOT NULL,
            PRIMARY KEY (study_date, patient_orthanc_id, patient_last_study_date, previous_date)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        "CREATE INDEX cached_patient_dates_patient ON cached_patient_dates (patient_orthanc_id, study_date)",
        # (Filled in version 10, which gives each row its patient's name.)
        # The worklist's date filters read the tables above instead.
        drop_date_index,
        "ALTER TABLE cached_studies DROP COLUMN patient_last_study_date",
        # Each name word carries its patient's modalities too: a search's matches are tested against a modality
        # filter without reading their patients.
        "ALTER TABLE cached_patient_words ADD COLUMN modalities VARCHAR(255) NOT NULL DEFAULT ''",
        """UPDATE cached_patient_words SET modalities = COALESCE((
            SELECT p.modalities FROM cached_patients p WHERE p.orthanc_id = cached_patient_words.patient_orthanc_id
        ), '')""",
    ],
    10: [
        # Every step can run again: MariaDB commits each DDL statement by itself, so an upgrade that stopped
        # part-way (a full disk, a killed process) is finished by running init-db again.
        # Four-character prefixes too: a search of one four-letter word reads its exact total here and only sorts
        # its matches, and a longer word is bounded by its first four letters.
        widen_name_prefixes,
        "DELETE FROM cached_name_prefixes",
        count_name_prefixes,
        # How many patients have a name word starting with each prefix and a study of each modality (kept by
        # cache.save_patient_words): the exact total of a search of one short word with a modality filter.
        "DROP TABLE IF EXISTS cached_name_prefix_modalities",
        """CREATE TABLE cached_name_prefix_modalities (
            prefix VARCHAR(4) NOT NULL,
            modality VARCHAR(16) NOT NULL,
            patient_count INTEGER NOT NULL,
            PRIMARY KEY (prefix, modality)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
        count_name_prefix_modalities,
        # Each date row carries its patient's name and PatientID (kept by cache.save_study_dates): a search with a
        # date range that keeps fewer patients tests the range's own rows, without reading the patients.
        "DROP TABLE IF EXISTS cached_modality_dates",
        "DROP TABLE IF EXISTS cached_patient_dates",
        create_study_date_tables,
        "CREATE INDEX cached_modality_dates_patient ON cached_modality_dates "
        "(patient_orthanc_id, modality, study_date)",
        "CREATE INDEX cached_patient_dates_patient ON cached_patient_dates (patient_orthanc_id, study_date)",
        # How many patients had a study in each year and month, and a study of each modality (kept by
        # cache.save_study_dates), in the layout of version 14, which save_study_dates fills.
        "DROP TABLE IF EXISTS cached_period_counts",
        PERIOD_COUNTS_TABLE,
        fill_study_dates,
    ],
    11: [
        # Each patient under each prefix of their name words, newest first, with their modalities (kept by
        # cache.save_patients): a search of one short word reads its page in this order, without sorting its
        # matches. Every step can run again, as in version 10.
        *remade_in_its_key("cached_name_prefix_patients", """CREATE TABLE cached_name_prefix_patients (
            prefix VARCHAR(4) NOT NULL,
            last_study_date CHAR(10) NOT NULL,
            orthanc_id CHAR(44) NOT NULL,
            modalities VARCHAR(255) NOT NULL,
            PRIMARY KEY (prefix, last_study_date, orthanc_id))""", "orthanc_id", fill_name_prefix_patients),
    ],
    12: [
        # Each patient under each year and month in which they had a study, and had a study of each modality
        # (modality '' for any), newest first (kept by cache.save_patients): a whole year or month reads its page
        # in this order. Every step can run again, as in version 10.
        *remade_in_its_key("cached_period_patients", """CREATE TABLE cached_period_patients (
            modality VARCHAR(16) NOT NULL,
            period VARCHAR(7) NOT NULL,
            last_study_date CHAR(10) NOT NULL,
            orthanc_id CHAR(44) NOT NULL,
            PRIMARY KEY (modality, period, last_study_date, orthanc_id))""", "orthanc_id", fill_period_patients),
    ],
    13: [
        keep_referrals_in_their_key,
    ],
    14: [
        # How many patients had a study in each year and month, and a study of each modality (modality '' for
        # any), by the period of the same span in which they had one before ('' for none; kept by
        # cache.save_study_dates): the total of any range of whole years or months is a sum of these counts. Every
        # step can run again, as in version 10.
        "DROP TABLE IF EXISTS cached_period_counts",
        PERIOD_COUNTS_TABLE,
        count_period_steps,
    ],
    15: [
        # Each patient's known study dates, with the date before, under each prefix of their name words (kept by
        # cache.save_patients): a search of one short word with a date range counts and reads its patients from
        # one index range. Every step can run again, as in version 10.
        *remade_in_its_key("cached_name_prefix_dates", """CREATE TABLE cached_name_prefix_dates (
            prefix VARCHAR(4) NOT NULL,
            study_date CHAR(10) NOT NULL,
            patient_orthanc_id CHAR(44) NOT NULL,
            previous_date CHAR(10) NOT NULL,
            patient_last_study_date CHAR(10) NOT NULL,
            PRIMARY KEY (prefix, study_date, patient_orthanc_id))""", "patient_orthanc_id", fill_name_prefix_dates),
        # Every date in the cache is a day of the calendar, so that a range of whole periods holds the same dates
        # compared as text and counted by period. This refreshes patients through cache.save_patients, which
        # writes every table above: it stays after the last of them is made.
        forget_impossible_study_dates,
    ],
}

LATEST_VERSION = max([1, *MIGRATIONS])


def current_version(db):
    """Return the schema version of the database, 0 when it has no schema yet."""
    if "schema_version" not in db.table_names():
        return 0
    return db.query_value("SELECT MAX(version) FROM schema_version") or 0


def statements_for(db, script):
    """Return the statements of a MySQL-dialect script for this database."""
    if db.dialect == "sqlite":
        script = sqlite_ddl(script)
    return split_statements(script)


def init_db(db):
    """Create or upgrade the schema; return (version before, version after)."""
    before = current_version(db)
    if before > LATEST_VERSION:
        raise RuntimeError(
            f"the database has schema version {before}, newer than this pacs_lite knows ({LATEST_VERSION}); "
            "upgrade pacs_lite"
        )
    if before == 0:
        apply(db, 1, [resource_path("schema.sql").read_text(encoding="utf-8")])
    for version in range(max(before, 1) + 1, LATEST_VERSION + 1):
        apply(db, version, MIGRATIONS[version])
    return before, LATEST_VERSION


def apply(db, version, steps):
    """Run one version's steps (SQL scripts or functions of db) and record it.

    MySQL commits each DDL statement by itself, so a failure part-way leaves
    the earlier statements applied; the version row is written last.
    """
    with db.transaction():
        for step in steps:
            if callable(step):
                step(db)
                continue
            for statement in statements_for(db, step):
                db.execute(statement)
        if version == 1:
            db.execute("INSERT INTO sync_state (id, last_seq) VALUES (1, 0)")
        db.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, utc_now()))
