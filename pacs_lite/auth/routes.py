"""Routes of the auth blueprint."""

import urllib.parse

from flask import current_app, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from pacs_lite.auth import bp, logins
from pacs_lite.auth.current_user import clear_session_cookie, set_session_cookie
from pacs_lite.clock import iso_utc, utc_now
from pacs_lite.db import get_db

BAD_CREDENTIALS = "Wrong username or password."


def client_ip():
    """Return the client's IP address (from the proxy's header when TRUST_PROXY is on)."""
    return request.remote_addr or ""


def client_user_agent():
    """Return the client's User-Agent header, trimmed."""
    return (request.headers.get("User-Agent") or "")[:255]


def safe_next(target):
    """Return target if it is a path on this site, else the worklist."""
    default = url_for("pages.worklist")
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return default
    return target


@bp.get("/login")
def login():
    """Show the login form."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login_submit():
    """Check the credentials, open a session and send the user on."""
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    remember = request.form.get("remember") in ("1", "on", "true", "yes")
    next_url = request.form.get("next", "")
    now = utc_now()
    db = get_db()
    result = logins.attempt_login(db, current_app.config, username, password, client_ip(), client_user_agent(), now)
    if result.locked_until:
        minutes = max(1, -(-int((result.locked_until - now).total_seconds()) // 60))
        message = (
            f"Too many failed logins. Try again after {result.locked_until:%H:%M} UTC "
            f"(in {minutes} minute{'s' if minutes != 1 else ''})."
        )
        response = current_app.make_response(
            (render_template("login.html", error=message, username=username, next=next_url), 429)
        )
        response.headers["Retry-After"] = str(int((result.locked_until - now).total_seconds()) + 1)
        return response
    if not result.user:
        return render_template("login.html", error=BAD_CREDENTIALS, username=username, next=next_url), 401
    token, expires_at = logins.start_session(
        db, current_app.config, result.user, remember, client_ip(), client_user_agent(), now
    )
    if result.user["must_change_password"]:
        target = url_for("pages.account_password")
    else:
        target = safe_next(next_url)
    response = redirect(target)
    set_session_cookie(response, token, expires_at, remember)
    return response


@bp.post("/logout")
@login_required
def logout():
    """End the session on the server and forget the cookie."""
    logins.end_session(
        get_db(), current_user.session_id, current_user.username, client_ip(), client_user_agent(), utc_now()
    )
    response = redirect(url_for("auth.login"))
    clear_session_cookie(response)
    return response


@bp.get("/check_session")
@login_required
def check_session():
    """Tell the caller who is logged in and until when."""
    user = {"username": current_user.username, "full_name": current_user.full_name, "role": current_user.role}
    return jsonify(authenticated=True, user=user, expires_at=iso_utc(current_user.expires_at))
