"""User accounts: creating them, passwords, activation — the rules around users.py's SQL."""

import re

from pacs_lite import audit, passwords, sessions, users
from pacs_lite.db import IntegrityError
from pacs_lite.names import person_name_key

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")
# profile field -> (label, longest value the users table takes)
PROFILE_FIELDS = {
    "full_name": ("full name", 128),
    "email": ("email", 254),
    "dicom_name": ("DICOM name", 324),
}


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


def clean_profile(full_name, email, dicom_name):
    """Return the profile fields as stored: trimmed, runs of white space made one space.

    :raises AccountError: for a value too long or an email that is not one.
    """
    profile = {"full_name": full_name, "email": email, "dicom_name": dicom_name}
    profile = {name: " ".join((value or "").split()) for name, value in profile.items()}
    for name, (label, longest) in PROFILE_FIELDS.items():
        if len(profile[name]) > longest:
            raise AccountError(f"the {label} is too long: at most {longest} characters")
    if profile["email"] and not EMAIL_PATTERN.match(profile["email"]):
        raise AccountError(f"{profile['email']!r} is not an email address")
    return profile


def create_account(db, config, username, password, role, now, full_name="", email="", dicom_name="",
                   must_change_password=False, actor="", ip="", user_agent=""):
    """Validate and add a user, record it in the audit trail, and return the new id.

    :raises AccountError: for a bad or taken username, an unknown role, a weak password, a bad profile field.
    """
    username = normalize_username(username)
    check_username(username)
    check_role(role)
    profile = clean_profile(full_name, email, dicom_name)
    try:
        passwords.check_rules(password)
    except passwords.PasswordRejected as e:
        raise AccountError(str(e)) from None
    user = {
        "username": username,
        "password_hash": passwords.hash_password(password, config["BCRYPT_ROUNDS"]),
        "role": role,
        **profile,
        "dicom_name_key": person_name_key(profile["dicom_name"]),
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
        # A password someone else chose for the user is a reset; one they chose themselves is a change.
        if must_change_password:
            audit.record_auth_event(db, "password_reset", user["username"], now, ip, user_agent, actor,
                                    "must change at next login")
        else:
            audit.record_auth_event(db, "password_changed", user["username"], now, ip, user_agent, actor)


def reset_password(db, config, user, now, keep_session_id=None, actor="", ip="", user_agent=""):
    """Give the user a one-time password they must change at next login, end their sessions, and return it."""
    password = passwords.one_time_password()
    set_password(db, config, user, password, now, must_change_password=True, keep_session_id=keep_session_id,
                 actor=actor, ip=ip, user_agent=user_agent)
    return password


def check_admins_left(db, user_id):
    """Raise AccountError unless an active admin other than this user remains; call with the admins locked."""
    if not users.count_other_active_admins(db, user_id):
        raise AccountError("this is the last active admin; make another user an admin first")


def update_account(db, user, role, full_name, email, dicom_name, now, actor="", ip="", user_agent=""):
    """Change a user's role, full name, email and DICOM name, and record what changed; return that ('' for nothing).

    :raises AccountError: for an unknown role or a bad field, for demoting the last active admin,
        or for an admin changing their own role.
    """
    check_role(role)
    profile = clean_profile(full_name, email, dicom_name)
    with db.transaction():
        if role != "admin":
            users.lock_admins(db)
        current = users.get_user(db, user["id"])
        if current["role"] == "admin" and role != "admin":
            if current["is_active"]:
                check_admins_left(db, current["id"])
            if actor == current["username"]:
                raise AccountError("you cannot change your own role; ask another admin")
        changes = describe_changes(current, {"role": role, **profile})
        if changes:
            users.update_profile(db, current["id"], {
                "role": role, **profile, "dicom_name_key": person_name_key(profile["dicom_name"]),
            }, now)
            audit.record_auth_event(db, "user_updated", current["username"], now, ip, user_agent, actor, changes)
    return changes


def describe_changes(user, new_values):
    """Say which fields of a user change, old and new value, e.g. "role: 'radiologist' -> 'admin'"."""
    labels = {"role": "role", **{name: label for name, (label, _) in PROFILE_FIELDS.items()}}
    return "; ".join(
        f"{labels[name]}: {user[name]!r} -> {value!r}" for name, value in new_values.items() if user[name] != value
    )


def set_active(db, user, is_active, now, actor="", ip="", user_agent=""):
    """Activate or deactivate a user; deactivation ends their sessions at once.

    :raises AccountError: when the user is so already, when it would leave no active admin,
        or when admins would deactivate themselves (actor is their username).
    """
    with db.transaction():
        if not is_active:
            users.lock_admins(db)
        current = users.get_user(db, user["id"])
        if bool(current["is_active"]) == bool(is_active):
            raise AccountError(f"{current['username']} is {'active' if is_active else 'inactive'} already")
        if not is_active and current["role"] == "admin":
            check_admins_left(db, current["id"])
        if not is_active and actor == current["username"]:
            raise AccountError("you cannot deactivate your own account; ask another admin")
        users.set_active(db, current["id"], is_active, now)
        if not is_active:
            sessions.delete_user_sessions(db, current["id"])
        event = "user_reactivated" if is_active else "user_deactivated"
        audit.record_auth_event(db, event, current["username"], now, ip, user_agent, actor)
