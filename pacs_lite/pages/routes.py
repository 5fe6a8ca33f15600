"""Routes of the pages blueprint."""

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from pacs_lite import accounts, passwords, users
from pacs_lite.auth.routes import client_ip, client_user_agent
from pacs_lite.clock import utc_now
from pacs_lite.db import get_db
from pacs_lite.pages import bp


@bp.get("/")
def index():
    """Send the user to the worklist, or to the login form."""
    if current_user.is_authenticated:
        return redirect(url_for("pages.worklist"))
    return redirect(url_for("auth.login"))


@bp.get("/patients")
@login_required
def worklist():
    """Show the patient worklist."""
    return render_template("patients.html")


@bp.get("/studies")
@login_required
def study_browser():
    """Show the studies of one patient; the page asks the API for them."""
    patient_id = request.args.get("patientId", "").strip()
    if not patient_id:
        return redirect(url_for("pages.worklist"))
    return render_template("studies.html", patient_id=patient_id)


@bp.get("/viewer")
@login_required
def viewer():
    """Show the image viewer for one study; the page asks the API for the study's images."""
    study_uid = request.args.get("studyUID", "").strip()
    if not study_uid:
        return redirect(url_for("pages.worklist"))
    return render_template("viewer.html", study_uid=study_uid)


@bp.get("/account/password")
@login_required
def account_password():
    """Show the change-password form."""
    return render_template("account_password.html")


@bp.post("/account/password")
@login_required
def account_password_submit():
    """Change the user's own password; other sessions of the user end."""
    db = get_db()
    user = users.get_user(db, current_user.id)
    current_password = request.form.get("current_password", "")
    new_password = request.form.get("new_password", "")
    if not passwords.verify_password(current_password, user["password_hash"]):
        return render_template("account_password.html", error="The current password is wrong."), 400
    if new_password != request.form.get("confirm_password", ""):
        return render_template("account_password.html", error="The two new passwords differ."), 400
    if new_password == current_password:
        return render_template("account_password.html", error="Choose a password you have not used here."), 400
    try:
        accounts.set_password(
            db, current_app.config, user, new_password, utc_now(),
            keep_session_id=current_user.session_id, ip=client_ip(), user_agent=client_user_agent(),
        )
    except accounts.AccountError as e:
        return render_template("account_password.html", error=f"Not changed: {e}."), 400
    flash("Your password was changed. Your other sessions were logged out.", "success")
    return redirect(url_for("pages.worklist"))
