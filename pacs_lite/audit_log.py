"""SQL for the admin's audit log: study views and auth events together, filtered, newest first.

The two tables keep their own rows; a query reads both with the same filters
and one order (time, then study views before auth events of the same second,
then id, all descending). A page is a UNION ALL with LIMIT/OFFSET; the CSV
export walks each table by keyset in batches and merges the two streams, so
it never holds the whole log in memory.
"""

import datetime
import heapq
from dataclasses import dataclass

from pacs_lite.worklist import search_condition

# event type -> label; study_access_log.action values first, then auth_events.event_type values.
STUDY_EVENTS = {
    "view": "Study opened",
    "image": "Image opened without its study",
}
AUTH_EVENTS = {
    "login": "Login",
    "logout": "Logout",
    "login_failed": "Login failed",
    "login_blocked": "Login while locked out",
    "lockout": "Locked out",
    "break_glass": "Break-glass access",
    "user_created": "User created",
    "user_updated": "User changed",
    "password_changed": "Password changed",
    "password_reset": "Password reset",
    "user_deactivated": "User deactivated",
    "user_reactivated": "User reactivated",
}
EVENT_TYPES = {**STUDY_EVENTS, **AUTH_EVENTS}

COLUMNS = ("source", "id", "at", "event_type", "username", "actor", "patient_id", "patient_name", "study_uid",
           "detail", "ip", "user_agent")
STUDY_SELECT = """
    SELECT 'study' AS source, id, accessed_at AS at, action AS event_type, username, '' AS actor, patient_id,
        patient_name, study_uid, '' AS detail, ip, user_agent, 1 AS source_rank
    FROM study_access_log
"""
AUTH_SELECT = """
    SELECT 'auth' AS source, id, created_at AS at, event_type, username, actor, '' AS patient_id,
        '' AS patient_name, '' AS study_uid, detail, ip, user_agent, 0 AS source_rank
    FROM auth_events
"""
BREAK_GLASS_DETAIL = "patient {}: "  # how api/patients.py starts a break-glass event's detail


@dataclass(frozen=True)
class AuditFilters:
    """A checked audit query: every field optional."""

    username: str = ""
    patient: str = ""  # a PatientID, a StudyInstanceUID, or words of a patient's name
    event_type: str = ""  # a key of EVENT_TYPES
    date_from: datetime.date | None = None  # inclusive, UTC
    date_to: datetime.date | None = None  # inclusive, UTC


def time_conditions(column, filters):
    """Return the date-range conditions on a time column, and their values."""
    parts, params = [], []
    if filters.date_from:
        parts.append(f"{column} >= ?")
        params.append(datetime.datetime.combine(filters.date_from, datetime.time()))
    if filters.date_to:
        parts.append(f"{column} < ?")
        params.append(datetime.datetime.combine(filters.date_to + datetime.timedelta(days=1), datetime.time()))
    return parts, params


def study_conditions(filters):
    """Return the WHERE conditions on study_access_log for the filters, or None when no view can match."""
    if filters.event_type and filters.event_type not in STUDY_EVENTS:
        return None
    parts, params = [], []
    if filters.username:
        parts.append("username = ?")
        params.append(filters.username)
    if filters.patient:
        by_name, name_params = search_condition(filters.patient) or ("1 = 0", [])
        parts.append(
            f"""(patient_id = ?
            OR study_uid = ?
            OR UPPER(patient_name) LIKE ? ESCAPE '!'
            OR patient_id IN (SELECT p.patient_id FROM cached_patients p WHERE {by_name}))"""
        )
        params += [filters.patient, filters.patient, f"%{like_escape(filters.patient.upper())}%", *name_params]
    if filters.event_type:
        parts.append("action = ?")
        params.append(filters.event_type)
    dates, date_params = time_conditions("accessed_at", filters)
    return parts + dates, params + date_params


def auth_conditions(filters):
    """Return the WHERE conditions on auth_events for the filters, or None when no event can match."""
    if filters.event_type and filters.event_type not in AUTH_EVENTS:
        return None
    parts, params = [], []
    if filters.username:
        parts.append("(username = ? OR actor = ?)")
        params += [filters.username, filters.username]
    if filters.patient:
        # Of the auth events, only break-glass names a patient (by PatientID, at the start of its detail).
        prefix = BREAK_GLASS_DETAIL.format(filters.patient)
        parts.append("(event_type = 'break_glass' AND SUBSTR(detail, 1, ?) = ?)")
        params += [len(prefix), prefix]
    if filters.event_type:
        parts.append("event_type = ?")
        params.append(filters.event_type)
    dates, date_params = time_conditions("created_at", filters)
    return parts + dates, params + date_params


def like_escape(text):
    """Escape a text for a LIKE pattern whose escape character is '!'."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def where(parts):
    """Join conditions into a WHERE clause ('' for none)."""
    return "WHERE " + "\nAND ".join(parts) if parts else ""


def selects(filters):
    """Return [(SELECT of one table with its WHERE, params)] for the tables the filters can match."""
    found = []
    for select, conditions in ((STUDY_SELECT, study_conditions(filters)), (AUTH_SELECT, auth_conditions(filters))):
        if conditions is not None:
            parts, params = conditions
            found.append((f"{select}\n{where(parts)}", params))
    return found


def count_events(db, filters):
    """Return how many audit rows match the filters (the exact total)."""
    total = 0
    for select, params in selects(filters):
        total += db.query_value(
            f"""
            SELECT COUNT(*) AS total
            FROM ({select}) AS events
            """,
            params,
        )
    return total


def list_events(db, filters, limit, offset):
    """Return one page of the audit rows matching the filters, newest first."""
    found = selects(filters)
    if not found:
        return []
    union = "\nUNION ALL\n".join(select for select, _ in found)
    params = [p for _, select_params in found for p in select_params]
    rows = db.query(
        f"""
        SELECT {", ".join(COLUMNS)}
        FROM ({union}) AS events
        ORDER BY at DESC, source_rank DESC, id DESC
        LIMIT ?
        OFFSET ?
        """,
        [*params, limit, offset],
    )
    return [with_datetime(row) for row in rows]


def iter_events(db, filters, batch=1000):
    """Yield every audit row matching the filters, newest first, reading batch rows of a table at a time."""
    streams = [iter_table(db, select, params, batch) for select, params in selects(filters)]
    yield from heapq.merge(*streams, key=lambda row: (row["at"], row["source_rank"], row["id"]), reverse=True)


def iter_table(db, select, params, batch):
    """Yield the rows of one table's filtered SELECT, newest first, by keyset on (time, id)."""
    after = []
    condition = ""
    while True:
        rows = db.query(
            f"""
            SELECT {", ".join(COLUMNS)}, source_rank
            FROM ({select}) AS events
            {condition}
            ORDER BY at DESC, id DESC
            LIMIT ?
            """,
            [*params, *after, batch],
        )
        for row in rows:
            yield with_datetime(row)
        if len(rows) < batch:
            return
        last = with_datetime(rows[-1])
        condition = "WHERE (at < ? OR (at = ? AND id < ?))"
        after = [last["at"], last["at"], last["id"]]


def with_datetime(row):
    """Return the row with its time as a datetime (SQLite gives text for columns read through a UNION)."""
    if isinstance(row["at"], str):
        row["at"] = datetime.datetime.fromisoformat(row["at"])
    return row


def most_active_users(db, since, limit=10):
    """Return the users who opened most studies since a time: username, views, patients, last_view."""
    rows = db.query(
        """
        SELECT username, COUNT(*) AS views, COUNT(DISTINCT patient_id) AS patients, MAX(accessed_at) AS last_view
        FROM study_access_log
        WHERE accessed_at >= ?
        GROUP BY username
        ORDER BY views DESC, username
        LIMIT ?
        """,
        (since, limit),
    )
    for row in rows:
        if isinstance(row["last_view"], str):
            row["last_view"] = datetime.datetime.fromisoformat(row["last_view"])
    return rows


def count_auth_events_since(db, event_type, since):
    """Return how many auth events of one type happened since a time."""
    return db.query_value(
        """
        SELECT COUNT(*)
        FROM auth_events
        WHERE event_type = ?
        AND created_at >= ?
        """,
        (event_type, since),
    )
