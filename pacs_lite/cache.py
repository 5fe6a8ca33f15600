"""SQL for the cache of Orthanc's metadata.

cached_patients (with cached_patient_words, the words of their names, and
cached_name_prefixes, how many patients each short word prefix has, and
cached_name_prefix_modalities, with each modality;
cached_patient_modalities, each patient under each modality of their
studies, and cached_modality_counts, how many patients each modality has;
cached_patient_dates and cached_modality_dates, each date of each patient's
studies, and each modality and date, with the date before it (and
cached_name_prefix_dates, each date under each name prefix), and
cached_period_counts, how many patients had a study in each year and month,
by the period of their study before;
cached_last_study_dates, how many patients have their last study on each
date),
cached_referrals (each patient as each referring physician sees them),
cached_studies, cached_series and sync_state.
"""

import calendar
import random
from collections import Counter

STUDY_COLUMNS = (
    "orthanc_id", "patient_orthanc_id", "study_uid", "study_date", "study_time", "description",
    "accession_number", "referring_physician", "referring_physician_key", "modalities", "series_count",
    "instance_count", "patient_id", "patient_name", "birth_date", "sex", "is_stable", "orthanc_updated",
    "updated_at", "first_seen_at",
)
SERIES_COLUMNS = (
    "orthanc_id", "study_orthanc_id", "series_uid", "series_number", "modality", "description", "body_part",
    "instance_count", "updated_at",
)
PREFIX_LENGTHS = (1, 2, 3, 4)  # cached_name_prefixes counts the patients of every name-word prefix this long
PATIENT_COLUMNS = (
    "orthanc_id", "patient_id", "patient_name", "name_key", "patient_id_key", "birth_date", "sex",
    "study_count", "last_study_date", "modalities", "last_arrival_at", "updated_at",
)
REFERRAL_COLUMNS = ("referring_physician_key", *PATIENT_COLUMNS)  # cached_referrals: a patient per physician
# Each known date row of patients under each of their name prefixes (see save_name_prefix_dates).
NAME_PREFIX_DATES = """INSERT INTO cached_name_prefix_dates
    (prefix, study_date, patient_orthanc_id, previous_date, patient_last_study_date)
    SELECT x.prefix, d.study_date, d.patient_orthanc_id, d.previous_date, d.patient_last_study_date
    FROM cached_name_prefix_patients x JOIN cached_patient_dates d ON d.patient_orthanc_id = x.orthanc_id
    WHERE d.study_date <> ''"""
NEWEST_STUDY_DATE = "COALESCE((SELECT MAX(last_study_date) FROM cached_patients), '')"  # for sync_state


def values(row, columns):
    """Return a row's values in column order."""
    return tuple(row[c] for c in columns)


def save_studies(db, studies, series):
    """Insert or update studies and their series; drop series the studies no longer have."""
    if not studies:
        return
    delete_where_in(db, "cached_series", "study_orthanc_id", [s["orthanc_id"] for s in studies])
    # A study re-sent under the same UID but a new Orthanc id replaces the old row.
    for chunk in chunks(studies, 500):
        marks = ", ".join("?" for _ in chunk)
        db.execute(
            f"DELETE FROM cached_studies WHERE study_uid IN ({marks}) AND orthanc_id NOT IN ({marks})",
            [s["study_uid"] for s in chunk] + [s["orthanc_id"] for s in chunk],
        )
    db.executemany(db.upsert_sql("cached_studies", STUDY_COLUMNS, ["orthanc_id"], insert_only=["first_seen_at"]),
                   [values(s, STUDY_COLUMNS) for s in studies])
    db.executemany(db.upsert_sql("cached_series", SERIES_COLUMNS, ["orthanc_id"]),
                   [values(s, SERIES_COLUMNS) for s in series])


def delete_studies(db, orthanc_ids):
    """Delete studies, their series and their known instances from the cache."""
    delete_where_in(db, "cached_instances", "study_orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_series", "study_orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_studies", "orthanc_id", orthanc_ids)


def study_ids(db):
    """Return the Orthanc ids of every cached study."""
    return {row["orthanc_id"] for row in db.query("SELECT orthanc_id FROM cached_studies")}


def patients_of_studies(db, orthanc_ids):
    """Return the Orthanc patient ids of some cached studies."""
    rows = query_where_in(db, "SELECT patient_orthanc_id FROM cached_studies", "orthanc_id", orthanc_ids)
    return {row["patient_orthanc_id"] for row in rows}


def patients_of_study_uids(db, study_uids):
    """Return the Orthanc patient ids of the cached studies with these StudyInstanceUIDs."""
    rows = query_where_in(db, "SELECT patient_orthanc_id FROM cached_studies", "study_uid", study_uids)
    return {row["patient_orthanc_id"] for row in rows}


def studies_of_patients(db, patient_orthanc_ids):
    """Return the cached studies of some patients (the fields a patient row is derived from)."""
    return query_where_in(
        db,
        """
        SELECT patient_orthanc_id, study_date, study_time, modalities, patient_id, patient_name, birth_date, sex,
            first_seen_at, referring_physician_key
        FROM cached_studies
        """,
        "patient_orthanc_id",
        patient_orthanc_ids,
    )


def last_study_dates_of(db, orthanc_ids):
    """Return {patient: last study date} of those of these patients that the cache holds."""
    rows = query_where_in(db, "SELECT orthanc_id, last_study_date FROM cached_patients", "orthanc_id", orthanc_ids)
    return {row["orthanc_id"]: row["last_study_date"] for row in rows}


def new_patients_version():
    """Return a new value for sync_state.patients_version: random, so that no two states of any cache share it."""
    return random.getrandbits(62)


def record_patients_change(db, before, after):
    """Keep the counts of a change to cached_patients, made already: before and after are {patient: last study
    date} of the patients changed (none for a new or deleted one).

    sync_state keeps the number of patients and the newest last study date,
    and gets a new patients_version (the worklist keeps what it read of
    cached_patients under it); cached_last_study_dates keeps how many
    patients have their last study on each date.
    """
    db.execute(
        f"UPDATE sync_state SET patient_count = patient_count + ?, patients_version = ?, "
        f"newest_study_date = {NEWEST_STUDY_DATE} WHERE id = 1",
        (len(after) - len(before), new_patients_version()),
    )
    change = Counter(after.values())
    change.subtract(before.values())
    add_to_counts(db, "cached_last_study_dates", "last_study_date", change)


def save_patients(db, patients):
    """Insert or update patient rows, the words of their names, their modalities and the dates of their studies
    (saved before)."""
    ids = [p["orthanc_id"] for p in patients]
    before = last_study_dates_of(db, set(ids))
    db.executemany(db.upsert_sql("cached_patients", PATIENT_COLUMNS, ["orthanc_id"]),
                   [values(p, PATIENT_COLUMNS) for p in patients])
    record_patients_change(db, before, {p["orthanc_id"]: p["last_study_date"] for p in patients})
    save_patient_words(db, patients)
    save_name_prefix_patients(db, patients)
    save_patient_modalities(db, patients)
    save_period_patients(db, patients, save_study_dates(db, patients))
    save_name_prefix_dates(db, ids)


def save_patient_words(db, patients):
    """Replace the name words of patients (dicts with orthanc_id, name_key, last_study_date and modalities),
    keeping the prefix counts.

    Each word's row carries the whole name_key, so that a search of several
    words finds the rarest one's rows and tests the others on the same row,
    and the patient's last study date and modalities, by which the worklist
    sorts and filters them.
    """
    ids = [p["orthanc_id"] for p in patients]
    before = name_prefixes_of(db, ids)
    delete_where_in(db, "cached_patient_words", "patient_orthanc_id", ids)
    words = {(word[:64], p["orthanc_id"], p["name_key"], p["last_study_date"], p["modalities"])
             for p in patients for word in p["name_key"].split()}
    db.executemany("INSERT INTO cached_patient_words (word, patient_orthanc_id, name_key, last_study_date, "
                   "modalities) VALUES (?, ?, ?, ?, ?)", sorted(words))
    after = {p["orthanc_id"]: (name_prefixes(p["name_key"].split()), modality_set(p["modalities"]))
             for p in patients}
    add_to_prefix_counts(db, before, after)


def save_name_prefix_patients(db, patients):
    """Replace the cached_name_prefix_patients rows of patients (dicts with orthanc_id, name_key, last_study_date
    and modalities): one for each prefix of their name words (see name_prefixes), carrying the patient's last
    study date and modalities, so that a search of one short word reads its matches newest first."""
    delete_where_in(db, "cached_name_prefix_patients", "orthanc_id", [p["orthanc_id"] for p in patients])
    rows = {(prefix, p["last_study_date"], p["orthanc_id"], p["modalities"])
            for p in patients for prefix in name_prefixes(p["name_key"].split())}
    db.executemany("INSERT INTO cached_name_prefix_patients (prefix, last_study_date, orthanc_id, modalities) "
                   "VALUES (?, ?, ?, ?)", sorted(rows))


def save_name_prefix_dates(db, patient_orthanc_ids=None):
    """Replace the cached_name_prefix_dates rows of patients (None: of every patient): each row of their known
    dates (cached_patient_dates) under each prefix of their name words (cached_name_prefix_patients), both saved
    before, so that a search of one short word with a date range counts its patients as one index range."""
    if patient_orthanc_ids is None:
        db.execute("DELETE FROM cached_name_prefix_dates")
        db.execute(f"{NAME_PREFIX_DATES} ORDER BY x.prefix, d.study_date, d.patient_orthanc_id")
        return
    delete_where_in(db, "cached_name_prefix_dates", "patient_orthanc_id", patient_orthanc_ids)
    for chunk in chunks(patient_orthanc_ids, 500):
        marks = ", ".join("?" for _ in chunk)
        db.execute(f"{NAME_PREFIX_DATES} AND x.orthanc_id IN ({marks})", chunk)


def name_prefixes(words):
    """Return the first one to four characters of name words: the prefixes whose patient counts are kept."""
    return {word[:length] for word in words for length in PREFIX_LENGTHS}


def name_prefixes_of(db, patient_orthanc_ids):
    """Return {patient: (its name prefixes, its modalities)} from the cached words of these patients."""
    words, modalities = {}, {}
    for row in query_where_in(db, "SELECT patient_orthanc_id, word, modalities FROM cached_patient_words",
                              "patient_orthanc_id", patient_orthanc_ids):
        words.setdefault(row["patient_orthanc_id"], []).append(row["word"])
        modalities[row["patient_orthanc_id"]] = modality_set(row["modalities"])
    return {patient_id: (name_prefixes(own), modalities[patient_id]) for patient_id, own in words.items()}


def add_to_prefix_counts(db, before, after):
    """Keep cached_name_prefixes (the patients of each name prefix) and cached_name_prefix_modalities (of each
    prefix and modality) across a change: {patient: (name prefixes, modalities)} before and after it."""
    def prefixes(patients):
        return {patient_id: own for patient_id, (own, _) in patients.items()}

    def with_modalities(patients):
        return {patient_id: {(prefix, modality) for prefix in own for modality in modalities}
                for patient_id, (own, modalities) in patients.items()}

    add_to_counts(db, "cached_name_prefixes", "prefix", count_change(prefixes(before), prefixes(after)))
    add_to_counts(db, "cached_name_prefix_modalities", ("prefix", "modality"),
                  count_change(with_modalities(before), with_modalities(after)))


def count_change(before, after):
    """Return {key: change in its number of patients} from {patient: set of keys} before and after a change."""
    change = Counter()
    for patient_id in set(before) | set(after):
        change.update(after.get(patient_id, set()) - before.get(patient_id, set()))
        change.subtract(before.get(patient_id, set()) - after.get(patient_id, set()))
    return change


def add_to_counts(db, table, key_columns, change):
    """Add {key: number of patients} to the patient_count column of a table of kept counts. key_columns is the
    key's column, or a tuple of its columns, whose keys are then tuples too."""
    columns = key_columns if isinstance(key_columns, tuple) else (key_columns,)
    rows = [(*(key if isinstance(key_columns, tuple) else (key,)), n) for key, n in sorted(change.items()) if n]
    if rows:
        db.executemany(db.upsert_sql(table, (*columns, "patient_count"), columns, added=["patient_count"]), rows)


def save_patient_modalities(db, patients):
    """Replace the cached_patient_modalities rows of patients (dicts with orthanc_id, modalities and
    last_study_date), keeping the modality counts."""
    ids = [p["orthanc_id"] for p in patients]
    before = modalities_of(db, ids)
    delete_where_in(db, "cached_patient_modalities", "orthanc_id", ids)
    rows = {(modality, p["last_study_date"], p["orthanc_id"]) for p in patients
            for modality in modality_set(p["modalities"])}
    db.executemany("INSERT INTO cached_patient_modalities (modality, last_study_date, orthanc_id) VALUES (?, ?, ?)",
                   sorted(rows))
    after = {p["orthanc_id"]: modality_set(p["modalities"]) for p in patients}
    add_to_counts(db, "cached_modality_counts", "modality", count_change(before, after))


def save_study_dates(db, patients):
    """Replace the cached_patient_dates and cached_modality_dates rows of patients (dicts with orthanc_id,
    last_study_date, name_key and patient_id_key), from their cached studies (saved before).

    cached_patient_dates holds each date on which a patient had a study, and
    cached_modality_dates each date on which they had a study of each
    modality. Each row carries the patient's last study date, and the date
    before it (of the patient's studies, or of their studies of that
    modality; '' for the first): in a date range, a patient's first row is
    the one whose date before is not in it, so the patients with a study in
    the range are counted as rows, one each. Each row carries the patient's
    name and PatientID too, which a search tests on it.

    cached_period_counts keeps how many patients had a study in each year and
    month, and a study of each modality in each, by the period of their study
    before (see period_steps): the total of a range of whole years or
    months. Return those periods: {patient: {(modality, year or month)}}.
    """
    carried = {p["orthanc_id"]: (p["last_study_date"], p["name_key"], p["patient_id_key"]) for p in patients}
    before = study_periods_of(db, list(carried))
    delete_where_in(db, "cached_patient_dates", "patient_orthanc_id", list(carried))
    delete_where_in(db, "cached_modality_dates", "patient_orthanc_id", list(carried))
    dates, modality_dates = {}, {}
    for study in query_where_in(db, "SELECT patient_orthanc_id, study_date, modalities FROM cached_studies",
                                "patient_orthanc_id", carried):
        patient_id, date = study["patient_orthanc_id"], study["study_date"]
        dates.setdefault(patient_id, set()).add(date)
        for modality in modality_set(study["modalities"]):
            modality_dates.setdefault((modality, patient_id), set()).add(date)
    db.executemany("INSERT INTO cached_patient_dates (study_date, patient_orthanc_id, previous_date, "
                   "patient_last_study_date, name_key, patient_id_key) VALUES (?, ?, ?, ?, ?, ?)",
                   [(date, patient_id, previous, *carried[patient_id])
                    for patient_id, own in sorted(dates.items()) for date, previous in with_previous(own)])
    db.executemany("INSERT INTO cached_modality_dates (modality, study_date, patient_orthanc_id, previous_date, "
                   "patient_last_study_date, name_key, patient_id_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [(modality, date, patient_id, previous, *carried[patient_id])
                    for (modality, patient_id), own in sorted(modality_dates.items())
                    for date, previous in with_previous(own)])
    after = {}
    for patient_id, own in dates.items():
        after.setdefault(patient_id, set()).update(("", period) for date in own for period in periods(date))
    for (modality, patient_id), own in modality_dates.items():
        after[patient_id].update((modality, period) for date in own for period in periods(date))
    add_to_period_counts(db, before, after)
    return after


def add_to_period_counts(db, before, after):
    """Keep cached_period_counts across a change: {patient: {(modality, year or month)}} before and after it."""
    add_to_counts(db, "cached_period_counts", ("modality", "span", "period", "previous_period"),
                  count_change({patient_id: period_steps(own) for patient_id, own in before.items()},
                               {patient_id: period_steps(own) for patient_id, own in after.items()}))


def period_steps(periods):
    """Return {(modality, span, period, previous_period)} of one patient's {(modality, year or month)}: span is
    'year' or 'month', and previous_period the patient's period of that modality and span before it ('' for the
    first).

    In a range of whole periods, a patient's first period is the one whose
    period before is not in it: the patients with a study in the range are
    counted once each, as a sum of kept counts.
    """
    by_span = {}
    for modality, period in periods:
        by_span.setdefault((modality, period_span(period)), set()).add(period)
    return {(modality, span, period, previous) for (modality, span), own in by_span.items()
            for period, previous in with_previous(own)}


def period_span(period):
    """Return 'year' for a year ('2024') and 'month' for a month ('2024-03')."""
    return "year" if len(period) == 4 else "month"


def save_period_patients(db, patients, periods_by_patient):
    """Replace the cached_period_patients rows of patients (dicts with orthanc_id and last_study_date): one for
    each year and month in which they had a study, and a study of each modality (periods_by_patient: {patient:
    {(modality '' for any, year or month)}}, as save_study_dates returns), carrying their last study date, so that
    the page of a whole year or month is read newest first."""
    last_dates = {p["orthanc_id"]: p["last_study_date"] for p in patients}
    delete_where_in(db, "cached_period_patients", "orthanc_id", list(last_dates))
    db.executemany("INSERT INTO cached_period_patients (modality, period, last_study_date, orthanc_id) "
                   "VALUES (?, ?, ?, ?)", sorted((modality, period, last_dates[patient_id], patient_id)
                                                 for patient_id, own in periods_by_patient.items()
                                                 for modality, period in own))


def periods(date):
    """Return the year and the month ('2024', '2024-03') of a study date (a day of the calendar, see
    sync.dicom_date); none for an unknown date ('')."""
    return {date[:4], date[:7]} if date else set()


def period_range(period):
    """Return the first and last dates of a year ('2024') or a month ('2024-03')."""
    if len(period) == 4:
        return f"{period}-01-01", f"{period}-12-31"
    year, month = int(period[:4]), int(period[5:])
    last_day = calendar.mdays[month] + (month == 2 and calendar.isleap(year))
    return f"{period}-01", f"{period}-{last_day:02d}"


def study_periods_of(db, patient_orthanc_ids):
    """Return {patient: {(modality, year or month)}} of the years and months in which these patients had a study
    (modality ''), and a study of each modality, from their cached date rows."""
    found = {}
    for row in query_where_in(db, "SELECT patient_orthanc_id, study_date FROM cached_patient_dates",
                              "patient_orthanc_id", patient_orthanc_ids):
        found.setdefault(row["patient_orthanc_id"], set()).update(("", p) for p in periods(row["study_date"]))
    for row in query_where_in(db, "SELECT patient_orthanc_id, modality, study_date FROM cached_modality_dates",
                              "patient_orthanc_id", patient_orthanc_ids):
        found.setdefault(row["patient_orthanc_id"], set()).update(
            (row["modality"], p) for p in periods(row["study_date"]))
    return found


def with_previous(dates):
    """Return [(date, the date before it, '' for the first)] of a set of dates, in order."""
    ordered = sorted(dates)
    return list(zip(ordered, ["", *ordered]))


def modality_set(modalities):
    """Turn the stored "CT,MR" into {"CT", "MR"}."""
    return {m for m in modalities.split(",") if m}


def modalities_of(db, patient_orthanc_ids):
    """Return {patient: set of modalities} from the cached_patient_modalities rows of these patients."""
    found = {}
    for row in query_where_in(db, "SELECT orthanc_id, modality FROM cached_patient_modalities", "orthanc_id",
                              patient_orthanc_ids):
        found.setdefault(row["orthanc_id"], set()).add(row["modality"])
    return found


def save_referrals(db, patient_orthanc_ids, rows):
    """Replace the cached_referrals rows of some patients (dicts of REFERRAL_COLUMNS)."""
    delete_where_in(db, "cached_referrals", "orthanc_id", list(patient_orthanc_ids))
    names = ", ".join(REFERRAL_COLUMNS)
    marks = ", ".join("?" for _ in REFERRAL_COLUMNS)
    db.executemany(f"INSERT INTO cached_referrals ({names}) VALUES ({marks})",
                   [values(row, REFERRAL_COLUMNS) for row in rows])


def delete_patients(db, orthanc_ids):
    """Delete patient rows, the words of their names, their modalities and their referrals."""
    before = last_study_dates_of(db, set(orthanc_ids))
    add_to_prefix_counts(db, name_prefixes_of(db, list(orthanc_ids)), {})
    add_to_counts(db, "cached_modality_counts", "modality", count_change(modalities_of(db, list(orthanc_ids)), {}))
    add_to_period_counts(db, study_periods_of(db, list(orthanc_ids)), {})
    delete_where_in(db, "cached_patient_words", "patient_orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_name_prefix_patients", "orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_name_prefix_dates", "patient_orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_patient_modalities", "orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_patient_dates", "patient_orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_modality_dates", "patient_orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_period_patients", "orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_referrals", "orthanc_id", orthanc_ids)
    delete_where_in(db, "cached_patients", "orthanc_id", orthanc_ids)
    record_patients_change(db, before, {})


def counts(db):
    """Return how many patients, studies and series the cache holds."""
    return {
        "patients": db.query_value("SELECT COUNT(*) FROM cached_patients"),
        "studies": db.query_value("SELECT COUNT(*) FROM cached_studies"),
        "series": db.query_value("SELECT COUNT(*) FROM cached_series"),
    }


def get_sync_state(db):
    """Return the sync_state row."""
    return db.query_one("SELECT * FROM sync_state WHERE id = 1")


def save_sync_progress(db, last_seq):
    """Record the last change of Orthanc's feed that the cache covers."""
    db.execute("UPDATE sync_state SET last_seq = ? WHERE id = 1", (last_seq,))


def save_sync_success(db, now, added, updated, removed, duration_ms, full):
    """Record a finished pass."""
    db.execute(
        """
        UPDATE sync_state
        SET last_success_at = ?, last_error = '', studies_added = ?, studies_updated = ?, studies_removed = ?,
            last_duration_ms = ?
        WHERE id = 1
        """,
        (now, added, updated, removed, duration_ms),
    )
    if full:
        db.execute("UPDATE sync_state SET last_full_at = ? WHERE id = 1", (now,))


def save_sync_error(db, now, message):
    """Record why a pass failed."""
    db.execute("UPDATE sync_state SET last_error = ?, last_error_at = ? WHERE id = 1", (message[:1000], now))


def query_where_in(db, select, column, ids):
    """Return the rows of a SELECT (without WHERE) whose column is one of ids, asked 500 ids at a time."""
    rows = []
    for chunk in chunks(ids, 500):
        marks = ", ".join("?" for _ in chunk)
        rows += db.query(f"{select} WHERE {column} IN ({marks})", chunk)
    return rows


def delete_where_in(db, table, column, ids):
    """Delete the rows of a cache table whose column is one of ids (table and column are ours, not input)."""
    for chunk in chunks(ids, 500):
        marks = ", ".join("?" for _ in chunk)
        db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)


def chunks(items, size):
    """Split a list into lists of at most size items (SQL parameter lists stay small)."""
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]
