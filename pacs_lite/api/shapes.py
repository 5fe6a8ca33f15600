"""Turn cache rows into the API's JSON fields (names as in docs/api.md)."""

from pacs_lite.clock import iso_utc


def modality_list(modalities):
    """Turn the stored "CT,MR" into ["CT", "MR"]."""
    return [m for m in (modalities or "").split(",") if m]


def patient_json(row, has_new_studies=False):
    """Shape a patient row as a worklist entry."""
    return {
        "orthancId": row["orthanc_id"],
        "patientID": row["patient_id"],
        "patientName": row["patient_name"],
        "birthDate": row["birth_date"],
        "sex": row["sex"],
        "studyCount": row["study_count"],
        "lastStudyDate": row["last_study_date"],
        "modalities": modality_list(row["modalities"]),
        "hasNewStudies": has_new_studies,
    }


def study_json(row, since=None):
    """Shape a study row for the study browser; isNew when it arrived after since."""
    return {
        "orthancId": row["orthanc_id"],
        "studyUID": row["study_uid"],
        "studyDate": row["study_date"],
        "studyTime": row["study_time"],
        "description": row["description"],
        "accessionNumber": row["accession_number"],
        "modalities": modality_list(row["modalities"]),
        "referringPhysician": row["referring_physician"],
        "seriesCount": row["series_count"],
        "instanceCount": row["instance_count"],
        "isStable": bool(row["is_stable"]),
        "isNew": bool(since and row["first_seen_at"] and row["first_seen_at"] > since),
    }


def cache_json(state, now):
    """Say how fresh the cache is, and whether the last sync failed."""
    synced_at = state["last_success_at"] if state else None
    failing = bool(state and state["last_error"] and (
        synced_at is None or (state["last_error_at"] and state["last_error_at"] >= synced_at)))
    return {
        "syncedAt": iso_utc(synced_at),
        "ageSeconds": int((now - synced_at).total_seconds()) if synced_at else None,
        "orthancError": state["last_error"] if failing else "",
    }
