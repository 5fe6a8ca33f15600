"""SQL for a patient's studies, their series and instances, as a user may see them."""

from pacs_lite.visibility import visible_study_condition

STUDY_FIELDS = """s.orthanc_id, s.patient_orthanc_id, s.study_uid, s.study_date, s.study_time, s.description,
    s.accession_number, s.referring_physician, s.modalities, s.series_count, s.instance_count, s.patient_id,
    s.patient_name, s.birth_date, s.sex, s.is_stable, s.first_seen_at"""


def list_studies(db, patient_orthanc_id, scope):
    """Return the visible studies of a patient, newest first."""
    visible, params = visible_study_condition(scope)
    return db.query(
        f"""
        SELECT {STUDY_FIELDS}
        FROM cached_studies s
        WHERE s.patient_orthanc_id = ?
        AND {visible}
        ORDER BY s.study_date DESC, s.study_time DESC, s.orthanc_id
        """,
        [patient_orthanc_id, *params],
    )


def find_study(db, study_uid, scope):
    """Return a visible study by its StudyInstanceUID, or None."""
    visible, params = visible_study_condition(scope)
    return db.query_one(
        f"SELECT {STUDY_FIELDS} FROM cached_studies s WHERE s.study_uid = ? AND {visible}",
        [study_uid, *params],
    )


def find_study_by_orthanc_id(db, study_orthanc_id, scope):
    """Return a visible study by its Orthanc id, or None."""
    visible, params = visible_study_condition(scope)
    return db.query_one(
        f"SELECT {STUDY_FIELDS} FROM cached_studies s WHERE s.orthanc_id = ? AND {visible}",
        [study_orthanc_id, *params],
    )


def series_of_study(db, study_orthanc_id):
    """Return the cached series of a study."""
    return db.query(
        """
        SELECT orthanc_id, series_uid, series_number, modality, description, instance_count
        FROM cached_series
        WHERE study_orthanc_id = ?
        """,
        (study_orthanc_id,),
    )


def save_instances(db, study_orthanc_id, instance_ids):
    """Remember which study each instance belongs to (for the image proxy's access check)."""
    db.execute("DELETE FROM cached_instances WHERE study_orthanc_id = ?", (study_orthanc_id,))
    db.executemany(
        "INSERT INTO cached_instances (orthanc_id, study_orthanc_id) VALUES (?, ?)",
        [(instance_id, study_orthanc_id) for instance_id in instance_ids],
    )


def study_id_of_instance(db, instance_orthanc_id):
    """Return the Orthanc id of the study an instance belongs to, if known."""
    return db.query_value("SELECT study_orthanc_id FROM cached_instances WHERE orthanc_id = ?", (instance_orthanc_id,))


def find_patient_by_patient_id(db, patient_id):
    """Return the cached patient with exactly this DICOM PatientID, or None."""
    return db.query_one("SELECT orthanc_id, patient_id FROM cached_patients WHERE patient_id = ?", (patient_id,))


def grant_break_glass(db, user_id, patient_orthanc_id, reason, now, expires_at):
    """Record a break-glass grant of one patient to one user."""
    db.execute(
        """
        INSERT INTO break_glass_grants (user_id, patient_orthanc_id, reason, granted_at, expires_at)
        VALUES (?, ?, ?, ?, ?)
        """,
        (user_id, patient_orthanc_id, reason[:255], now, expires_at),
    )
