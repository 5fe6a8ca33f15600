"""SQL for the audit trail: auth_events (logins, user changes) and study_access_log (studies viewed)."""


def record_auth_event(db, event_type, username, now, ip="", user_agent="", actor="", detail=""):
    """Write one auth_events row."""
    db.execute(
        """
        INSERT INTO auth_events (created_at, event_type, username, actor, detail, ip, user_agent)
        VALUES (?, ?, ?, ?, ?, ?, ?)
        """,
        (now, event_type, username[:64], actor[:64], detail[:255], ip[:45], user_agent[:255]),
    )


def delete_audit_before(db, cutoff):
    """Delete audit rows older than cutoff; return how many went."""
    removed = db.execute("DELETE FROM auth_events WHERE created_at < ?", (cutoff,)).rowcount
    removed += db.execute("DELETE FROM study_access_log WHERE accessed_at < ?", (cutoff,)).rowcount
    return removed


def record_study_access(db, user, study, now, ip="", user_agent="", action="view"):
    """Write one study_access_log row: who opened which study of which patient."""
    db.execute(
        """
        INSERT INTO study_access_log (accessed_at, user_id, username, patient_id, patient_name, study_uid, action,
            ip, user_agent)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (now, user.id, user.username, study["patient_id"][:64], study["patient_name"][:324], study["study_uid"],
         action, ip[:45], user_agent[:255]),
    )


def study_accessed_since(db, user_id, study_uid, since):
    """Tell whether the user's opening of a study is logged since a time."""
    row = db.query_one(
        """
        SELECT 1 AS found
        FROM study_access_log
        WHERE user_id = ?
        AND study_uid = ?
        AND accessed_at >= ?
        LIMIT 1
        """,
        (user_id, study_uid, since),
    )
    return row is not None
