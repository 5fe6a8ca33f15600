"""Admin pages for users: the list, creating, editing, password resets, deactivation."""

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from pacs_lite import accounts, passwords, users
from pacs_lite.admin import bp
from pacs_lite.auth.current_user import roles_required
from pacs_lite.auth.routes import client_ip, client_user_agent
from pacs_lite.clock import utc_now
from pacs_lite.db import get_db

ROLE_LABELS = {"admin": "Admin", "radiologist": "Radiologist", "referring_doctor": "Referring doctor"}
FORM_FIELDS = ("username", "full_name", "email", "role", "dicom_name")


def form_values(source):
    """Return the user form's fields from a form post or a users row, as strings."""
    return {name: str(source.get(name) or "") for name in FORM_FIELDS}


def find_user(user_id):
    """Return the user with this id, or stop with a 404."""
    user = users.get_user(get_db(), user_id)
    if user is None:
        abort(404, description="there is no such user")
    return user


def render_form(user, form, error="", status=200):
    """Show the user form: a new user when user is None, else the edit page of that user."""
    page = render_template("admin_user_form.html", user=user, form=form, error=error, roles=ROLE_LABELS)
    return page, status


def show_password(user, password, created):
    """Show a one-time password once, on a page no cache may keep."""
    page = render_template("admin_password.html", user=user, password=password, created=created)
    return page, 200, {"Cache-Control": "no-store"}


def audit_context():
    """Return who is acting, from where, for the audit trail."""
    return {"actor": current_user.username, "ip": client_ip(), "user_agent": client_user_agent()}


@bp.get("/users")
@roles_required("admin")
def users_list():
    """List every user."""
    return render_template("admin_users.html", users=users.list_users(get_db()), roles=ROLE_LABELS)


@bp.get("/users/new")
@roles_required("admin")
def user_new():
    """Show the form for a new user."""
    return render_form(None, form_values({"role": "radiologist"}))


@bp.post("/users")
@roles_required("admin")
def user_create():
    """Create a user with a one-time password, and show that password once."""
    form = form_values(request.form)
    password = passwords.one_time_password()
    db = get_db()
    try:
        user_id = accounts.create_account(
            db, current_app.config, form["username"], password, form["role"], utc_now(),
            full_name=form["full_name"], email=form["email"], dicom_name=form["dicom_name"],
            must_change_password=True, **audit_context(),
        )
    except accounts.AccountError as e:
        return render_form(None, form, f"Not created: {e}.", 400)
    return show_password(users.get_user(db, user_id), password, created=True)


@bp.get("/users/<int:user_id>")
@roles_required("admin")
def user_edit(user_id):
    """Show one user's edit page: profile, password reset, activation."""
    user = find_user(user_id)
    return render_form(user, form_values(user))


@bp.post("/users/<int:user_id>")
@roles_required("admin")
def user_update(user_id):
    """Save a user's role, full name, email and DICOM name."""
    user = find_user(user_id)
    form = form_values(request.form)
    form["username"] = user["username"]
    try:
        changes = accounts.update_account(
            get_db(), user, form["role"], form["full_name"], form["email"], form["dicom_name"], utc_now(),
            **audit_context(),
        )
    except accounts.AccountError as e:
        return render_form(user, form, f"Not saved: {e}.", 400)
    if changes:
        flash(f"Saved {user['username']}: {changes}.", "success")
    else:
        flash(f"Nothing changed for {user['username']}.", "info")
    return redirect(url_for("admin.users_list"))


@bp.post("/users/<int:user_id>/password")
@roles_required("admin")
def user_reset_password(user_id):
    """Give a user a new one-time password, end their sessions, and show the password once."""
    user = find_user(user_id)
    # An admin resetting their own password keeps this session (and must then choose a new one).
    keep = current_user.session_id if user["id"] == current_user.id else None
    password = accounts.reset_password(get_db(), current_app.config, user, utc_now(), keep_session_id=keep,
                                       **audit_context())
    return show_password(user, password, created=False)


@bp.post("/users/<int:user_id>/deactivate")
@roles_required("admin")
def user_deactivate(user_id):
    """Deactivate a user; their sessions end at once."""
    return change_activation(user_id, False)


@bp.post("/users/<int:user_id>/reactivate")
@roles_required("admin")
def user_reactivate(user_id):
    """Let a deactivated user log in again."""
    return change_activation(user_id, True)


def change_activation(user_id, is_active):
    """Activate or deactivate a user, then go back to the list; a refusal shows the edit page with why."""
    user = find_user(user_id)
    try:
        accounts.set_active(get_db(), user, is_active, utc_now(), **audit_context())
    except accounts.AccountError as e:
        return render_form(user, form_values(user), f"Not changed: {e}.", 400)
    if is_active:
        flash(f"{user['username']} is active again and may log in.", "success")
    else:
        flash(f"{user['username']} is deactivated; their sessions were ended.", "success")
    return redirect(url_for("admin.users_list"))
