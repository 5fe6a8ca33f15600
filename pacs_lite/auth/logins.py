"""Logging in and out: throttling, checking the password, and server-side sessions."""

import datetime
import hashlib
import secrets
from dataclasses import dataclass

from pacs_lite import audit, login_attempts, passwords, sessions, users
from pacs_lite.accounts import normalize_username

TOKEN_BYTES = 32  # 64 hex characters
TOUCH_EVERY = datetime.timedelta(minutes=1)


@dataclass
class LoginResult:
    """What a login attempt came to: a user, or a lockout time, or neither (bad credentials)."""

    user: dict | None = None
    locked_until: datetime.datetime | None = None


def hash_token(token):
    """Return the SHA-256 hex digest under which a session token is stored."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def is_token(value):
    """Tell whether a cookie value has the form of a session token."""
    return len(value) == 2 * TOKEN_BYTES and all(c in "0123456789abcdef" for c in value)


def locked_until(db, config, username, ip, now):
    """Return when a locked-out username or IP may try again, or None when it may try now."""
    window = datetime.timedelta(minutes=config["LOGIN_LOCKOUT_MINUTES"])
    limits = (
        ("username", username, config["LOGIN_MAX_FAILURES"]),
        ("ip", ip, config["LOGIN_MAX_FAILURES_PER_IP"]),
    )
    until = None
    for key, value, limit in limits:
        failures = login_attempts.recent_failures(db, key, value, now - window, limit)
        if len(failures) >= limit:
            # Free again once the oldest of the last `limit` failures leaves the window.
            candidate = failures[-1] + window
            until = max(until, candidate) if until else candidate
    return until


def attempt_login(db, config, username, password, ip, user_agent, now):
    """Check a username and password, throttled, and record the outcome in the audit trail."""
    username = normalize_username(username)[:64]
    until = locked_until(db, config, username, ip, now)
    if until:
        with db.transaction():
            audit.record_auth_event(db, "login_blocked", username, now, ip, user_agent, detail="locked out")
        return LoginResult(locked_until=until)
    user = users.get_user_by_username(db, username) if username else None
    # An unknown user costs the same bcrypt check as a known one.
    password_hash = user["password_hash"] if user else passwords.dummy_hash(config["BCRYPT_ROUNDS"])
    matches = passwords.verify_password(password, password_hash)
    with db.transaction():
        if user and matches and user["is_active"]:
            login_attempts.clear_failures(db, username)
            users.set_last_login(db, user["id"], now)
            audit.record_auth_event(db, "login", username, now, ip, user_agent)
            return LoginResult(user=user)
        login_attempts.record_failure(db, username, ip, now)
        reason = "inactive user" if user and matches else "bad credentials"
        audit.record_auth_event(db, "login_failed", username, now, ip, user_agent, detail=reason)
    until = locked_until(db, config, username, ip, now)
    if until:
        with db.transaction():
            audit.record_auth_event(db, "lockout", username, now, ip, user_agent, detail=f"until {until:%Y-%m-%d %H:%M:%S} UTC")
    return LoginResult()


def start_session(db, config, user, remember, ip, user_agent, now):
    """Open a session for the user; return (token, expires_at). Only the token's hash is stored."""
    token = secrets.token_hex(TOKEN_BYTES)
    if remember:
        expires_at = now + datetime.timedelta(days=config["REMEMBER_DAYS"])
    else:
        expires_at = now + datetime.timedelta(hours=config["SESSION_HOURS"])
    session = {
        "token_hash": hash_token(token),
        "user_id": user["id"],
        "remember": remember,
        "expires_at": expires_at,
        "ip": ip[:45],
        "user_agent": user_agent[:255],
    }
    with db.transaction():
        sessions.insert_session(db, session, now)
    return token, expires_at


def find_session(db, token, now):
    """Return the valid session (joined with its user) of a cookie token, or None."""
    if not token or not is_token(token):
        return None
    found = sessions.find_valid_session(db, hash_token(token), now)
    if found and now - found["last_seen_at"] >= TOUCH_EVERY:
        with db.transaction():
            sessions.touch_session(db, found["session_id"], now)
    return found


def end_session(db, session_id, username, ip, user_agent, now):
    """Delete a session at logout and record it in the audit trail."""
    with db.transaction():
        sessions.delete_session(db, session_id)
        audit.record_auth_event(db, "logout", username, now, ip, user_agent)
