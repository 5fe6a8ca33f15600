"""Housekeeping: expired sessions, old login failures, audit rows past retention."""

import datetime

from pacs_lite import audit, login_attempts, sessions


def clean(db, config, now):
    """Delete what has expired; return the number of rows removed per kind."""
    failures_cutoff = now - datetime.timedelta(minutes=config["LOGIN_LOCKOUT_MINUTES"])
    audit_cutoff = now - datetime.timedelta(days=config["AUDIT_RETENTION_DAYS"])
    with db.transaction():
        removed = {
            "sessions": sessions.delete_expired_sessions(db, now),
            "login_failures": login_attempts.delete_failures_before(db, failures_cutoff),
            "audit_rows": audit.delete_audit_before(db, audit_cutoff),
        }
    return removed
