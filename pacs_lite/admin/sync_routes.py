"""Admin page for the cache sync: where it stands, whether Orthanc answers, and a "Sync now" button."""

import datetime
import logging

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from pacs_lite import cache, sessions, sync
from pacs_lite.admin import bp
from pacs_lite.auth.current_user import roles_required
from pacs_lite.clock import utc_now
from pacs_lite.db import get_db
from pacs_lite.orthanc import OrthancClient, OrthancError, client_for_thread, without_credentials

log = logging.getLogger(__name__)

# The status page asks Orthanc once and must not hang when Orthanc stalls: (connect, read) seconds.
STATUS_TIMEOUT = (2, 5)


def orthanc_status(config):
    """Ask Orthanc for its /system once, without retries; return (its answer or None, an error message)."""
    try:
        client = OrthancClient(config["ORTHANC_URL"], config["ORTHANC_USERNAME"] or None,
                               config["ORTHANC_PASSWORD"] or None, timeout=STATUS_TIMEOUT, retries=0)
    except ValueError as e:
        return None, str(e)
    with client:
        try:
            return client.system(), ""
        except OrthancError as e:
            return None, e.message


@bp.get("/sync")
@roles_required("admin")
def sync_status():
    """Show the sync state, the cache counts, Orthanc's answer and the active sessions."""
    db, now = get_db(), utc_now()
    state = cache.get_sync_state(db)
    stale_after = datetime.timedelta(minutes=current_app.config["SYNC_STALE_MINUTES"])
    system, orthanc_error = orthanc_status(current_app.config)
    return render_template(
        "admin_sync.html",
        state=state,
        # A pass that succeeds clears last_error: an error shown is one since the last success.
        failing=bool(state["last_error"]),
        stale=state["last_success_at"] is None or now - state["last_success_at"] > stale_after,
        counts=cache.counts(db),
        active_sessions=sessions.count_active_sessions(db, now),
        system=system,
        orthanc_error=orthanc_error,
        orthanc_url=without_credentials(current_app.config["ORTHANC_URL"]),
    )


@bp.post("/sync")
@roles_required("admin")
def sync_now():
    """Run one incremental sync pass now and say how it went."""
    config = current_app.config
    log.info("sync started from the admin page by %s", current_user.username)
    try:
        result = sync.sync_once(get_db(), client_for_thread(config), config["DATABASE_URL"])
    except sync.SyncBusy:
        flash("Another sync is running; its result shows here when it has finished.", "warning")
    except OrthancError as e:
        flash(f"The sync failed: {e.message}", "danger")
    except sync.SchemaMismatch as e:
        flash(f"The sync did not run: {e}.", "danger")
    else:
        flash(f"Sync finished: {result.summary()}.", "success")
    return redirect(url_for("admin.sync_status"))
