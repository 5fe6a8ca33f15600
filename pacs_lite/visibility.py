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


def visible_studies(scope):
    """Return (a FROM-clause source, params) holding the studies the scope may see (the columns a worklist groups on).

    For a referring doctor it is a union of two index lookups (their own
    referrals, and the patients of their live break-glass grants): an OR of the
    two would make the database read every study.
    """
    if scope.sees_everything:
        return "cached_studies", []
    return (
        """(SELECT orthanc_id, patient_orthanc_id, study_date, modalities FROM cached_studies
            WHERE referring_physician_key = ? AND referring_physician_key <> ''
            UNION ALL
            SELECT orthanc_id, patient_orthanc_id, study_date, modalities FROM cached_studies
            WHERE patient_orthanc_id IN (
                SELECT patient_orthanc_id FROM break_glass_grants WHERE user_id = ? AND expires_at > ?)
            AND (referring_physician_key <> ? OR referring_physician_key = ''))""",
        [scope.referring_key, scope.user_id, scope.now, scope.referring_key],
    )
