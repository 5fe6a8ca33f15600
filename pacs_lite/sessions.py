"""SQL for the sessions table: server-side login sessions, found by the hash of their token."""


def insert_session(db, session, now):
    """Insert a session (token_hash, user_id, remember, expires_at, ip, user_agent) and return its id."""
    return db.insert(
        """
        INSERT INTO sessions (token_hash, user_id, remember, created_at, expires_at, last_seen_at, ip, user_agent)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
        (
            session["token_hash"],
            session["user_id"],
            int(session["remember"]),
            now,
            session["expires_at"],
            now,
            session["ip"],
            session["user_agent"],
        ),
    )


def find_valid_session(db, token_hash, now):
    """Return the unexpired session with this token hash joined with its active user, or None."""
    return db.query_one(
        """
        SELECT s.id AS session_id, s.created_at AS session_created_at, s.expires_at, s.last_seen_at, s.remember,
            u.id, u.username, u.role, u.full_name, u.email, u.dicom_name, u.dicom_name_key,
            u.must_change_password, u.previous_login_at
        FROM sessions s
        JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = ?
        AND s.expires_at > ?
        AND u.is_active = 1
        """,
        (token_hash, now),
    )


def touch_session(db, session_id, now):
    """Record that the session was used now."""
    db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now, session_id))


def delete_session(db, session_id):
    """Delete one session."""
    db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))


def delete_user_sessions(db, user_id, keep_session_id=None):
    """Delete every session of a user, but the one to keep; return how many went."""
    cursor = db.execute(
        "DELETE FROM sessions WHERE user_id = ? AND id <> ?",
        (user_id, keep_session_id if keep_session_id is not None else -1),
    )
    return cursor.rowcount


def delete_expired_sessions(db, now):
    """Delete every session that has expired; return how many went."""
    return db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,)).rowcount


def count_active_sessions(db, now):
    """Return how many sessions are still valid."""
    return db.query_value("SELECT COUNT(*) FROM sessions WHERE expires_at > ?", (now,))
