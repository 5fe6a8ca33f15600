"""SQL for login_attempts: recent failed logins, for throttling."""


def record_failure(db, username, ip, now):
    """Record one failed login."""
    db.execute("INSERT INTO login_attempts (username, ip, attempted_at) VALUES (?, ?, ?)", (username, ip, now))


# Who a failure is counted against: a username, or a client address.
FAILURE_KEYS = {"username": "username", "ip": "ip"}


def recent_failures(db, key, value, since, limit):
    """Return the times of the newest failures for a username or an IP since a time, newest first."""
    column = FAILURE_KEYS[key]
    rows = db.query(
        f"""
        SELECT attempted_at
        FROM login_attempts
        WHERE {column} = ?
        AND attempted_at > ?
        ORDER BY attempted_at DESC
        LIMIT ?
        """,
        (value, since, limit),
    )
    return [row["attempted_at"] for row in rows]


def clear_failures(db, username):
    """Forget a username's failures after it logged in."""
    db.execute("DELETE FROM login_attempts WHERE username = ?", (username,))


def delete_failures_before(db, cutoff):
    """Delete failures older than cutoff; return how many went."""
    return db.execute("DELETE FROM login_attempts WHERE attempted_at < ?", (cutoff,)).rowcount
