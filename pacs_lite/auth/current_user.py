"""Who is asking: Flask-Login over the server-side sessions table, roles, and the session cookie."""

import functools

from flask import abort, jsonify, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user

from pacs_lite.auth import logins
from pacs_lite.clock import utc_now
from pacs_lite.db import get_db

SESSION_COOKIE = "pacs_lite_session"

# Endpoints a user who must change their password may still reach.
PASSWORD_CHANGE_ENDPOINTS = {
    "pages.account_password",
    "pages.account_password_submit",
    "auth.login",
    "auth.logout",
    "auth.check_session",
    "static",
}

login_manager = LoginManager()
# The Flask session cookie only carries the CSRF token; identity is the sessions table.
login_manager.session_protection = None


class User(UserMixin):
    """The logged-in user of this request, with the session they came in on."""

    def __init__(self, row):
        self.id = row["id"]
        self.username = row["username"]
        self.role = row["role"]
        self.full_name = row["full_name"]
        self.email = row["email"]
        self.dicom_name = row["dicom_name"]
        self.dicom_name_key = row["dicom_name_key"]
        self.must_change_password = bool(row["must_change_password"])
        self.previous_login_at = row["previous_login_at"]
        self.session_id = row["session_id"]
        self.session_created_at = row["session_created_at"]
        self.expires_at = row["expires_at"]

    @property
    def display_name(self):
        """Return the name to show in the header."""
        return self.full_name or self.username

    @property
    def is_admin(self):
        """Tell whether the user is an admin."""
        return self.role == "admin"


@login_manager.request_loader
def load_user_from_request(req):
    """Find the user of the request's session cookie."""
    found = logins.find_session(get_db(), req.cookies.get(SESSION_COOKIE), utc_now())
    return User(found) if found else None


def wants_json():
    """Tell whether this request should be answered in JSON."""
    return request.path.startswith("/api/") or request.path == url_for("auth.check_session")


@login_manager.unauthorized_handler
def unauthorized():
    """Answer 401 JSON to the API and send pages to the login form."""
    if request.path == url_for("auth.check_session"):
        return jsonify(authenticated=False), 401
    if wants_json():
        return jsonify(success=False, error="not logged in"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def roles_required(*roles):
    """Let only logged-in users with one of these roles reach the view; others get 403."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403, description="your role may not open this page")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def enforce_password_change():
    """Send a user who must change their password to the change form first."""
    if request.endpoint in PASSWORD_CHANGE_ENDPOINTS or request.endpoint is None:
        return None
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if wants_json():
        return jsonify(success=False, error="change your password first"), 403
    return redirect(url_for("pages.account_password"))


def set_session_cookie(response, token, expires_at, remember):
    """Put the session token in an HttpOnly cookie; persistent only with remember-me."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        expires=expires_at if remember else None,
        secure=request.is_secure,
        httponly=True,
        samesite="Lax",
    )


def clear_session_cookie(response):
    """Remove the session cookie."""
    response.delete_cookie(SESSION_COOKIE, secure=request.is_secure, httponly=True, samesite="Lax")


def init_app(app):
    """Wire Flask-Login and the password-change rule into the app."""
    login_manager.init_app(app)
    app.before_request(enforce_password_change)
