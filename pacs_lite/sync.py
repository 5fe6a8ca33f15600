"""Keep the SQL cache true to Orthanc: incremental passes over the changes feed, full reconciles, a follower.

Orthanc's /changes feed says which studies changed since a sequence number,
but never that one was deleted (see shared ORTHANC notes): deletions are found
by comparing the study ids Orthanc lists with the cache, and by a 404 when a
cached study is opened (evict_study).

Every write happens in a transaction that also records how far the feed is
covered, so a pass killed midway leaves the cache consistent and the next one
takes over where it stopped.
"""

import datetime
import logging
import time
from dataclasses import dataclass, field

from pacs_lite import cache, schema
from pacs_lite.clock import utc_now
from pacs_lite.db import DatabaseUnavailable, connect, exclusive_lock, forget_thread_connections
from pacs_lite.names import display_name, person_name_key, search_key
from pacs_lite.orthanc import OrthancError, OrthancNotFound, is_orthanc_id

log = logging.getLogger(__name__)

FEED_PAGE = 1000  # changes read per call
LIST_PAGE = 500  # studies or series read per call in a full pass
WRITE_BATCH = 200  # studies written per transaction

# Changes that may alter what the cache shows of a study.
STUDY_CHANGES = {"NewStudy", "StableStudy", "ModifiedStudy", "AnonymizedStudy"}
SERIES_CHANGES = {"NewSeries", "StableSeries", "CompletedSeries", "ModifiedSeries", "AnonymizedSeries"}
LOCK_NAME = "pacs_lite_sync"


class SyncBusy(Exception):
    """Another sync holds the lock."""


class SchemaMismatch(Exception):
    """The database's schema is not the one this pacs_lite writes: init-db has not been run since an upgrade, or
    this process is an older pacs_lite still running."""


def check_schema(db):
    """Raise SchemaMismatch, saying what to do, unless the database has the schema version this code writes."""
    version, latest = schema.current_version(db), schema.LATEST_VERSION
    if version < latest:
        raise SchemaMismatch(f"the {db.url.describe()} has schema version {version} and this pacs_lite writes "
                             f"version {latest}: run 'pacs-lite init-db'")
    if version > latest:
        raise SchemaMismatch(f"the {db.url.describe()} has schema version {version}, newer than this pacs_lite "
                             f"({latest}): an older pacs_lite is still running; restart it from the upgraded one")


@dataclass
class SyncResult:
    """What one pass did."""

    full: bool = False
    added: int = 0
    updated: int = 0
    removed: int = 0
    last_seq: int = 0
    seconds: float = 0.0
    reason: str = ""
    touched_patients: set = field(default_factory=set)

    def summary(self):
        """Say in one line what the pass did."""
        kind = "full" if self.full else "incremental"
        why = f" ({self.reason})" if self.reason else ""
        return (
            f"{kind} sync{why}: {self.added} studies added, {self.updated} updated, {self.removed} removed "
            f"in {self.seconds:.2f} s; last change {self.last_seq}"
        )


def dicom_date(value):
    """Turn a DICOM date (YYYYMMDD) into ISO 8601, or '' when it is not a day of the calendar ('20201345')."""
    value = (value or "").strip()
    if len(value) != 8 or not value.isdigit():
        return ""
    try:
        return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()
    except ValueError:
        return ""


def series_number(value):
    """Read a SeriesNumber (IS) as an int, or None."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def series_row(series, now):
    """Build a cached_series row from Orthanc's expanded series."""
    tags = series.get("MainDicomTags", {})
    return {
        "orthanc_id": series["ID"],
        "study_orthanc_id": series["ParentStudy"],
        "series_uid": tags.get("SeriesInstanceUID", "")[:64],
        "series_number": series_number(tags.get("SeriesNumber")),
        "modality": tags.get("Modality", "").strip()[:16],
        "description": tags.get("SeriesDescription", "")[:64],
        "body_part": tags.get("BodyPartExamined", "")[:16],
        "instance_count": len(series.get("Instances", [])),
        "updated_at": now,
    }


def study_row(study, series_rows, now):
    """Build a cached_studies row from Orthanc's expanded study and its series rows."""
    tags = study.get("MainDicomTags", {})
    patient = study.get("PatientMainDicomTags", {})
    referring = tags.get("ReferringPhysicianName", "")
    modalities = sorted({s["modality"] for s in series_rows if s["modality"]})
    return {
        "orthanc_id": study["ID"],
        "patient_orthanc_id": study["ParentPatient"],
        "study_uid": tags.get("StudyInstanceUID", "")[:64],
        "study_date": dicom_date(tags.get("StudyDate")),
        "study_time": tags.get("StudyTime", "")[:16],
        "description": tags.get("StudyDescription", "")[:64],
        "accession_number": tags.get("AccessionNumber", "")[:16],
        "referring_physician": display_name(referring)[:324],
        "referring_physician_key": person_name_key(referring)[:324],
        "modalities": ",".join(modalities)[:255],
        "series_count": len(series_rows),
        "instance_count": sum(s["instance_count"] for s in series_rows),
        "patient_id": patient.get("PatientID", "")[:64],
        "patient_name": patient.get("PatientName", "")[:324],
        "birth_date": dicom_date(patient.get("PatientBirthDate")),
        "sex": patient.get("PatientSex", "")[:16],
        "is_stable": int(bool(study.get("IsStable"))),
        "orthanc_updated": study.get("LastUpdate", "")[:32],
        "updated_at": now,
        "first_seen_at": now,
    }


def patient_row(patient_orthanc_id, studies, now):
    """Derive a cached_patients row from the patient's cached studies.

    The newest study's copy of the patient tags wins: Orthanc's own patient
    resource keeps the first name it saw, even after a rename.
    """
    newest = max(studies, key=lambda s: (s["study_date"], s["study_time"]))
    name = newest["patient_name"]
    return {
        "orthanc_id": patient_orthanc_id,
        "patient_id": newest["patient_id"],
        "patient_name": display_name(name)[:324],
        "name_key": search_key(name)[:324],
        "patient_id_key": search_key(newest["patient_id"])[:64],
        "birth_date": newest["birth_date"],
        "sex": newest["sex"],
        **study_summary(studies),
        "updated_at": now,
    }


def study_summary(studies):
    """Return the columns of a patient row that are derived from some of their studies."""
    modalities = sorted({m for s in studies for m in s["modalities"].split(",") if m})
    return {
        "study_count": len(studies),
        "last_study_date": max(s["study_date"] for s in studies),
        "modalities": ",".join(modalities)[:255],
        "last_arrival_at": max((s["first_seen_at"] for s in studies if s["first_seen_at"]), default=None),
    }


def referral_rows(patient, studies):
    """Return the cached_referrals rows of a patient (a patient_row): the patient as each referring physician
    of their studies sees them, from the studies that physician referred."""
    by_physician = {}
    for study in studies:
        if study["referring_physician_key"]:
            by_physician.setdefault(study["referring_physician_key"], []).append(study)
    return [{**patient, **study_summary(own), "referring_physician_key": key}
            for key, own in sorted(by_physician.items())]


def refresh_patients(db, patient_orthanc_ids, now):
    """Recompute the rows of some patients from their cached studies; drop those left without studies."""
    by_patient = {}
    for study in cache.studies_of_patients(db, patient_orthanc_ids):
        by_patient.setdefault(study["patient_orthanc_id"], []).append(study)
    patients = [patient_row(pid, studies, now) for pid, studies in by_patient.items()]
    cache.save_patients(db, patients)
    cache.save_referrals(db, patient_orthanc_ids,
                         [row for p in patients for row in referral_rows(p, by_patient[p["orthanc_id"]])])
    cache.delete_patients(db, set(patient_orthanc_ids) - set(by_patient))


def write_studies(db, studies_with_series, now):
    """Save studies (each with its expanded series) and refresh their patients; caller commits."""
    study_rows, series_rows = [], []
    for study, series in studies_with_series:
        rows = [series_row(s, now) for s in series]
        series_rows += rows
        study_rows.append(study_row(study, rows, now))
    # The patients the studies had, also under another Orthanc id (a study sent again with another PatientID
    # replaces the row of its UID), and the patients they have now.
    patients = cache.patients_of_study_uids(db, [s["study_uid"] for s in study_rows])
    patients |= {s["patient_orthanc_id"] for s in study_rows}
    cache.save_studies(db, study_rows, series_rows)
    refresh_patients(db, patients, now)
    return patients


def remove_studies(db, orthanc_ids, now):
    """Delete studies from the cache and fix their patients' rows; caller commits."""
    patients = cache.patients_of_studies(db, orthanc_ids)
    cache.delete_studies(db, orthanc_ids)
    refresh_patients(db, patients, now)
    return patients


def evict_study(db, orthanc_id):
    """Drop a study Orthanc no longer has (it answered 404) from the cache at once."""
    with db.transaction():
        remove_studies(db, [orthanc_id], utc_now())
    log.info("evicted study %s: Orthanc no longer has it", orthanc_id)


class Syncer:
    """One sync pass (incremental or full) of an Orthanc into a database."""

    def __init__(self, db, orthanc, progress=None):
        self.db = db
        self.orthanc = orthanc
        # progress(done, total) after each study; it may raise to stop the pass.
        self.progress = progress or (lambda done, total: None)

    def run(self, full=False, check_deletions=True):
        """Run one pass and record the outcome in sync_state; return a SyncResult."""
        started = time.monotonic()
        try:
            result = self._run(full, check_deletions)
        except Exception as e:
            self.db.rollback()
            with self.db.transaction():
                cache.save_sync_error(self.db, utc_now(), describe_error(e))
            raise
        result.seconds = time.monotonic() - started
        with self.db.transaction():
            cache.save_sync_success(self.db, utc_now(), result.added, result.updated, result.removed,
                                    int(result.seconds * 1000), result.full)
        return result

    def _run(self, full, check_deletions):
        """Choose the kind of pass and run it."""
        state = cache.get_sync_state(self.db)
        last_seq = self.orthanc.last_change_seq()
        if full:
            return self.full_pass(last_seq, "asked for")
        if state["last_seq"] == 0 and not cache.study_ids(self.db):
            return self.full_pass(last_seq, "empty cache")
        if last_seq < state["last_seq"]:
            return self.full_pass(last_seq, "Orthanc's change feed went backwards")
        result = self.incremental_pass(state["last_seq"], last_seq)
        if check_deletions:
            result.removed += self.remove_deleted()
        return result

    def incremental_pass(self, since, last_seq):
        """Re-read every study the feed names after since, one feed page per transaction."""
        result = SyncResult(last_seq=since)
        known = cache.study_ids(self.db)
        while result.last_seq < last_seq:
            page = self.orthanc.changes(since=result.last_seq, limit=FEED_PAGE)
            study_ids = self.studies_in_changes(page["Changes"])
            fetched, gone = self.fetch_studies(study_ids)
            with self.db.transaction():
                now = utc_now()
                for batch in cache.chunks(fetched, WRITE_BATCH):
                    write_studies(self.db, batch, now)
                remove_studies(self.db, [g for g in gone if g in known], now)
                cache.save_sync_progress(self.db, page["Last"])
            for study, _ in fetched:
                if study["ID"] in known:
                    result.updated += 1
                else:
                    result.added += 1
                    known.add(study["ID"])
            result.removed += len([g for g in gone if g in known])
            known -= set(gone)
            result.last_seq = page["Last"]
            if page["Done"] or not page["Changes"]:
                break
        return result

    def studies_in_changes(self, changes):
        """Return the ids of the studies a page of changes touched, in feed order, once each."""
        study_ids = {}
        for change in changes:
            kind, resource_id = change.get("ChangeType"), change.get("ID", "")
            if kind in STUDY_CHANGES:
                study_ids[resource_id] = True
            elif kind in SERIES_CHANGES and is_orthanc_id(resource_id):
                try:
                    study_ids[self.orthanc.series(resource_id)["ParentStudy"]] = True
                except OrthancNotFound:
                    pass  # deleted since; the deletion check finds its study
        return [s for s in study_ids if is_orthanc_id(s)]

    def fetch_studies(self, study_ids):
        """Read studies with their series from Orthanc; return (found, gone)."""
        found, gone = [], []
        for done, study_id in enumerate(study_ids, 1):
            try:
                found.append((self.orthanc.study(study_id), self.orthanc.study_series(study_id)))
            except OrthancNotFound:
                gone.append(study_id)
            self.progress(done, len(study_ids))
        return found, gone

    def full_pass(self, last_seq, reason):
        """Read every study and series in bulk, write them in batches, drop what Orthanc lost."""
        result = SyncResult(full=True, reason=reason, last_seq=last_seq)
        studies = read_all(self.orthanc.studies_page)
        series_by_study = {}
        for series in read_all(self.orthanc.series_page):
            series_by_study.setdefault(series["ParentStudy"], []).append(series)
        known = cache.study_ids(self.db)
        seen = {s["ID"] for s in studies}
        done = 0
        for batch in cache.chunks(studies, WRITE_BATCH):
            with self.db.transaction():
                write_studies(self.db, [(s, series_by_study.get(s["ID"], [])) for s in batch], utc_now())
                for _ in batch:
                    done += 1
                    self.progress(done, len(studies))
        with self.db.transaction():
            gone = known - seen
            remove_studies(self.db, gone, utc_now())
            # Changes made during the walk come again in the next incremental pass.
            cache.save_sync_progress(self.db, last_seq)
        result.added = len(seen - known)
        result.updated = len(seen & known)
        result.removed = len(gone)
        return result

    def remove_deleted(self):
        """Drop cached studies Orthanc no longer lists; return how many went."""
        gone = cache.study_ids(self.db) - set(self.orthanc.study_ids())
        if gone:
            with self.db.transaction():
                remove_studies(self.db, gone, utc_now())
        return len(gone)


def read_all(read_page):
    """Read every item of a paged Orthanc list."""
    items, since = [], 0
    while True:
        page = read_page(since=since, limit=LIST_PAGE)
        items += page
        if len(page) < LIST_PAGE:
            return items
        since += LIST_PAGE


def describe_error(error):
    """Say what went wrong in a pass, for sync_state and the logs."""
    if isinstance(error, OrthancError):
        return error.message
    return f"{type(error).__name__}: {error}"


def sync_once(db, orthanc, database_url, full=False, check_deletions=True, progress=None):
    """Run one pass under the sync lock; raise SyncBusy when another sync holds it, and SchemaMismatch (writing
    nothing) when the database's schema is not this code's."""
    with exclusive_lock(database_url, LOCK_NAME) as got_lock:
        if not got_lock:
            raise SyncBusy("another sync is running")
        check_schema(db)
        return Syncer(db, orthanc, progress).run(full=full, check_deletions=check_deletions)


def follow(orthanc, database_url, interval, deletion_check_seconds, should_stop=lambda: False,
           sleep=time.sleep):
    """Sync every interval seconds until should_stop(); ride out Orthanc or database outages with backoff.

    A SchemaMismatch ends it: the cache's schema changed under this process
    (see sync_once), and only a restart of the upgraded pacs_lite can go on.
    """
    last_deletion_check = None
    backoff = interval
    try:
        while not should_stop():
            check = last_deletion_check is None or time.monotonic() - last_deletion_check >= deletion_check_seconds
            wait = interval
            try:
                result = sync_once(connect(database_url), orthanc, database_url, check_deletions=check)
                if check:
                    last_deletion_check = time.monotonic()
                if result.added or result.updated or result.removed or result.full:
                    log.info(result.summary())
                backoff = interval
            except SyncBusy:
                pass
            except (OrthancError, DatabaseUnavailable) as e:
                log.warning("sync failed: %s; trying again in %.0f s", describe_error(e), backoff)
                wait, backoff = backoff, min(backoff * 2, 60)
            sleep(wait)
    finally:
        forget_thread_connections()
