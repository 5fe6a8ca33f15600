"""Who may see which studies: the role rule of DESIGN.md, as a SQL condition on cached_studies.

Admins and radiologists see every study. A referring doctor sees the studies
whose referring physician matches their dicom_name (both normalised by
names.person_name_key), and every study of a patient they opened through
break-glass, while that grant lasts.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """What one user may see, at one moment."""

    user_id: int
    referring_key: str | None  # None: every study
    now: object = None  # the time break-glass grants are checked against

    @property
    def sees_everything(self):
        """Tell whether no study is hidden from this user."""
        return self.referring_key is None


def scope_for(user, now):
    """Return the Scope of a logged-in user."""
    if user.role == "referring_doctor":
        return Scope(user_id=user.id, referring_key=user.dicom_name_key, now=now)
    return Scope(user_id=user.id, referring_key=None, now=now)


def visible_study_condition(scope, alias="s"):
    """Return (SQL condition, params) keeping the studies (table alias) the scope may see."""
    if scope.sees_everything:
        return "1 = 1", []
    # An empty dicom_name matches no study: referring_physician_key '' would match unreferred studies.
    return (
        f"""({alias}.referring_physician_key = ? AND {alias}.referring_physician_key <> ''
        OR {alias}.patient_orthanc_id IN (
            SELECT patient_orthanc_id FROM break_glass_grants WHERE user_id = ? AND expires_at > ?))""",
        [scope.referring_key, scope.user_id, scope.now],
    )


def break_glass_patients(db, scope):
    """Return the Orthanc ids of the patients a referring doctor holds a live break-glass grant for."""
    rows = db.query(
        "SELECT DISTINCT patient_orthanc_id FROM break_glass_grants WHERE user_id = ? AND expires_at > ?",
        [scope.user_id, scope.now],
    )
    return [row["patient_orthanc_id"] for row in rows]


def visible_studies(scope, granted):
    """Return (a FROM-clause source, params) holding the studies a referring doctor may see.

    granted are their break_glass_patients. Without any, the source is their
    referrals alone, which one index holds with every column a worklist
    groups on; with some, it is a union of two index lookups (an OR of the
    two would make the database read every study).
    """
    referrals = """SELECT patient_orthanc_id, study_date, modalities, first_seen_at FROM cached_studies
        WHERE referring_physician_key = ? AND referring_physician_key <> ''"""
    if not granted:
        return f"({referrals})", [scope.referring_key]
    marks = ", ".join("?" for _ in granted)
    return (
        f"""({referrals}
            UNION ALL
            SELECT patient_orthanc_id, study_date, modalities, first_seen_at FROM cached_studies
            WHERE patient_orthanc_id IN ({marks}) AND (referring_physician_key <> ? OR referring_physician_key = ''))""",
        [scope.referring_key, *granted, scope.referring_key],
    )
