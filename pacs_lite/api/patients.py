"""Routes of the worklist and the study browser, and break-glass access."""

import datetime

from flask import abort, current_app, jsonify, request
from flask_login import current_user, login_required

from pacs_lite import audit, cache, studies, worklist
from pacs_lite.api import bp, params
from pacs_lite.api.shapes import cache_json, patient_json, study_json
from pacs_lite.auth.routes import client_ip, client_user_agent
from pacs_lite.clock import iso_utc, utc_now
from pacs_lite.db import get_db
from pacs_lite.visibility import scope_for

MIN_REASON = 10


@bp.get("/patient_list_api")
@login_required
def patient_list_api():
    """Answer one page of the worklist."""
    query = params.worklist_query(request.args, current_app.config["PAGE_SIZE"])
    db, now = get_db(), utc_now()
    scope = scope_for(current_user, now)
    state = cache.get_sync_state(db)
    rows, total = worklist.list_patients(db, query, scope, state)
    since = current_user.previous_login_at
    return jsonify(
        success=True,
        patients=[patient_json(row, worklist.has_new_studies(row, since)) for row in rows],
        total=total,
        page=query.page,
        per_page=query.per_page,
        nextCursor=params.encode_cursor(query, rows[-1]) if len(rows) == query.per_page else None,
        cache=cache_json(state, now),
    )


@bp.get("/study_list_api")
@login_required
def study_list_api():
    """Answer a patient and their studies, newest first."""
    patient_id = params.orthanc_id(request.args, "patientId")
    db, now = get_db(), utc_now()
    scope = scope_for(current_user, now)
    found = worklist.patients_as_seen(db, [patient_id], scope)
    if not found:
        abort(404, description="no such patient")
    rows = studies.list_studies(db, patient_id, scope)
    since = current_user.previous_login_at
    return jsonify(
        success=True,
        patient=patient_json(found[0], any(study_json(r, since)["isNew"] for r in rows)),
        studies=[study_json(row, since) for row in rows],
    )


@bp.post("/break_glass")
@login_required
def break_glass():
    """Open a patient outside a referring doctor's scope for a while, with a reason for the audit log."""
    if current_user.role != "referring_doctor":
        abort(403, description="only referring doctors need break-glass access; you see every patient already")
    body = request.get_json(silent=True) or {}
    patient_id = str(body.get("patientID", "")).strip()
    reason = " ".join(str(body.get("reason", "")).split())
    if not patient_id:
        abort(400, description="patientID is required")
    if len(reason) < MIN_REASON:
        abort(400, description=f"give a reason of at least {MIN_REASON} characters")
    db, now = get_db(), utc_now()
    patient = studies.find_patient_by_patient_id(db, patient_id[:64])
    if patient is None:
        abort(404, description="no patient has this PatientID")
    expires_at = now + datetime.timedelta(minutes=current_app.config["BREAK_GLASS_MINUTES"])
    with db.transaction():
        studies.grant_break_glass(db, current_user.id, patient["orthanc_id"], reason, now, expires_at)
        audit.record_auth_event(db, "break_glass", current_user.username, now, client_ip(), client_user_agent(),
                                detail=f"patient {patient['patient_id']}: {reason}")
    return jsonify(success=True, patientId=patient["orthanc_id"], expiresAt=iso_utc(expires_at))
