"""SQL for login_attempts: recent failed logins, for throttling."""


def record_failure(db, username, ip, now):
    """Record one failed login."""
    db.execute("INSERT INTO login_attempts (username, ip, attempted_at) VALUES (?, ?, ?)", (username, ip, now))


def recent_failures_for_username(db, username, since, limit):
    """Return the times of the newest failures for a username since a time, newest first."""
    rows = db.query(
        """
        SELECT attempted_at
        FROM login_attempts
        WHERE username = ?
        AND attempted_at > ?
        ORDER BY attempted_at DESC
        LIMIT ?
        """,
        (username, since, limit),
    )
    return [row["attempted_at"] for row in rows]


def recent_failures_for_ip(db, ip, since, limit):
    """Return the times of the newest failures from an IP address since a time, newest first."""
    rows = db.query(
        """
        SELECT attempted_at
        FROM login_attempts
        WHERE ip = ?
        AND attempted_at > ?
        ORDER BY attempted_at DESC
        LIMIT ?
        """,
        (ip, since, limit),
    )
    return [row["attempted_at"] for row in rows]


def clear_failures(db, username):
    """Forget a username's failures after it logged in."""
    db.execute("DELETE FROM login_attempts WHERE username = ?", (username,))


def delete_failures_before(db, cutoff):
    """Delete failures older than cutoff; return how many went."""
    return db.execute("DELETE FROM login_attempts WHERE attempted_at < ?", (cutoff,)).rowcount
