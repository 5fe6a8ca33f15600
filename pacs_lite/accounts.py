"""User accounts: creating them, passwords, activation — the rules around users.py's SQL."""

import re

from pacs_lite import audit, passwords, sessions, users
from pacs_lite.db import IntegrityError
from pacs_lite.names import person_name_key

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


class AccountError(ValueError):
    """A request about an account cannot be done; the message says why."""


def normalize_username(username):
    """Return the username as stored: trimmed, lower case."""
    return (username or "").strip().lower()


def check_username(username):
    """Raise AccountError unless the (normalized) username is acceptable."""
    if not USERNAME_PATTERN.match(username):
        raise AccountError(
            "the username must be 1 to 64 characters: letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )


def check_role(role):
    """Raise AccountError unless role is one of the known roles."""
    if role not in users.ROLES:
        raise AccountError(f"unknown role {role!r}: use one of {', '.join(users.ROLES)}")


def create_account(db, config, username, password, role, now, full_name="", email="", dicom_name="",
                   must_change_password=False, actor="", ip="", user_agent=""):
    """Validate and add a user, record it in the audit trail, and return the new id.

    :raises AccountError: for a bad or taken username, an unknown role, a weak password.
    """
    username = normalize_username(username)
    check_username(username)
    check_role(role)
    try:
        passwords.check_rules(password)
    except passwords.PasswordRejected as e:
        raise AccountError(str(e)) from None
    user = {
        "username": username,
        "password_hash": passwords.hash_password(password, config["BCRYPT_ROUNDS"]),
        "role": role,
        "full_name": full_name.strip(),
        "email": email.strip(),
        "dicom_name": dicom_name.strip(),
        "dicom_name_key": person_name_key(dicom_name),
        "must_change_password": must_change_password,
    }
    try:
        with db.transaction():
            user_id = users.insert_user(db, user, now)
            audit.record_auth_event(db, "user_created", username, now, ip, user_agent, actor, f"role {role}")
    except IntegrityError:
        raise AccountError(f"a user named {username!r} exists already") from None
    return user_id


def set_password(db, config, user, new_password, now, must_change_password=False, keep_session_id=None,
                 actor="", ip="", user_agent=""):
    """Store a new password, end the user's other sessions, and record it in the audit trail.

    :raises AccountError: when the password breaks a rule.
    """
    try:
        passwords.check_rules(new_password)
    except passwords.PasswordRejected as e:
        raise AccountError(str(e)) from None
    password_hash = passwords.hash_password(new_password, config["BCRYPT_ROUNDS"])
    with db.transaction():
        users.set_password_hash(db, user["id"], password_hash, must_change_password, now)
        sessions.delete_user_sessions(db, user["id"], keep_session_id)
        detail = "reset, must change at next login" if must_change_password else ""
        audit.record_auth_event(db, "password_changed", user["username"], now, ip, user_agent, actor, detail)


def set_active(db, user, is_active, now, actor="", ip="", user_agent=""):
    """Activate or deactivate a user; deactivation ends their sessions at once.

    :raises AccountError: when it would leave no active admin.
    """
    with db.transaction():
        if not is_active and user["role"] == "admin" and user["is_active"] and users.count_active_admins(db) <= 1:
            raise AccountError("this is the last active admin; make another admin first")
        users.set_active(db, user["id"], is_active, now)
        if not is_active:
            sessions.delete_user_sessions(db, user["id"])
        event = "user_reactivated" if is_active else "user_deactivated"
        audit.record_auth_event(db, event, user["username"], now, ip, user_agent, actor)
