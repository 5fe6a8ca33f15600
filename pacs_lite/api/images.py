"""Routes of the viewer: a study's image list (load_study_fast) and the DICOM stream from Orthanc."""

import logging
from collections import Counter

from flask import Response, abort, current_app, jsonify, request
from flask_login import current_user, login_required

from pacs_lite import audit, studies, sync, worklist
from pacs_lite.api import bp, params
from pacs_lite.api.shapes import patient_json, study_json
from pacs_lite.auth.routes import client_ip, client_user_agent
from pacs_lite.clock import utc_now
from pacs_lite.db import get_db
from pacs_lite.orthanc import OrthancError, OrthancNotFound, client_for_thread
from pacs_lite.visibility import scope_for

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
PACS_DOWN = "the PACS (Orthanc) is not reachable; try again in a moment"
LAST = float("inf")


def number(value):
    """Read a DICOM IS value as an int, or None."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def slice_position(tags):
    """Return where a slice lies along the normal of its plane (0 when unknown)."""
    try:
        position = [float(v) for v in tags["ImagePositionPatient"].split("\\")]
        row_x, row_y, row_z, col_x, col_y, col_z = (float(v) for v in tags["ImageOrientationPatient"].split("\\"))
    except (KeyError, ValueError):
        return 0.0
    normal = (row_y * col_z - row_z * col_y, row_z * col_x - row_x * col_z, row_x * col_y - row_y * col_x)
    return sum(p * n for p, n in zip(position, normal))


def image_order(instance, series_by_id):
    """Sort key: series number, instance number, slice position, then Orthanc's own order."""
    tags = instance.get("MainDicomTags", {})
    series = series_by_id.get(instance.get("ParentSeries"), {})
    series_number = series.get("series_number")
    instance_number = number(tags.get("InstanceNumber"))
    return (
        LAST if series_number is None else series_number,
        series.get("series_uid", ""),
        LAST if instance_number is None else instance_number,
        slice_position(tags),
        instance.get("IndexInSeries") or 0,
    )


def image_json(instance, series_by_id):
    """Shape one instance for the viewer."""
    tags = instance.get("MainDicomTags", {})
    series = series_by_id.get(instance.get("ParentSeries"), {})
    return {
        "imageId": f"wadouri:/api/get_dicom_orthanc?instanceId={instance['ID']}",
        "instanceId": instance["ID"],
        "instanceNumber": number(tags.get("InstanceNumber")),
        "seriesUID": series.get("series_uid", ""),
        "seriesDescription": series.get("description", ""),
        "numberOfFrames": number(tags.get("NumberOfFrames")) or 1,
    }


def series_json(series, image_count):
    """Shape one series for the viewer's series panel."""
    return {
        "seriesUID": series["series_uid"],
        "seriesNumber": series["series_number"],
        "seriesDescription": series["description"],
        "modality": series["modality"],
        "imageCount": image_count,
    }


@bp.get("/load_study_fast")
@login_required
def load_study_fast():
    """Answer everything the viewer needs for a study, with one call to Orthanc; audit the opening."""
    uid = params.study_uid(request.args)
    db, now = get_db(), utc_now()
    scope = scope_for(current_user, now)
    study = studies.find_study(db, uid, scope)
    if study is None:
        abort(404, description="no such study")
    try:
        instances = client_for_thread(current_app.config).study_instances(study["orthanc_id"])
    except OrthancNotFound:
        sync.evict_study(db, study["orthanc_id"])
        abort(404, description="this study is no longer in the PACS")
    except OrthancError as e:
        log.warning("load_study_fast %s: %s", uid, e)
        abort(502, description=PACS_DOWN)
    series_by_id = {s["orthanc_id"]: s for s in studies.series_of_study(db, study["orthanc_id"])}
    instances.sort(key=lambda i: image_order(i, series_by_id))
    images = [image_json(i, series_by_id) for i in instances]
    counts = Counter(instance.get("ParentSeries") for instance in instances)
    ordered_series = sorted(series_by_id.values(), key=lambda s: (
        LAST if s["series_number"] is None else s["series_number"], s["series_uid"]))
    with db.transaction():
        studies.save_instances(db, study["orthanc_id"], [i["ID"] for i in instances])
        audit.record_study_access(db, current_user, study, now, client_ip(), client_user_agent())
    patient = worklist.patients_as_seen(db, [study["patient_orthanc_id"]], scope)
    return jsonify(
        success=True,
        studyUID=uid,
        imageCount=len(images),
        study=study_json(study, current_user.previous_login_at),
        patient=patient_json(patient[0]) if patient else None,
        series=[series_json(s, counts.get(s["orthanc_id"], 0)) for s in ordered_series if counts.get(s["orthanc_id"])],
        images=images,
    )


def study_of_instance(db, orthanc, instance_id, scope):
    """Return the visible study an instance belongs to, or None."""
    study_id = studies.study_id_of_instance(db, instance_id)
    if study_id is None:
        try:
            study_id = orthanc.instance_study(instance_id)["ID"]
        except OrthancNotFound:
            return None
    return studies.find_study_by_orthanc_id(db, study_id, scope)


@bp.get("/get_dicom_orthanc")
@login_required
def get_dicom_orthanc():
    """Stream one DICOM file from Orthanc, in chunks, to a user who may see its study."""
    instance_id = params.orthanc_id(request.args, "instanceId")
    db, now = get_db(), utc_now()
    orthanc = client_for_thread(current_app.config)
    try:
        study = study_of_instance(db, orthanc, instance_id, scope_for(current_user, now))
    except OrthancError as e:
        log.warning("get_dicom_orthanc %s: %s", instance_id, e)
        abort(502, description=PACS_DOWN)
    if study is None:
        abort(404, description="no such image")
    # A file fetched without opening its study (load_study_fast) in this session is audited too.
    if not audit.study_accessed_since(db, current_user.id, study["study_uid"], current_user.session_created_at):
        with db.transaction():
            audit.record_study_access(db, current_user, study, now, client_ip(), client_user_agent(), "image")
    etag = f'"{instance_id}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if etag in request.if_none_match or instance_id in request.if_none_match:
        return Response(status=304, headers=headers)
    try:
        upstream = orthanc.open_instance_file(instance_id)
    except OrthancNotFound:
        abort(404, description="no such image")
    except OrthancError as e:
        log.warning("get_dicom_orthanc %s: %s", instance_id, e)
        abort(502, description=PACS_DOWN)
    if upstream.headers.get("Content-Length"):
        headers["Content-Length"] = upstream.headers["Content-Length"]
    response = Response(upstream.iter_content(CHUNK), mimetype="application/dicom", headers=headers)
    response.call_on_close(upstream.close)
    return response
