"""SQL for the users table."""

ROLES = ("admin", "radiologist", "referring_doctor")

USER_COLUMNS = """id, username, password_hash, role, full_name, email, dicom_name, dicom_name_key,
    is_active, must_change_password, created_at, updated_at, last_login_at"""


def insert_user(db, user, now):
    """Insert a user (a dict of the users columns) and return its id."""
    return db.insert(
        """
        INSERT INTO users (username, password_hash, role, full_name, email, dicom_name, dicom_name_key,
            is_active, must_change_password, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)
        """,
        (
            user["username"],
            user["password_hash"],
            user["role"],
            user["full_name"],
            user["email"],
            user["dicom_name"],
            user["dicom_name_key"],
            int(user["must_change_password"]),
            now,
            now,
        ),
    )


def get_user(db, user_id):
    """Return the user with this id, or None."""
    return db.query_one(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))


def get_user_by_username(db, username):
    """Return the user with this username, or None."""
    return db.query_one(f"SELECT {USER_COLUMNS} FROM users WHERE username = ?", (username,))


def set_password_hash(db, user_id, password_hash, must_change_password, now):
    """Store a new password hash for the user."""
    db.execute(
        """
        UPDATE users
        SET password_hash = ?, must_change_password = ?, updated_at = ?
        WHERE id = ?
        """,
        (password_hash, int(must_change_password), now, user_id),
    )


def set_last_login(db, user_id, now):
    """Record when the user logged in, keeping the login before (to mark what is new since)."""
    db.execute("UPDATE users SET previous_login_at = last_login_at, last_login_at = ? WHERE id = ?", (now, user_id))


def set_active(db, user_id, is_active, now):
    """Activate or deactivate the user."""
    db.execute("UPDATE users SET is_active = ?, updated_at = ? WHERE id = ?", (int(is_active), now, user_id))


def count_active_admins(db):
    """Return how many active admins there are."""
    return db.query_value("SELECT COUNT(*) FROM users WHERE role = 'admin' AND is_active = 1")


def list_users(db):
    """Return every user for the admin's list, by username (no password hashes)."""
    return db.query(
        """
        SELECT id, username, role, full_name, email, dicom_name, is_active, must_change_password, created_at,
            last_login_at
        FROM users
        ORDER BY username
        """
    )


def list_usernames(db):
    """Return every username, in order."""
    return [row["username"] for row in db.query("SELECT username FROM users ORDER BY username")]


def update_profile(db, user_id, profile, now):
    """Store a user's role, full name, email and DICOM name (a dict with those keys and dicom_name_key)."""
    db.execute(
        """
        UPDATE users
        SET role = ?, full_name = ?, email = ?, dicom_name = ?, dicom_name_key = ?, updated_at = ?
        WHERE id = ?
        """,
        (
            profile["role"],
            profile["full_name"],
            profile["email"],
            profile["dicom_name"],
            profile["dicom_name_key"],
            now,
            user_id,
        ),
    )


def lock_admins(db):
    """Lock the admins' rows until the transaction ends, so that checks of the last admin cannot race.

    A write is the one lock both databases share: InnoDB locks the rows it
    updates (even unchanged), SQLite takes its write lock.
    """
    db.execute(
        """
        UPDATE users
        SET role = role
        WHERE role = 'admin'
        """
    )


def count_other_active_admins(db, user_id):
    """Return how many active admins there are besides this user."""
    return db.query_value(
        """
        SELECT COUNT(*)
        FROM users
        WHERE role = 'admin'
        AND is_active = 1
        AND id <> ?
        """,
        (user_id,),
    )
