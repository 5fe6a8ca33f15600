"""The four API endpoints and break-glass, on SQLite and MariaDB, with the sample studies synced from a real Orthanc."""

import base64
import datetime
import itertools
import json
from dataclasses import replace

import pytest

from pacs_lite import studies, sync
from pacs_lite.db import connect
from pacs_lite.names import person_name_key, search_key
from tests.conftest import csrf_token, login, made_up_study, make_user, point_at

PASSWORD = "correct horse battery"
HOUSE = "HOUSE GREGORY"


@pytest.fixture
def synced(app, sample_orthanc):
    """The app pointed at the sample Orthanc, its cache filled; yields the Orthanc client."""
    client = point_at(app, sample_orthanc)
    sync.sync_once(connect(app.config["DATABASE_URL"]), client, app.config["DATABASE_URL"])
    yield client
    client.close()


@pytest.fixture
def radiologist(app, synced):
    """A test client logged in as a radiologist."""
    make_user(app, "rad", PASSWORD, "radiologist")
    browser = app.test_client()
    login(browser, "rad", PASSWORD)
    return browser


@pytest.fixture
def house(app, synced):
    """A test client logged in as the referring doctor HOUSE^GREGORY."""
    make_user(app, "house", PASSWORD, "referring_doctor", dicom_name="House^Gregory")
    browser = app.test_client()
    login(browser, "house", PASSWORD)
    return browser


def worklist(browser, **args):
    """Call the worklist API; return the JSON."""
    response = browser.get("/api/patient_list_api", query_string=args)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def patient_ids(body):
    """Return the PatientIDs of a worklist answer, in order."""
    return [p["patientID"] for p in body["patients"]]


def house_studies(plan):
    """Return (patient, study) pairs of the plan whose referring physician is House."""
    return [(p, s) for p in plan.patients for s in p.studies
            if person_name_key(s.referring_physician or "") == HOUSE]


def is_day(dicom_date):
    """Tell whether a DICOM date (YYYYMMDD) is a day of the calendar."""
    try:
        datetime.date(int(dicom_date[:4]), int(dicom_date[4:6]), int(dicom_date[6:]))
    except ValueError:
        return False
    return True


def iso(dicom_date):
    """Turn YYYYMMDD into YYYY-MM-DD."""
    return f"{dicom_date[:4]}-{dicom_date[4:6]}-{dicom_date[6:]}"


@pytest.mark.parametrize("path", [
    "/api/patient_list_api", "/api/study_list_api?patientId=x", "/api/load_study_fast?studyUID=1.2",
    "/api/get_dicom_orthanc?instanceId=x",
])
def test_every_endpoint_answers_401_json_when_logged_out(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json() == {"success": False, "error": "not logged in"}


def test_unknown_api_paths_and_methods_answer_json(client):
    assert client.get("/api/nothing").get_json()["success"] is False
    assert client.get("/api/nothing").status_code == 404


def test_the_worklist_lists_every_patient_newest_first(radiologist, sample_plan):
    body = worklist(radiologist)
    assert body["success"] is True and body["total"] == len(sample_plan.patients)
    assert (body["page"], body["per_page"]) == (1, 50)
    dates = [p["lastStudyDate"] for p in body["patients"]]
    assert dates == sorted(dates, reverse=True)
    muller = next(p for p in body["patients"] if p["patientName"] == "MÜLLER, JÜRGEN")
    planned = next(p for p in sample_plan.patients if p.patient_name.startswith("MÜLLER"))
    assert muller["patientID"] == planned.patient_id
    assert muller["studyCount"] == len(planned.studies)
    assert muller["lastStudyDate"] == max(iso(s.study_date) for s in planned.studies)
    assert muller["modalities"] == sorted({m for s in planned.studies for m in s.modalities})
    assert body["cache"]["syncedAt"].endswith("Z") and body["cache"]["orthancError"] == ""


@pytest.mark.parametrize("search, expected_name", [
    ("muller", "MÜLLER, JÜRGEN"),
    ("jurg", "MÜLLER, JÜRGEN"),
    ("MÜL", "MÜLLER, JÜRGEN"),
    ("jürgen müller", "MÜLLER, JÜRGEN"),
    ("müller, jürgen", "MÜLLER, JÜRGEN"),
    ("gomez ines", "Gómez, Inés"),
    ("山田", "Yamada, Tarou"),
    ("o'brien", "O'BRIEN, SEAN"),
])
def test_search_matches_the_start_of_name_words_without_case_or_accents(radiologist, search, expected_name):
    names = [p["patientName"] for p in worklist(radiologist, search=search)["patients"]]
    assert names == [expected_name]


def test_search_matches_the_start_of_the_patient_id(radiologist, sample_plan):
    body = worklist(radiologist, search="pl000", per_page=200)
    expected = sorted(p.patient_id for p in sample_plan.patients if p.patient_id.startswith("PL000"))
    assert sorted(patient_ids(body)) == expected and body["total"] == len(expected)


@pytest.mark.parametrize("filters", [{}, {"date_from": "1900-01-01"}])
@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
@pytest.mark.parametrize("letter, by_patient_id", [("D", False), ("N", False), ("P", True)])
def test_a_patient_with_two_name_words_matching_is_listed_once_in_order(radiologist, sample_plan, monkeypatch, letter,
                                                                         by_patient_id, plan, filters):
    # "van der Berg^Anna^Maria^Dr.^PhD" has DER and DR., "NULL^NONE" NULL and NONE; every PatientID starts with P,
    # as do PETER and PHD. Many matches with a filter keeping everyone: they are counted, not read from the kept
    # prefix counts.
    use_plan(monkeypatch, plan)
    assert any(search_key(p.patient_id).startswith(letter) for p in sample_plan.patients) == by_patient_id
    matching = {p.patient_id for p in sample_plan.patients
                if any(word.startswith(letter) for word in search_key(person_name_key(p.patient_name)).split())
                or search_key(p.patient_id).startswith(letter)}
    # In the order of the whole worklist: newest last study first.
    expected = [pid for pid in patient_ids(worklist(radiologist, per_page=200)) if pid in matching]
    body = worklist(radiologist, search=letter.lower(), per_page=200, **filters)
    assert patient_ids(body) == expected and body["total"] == len(expected) == len(matching)
    one_by_one = [patient_ids(worklist(radiologist, search=letter.lower(), per_page=1, page=n, **filters))
                  for n in range(1, len(expected) + 1)]
    assert one_by_one == [[pid] for pid in expected]


@pytest.mark.parametrize("search, found, not_found", [
    ("smith_", "SMITH_JONES", "SMITHXJONES"),
    ("lopez%", "LOPEZ%", None),
    ("star*", "STAR*", "STARK"),
])
def test_wildcards_in_a_search_are_plain_characters(radiologist, sample_plan, search, found, not_found):
    keys = {search_key(p["patientName"]).split()[0].rstrip(",") for p in worklist(radiologist, search=search)["patients"]}
    assert found in keys
    if not_found:
        assert not_found not in keys
    assert len(keys) == 1


@pytest.mark.parametrize("search", ["%", "_", "*", "'", '"', "\\", "'; DROP TABLE users; --", "a\\%_b"])
def test_odd_searches_never_error(radiologist, search):
    body = worklist(radiologist, search=search)
    assert body["success"] is True and isinstance(body["total"], int)


def test_sorting_and_paging(radiologist, sample_plan):
    by_name = patient_ids(worklist(radiologist, sort="name", per_page=200))
    # Names sort by their DICOM form, family name first, case and accents folded.
    key_of = {p.patient_id: search_key(p.patient_name) for p in sample_plan.patients}
    assert [key_of[pid] for pid in by_name] == sorted(key_of.values())
    by_id_desc = patient_ids(worklist(radiologist, sort="patient_id", order="desc"))
    assert by_id_desc == sorted((p.patient_id for p in sample_plan.patients), reverse=True)
    pages = [worklist(radiologist, per_page=5, page=n) for n in range(1, 5)]
    seen = [pid for page in pages for pid in patient_ids(page)]
    assert len(seen) == len(set(seen)) == len(sample_plan.patients)
    assert all(page["total"] == len(sample_plan.patients) for page in pages)
    assert worklist(radiologist, page=99)["patients"] == []
    assert worklist(radiologist, per_page=5000)["per_page"] == 200


@pytest.mark.parametrize("args, message", [
    ({"page": "0"}, "page must be a whole number"),
    ({"page": "abc"}, "page must be a whole number"),
    ({"page": "1.5"}, "page must be a whole number"),
    ({"page": "99999999999"}, "page must be a whole number"),
    ({"per_page": "-1"}, "per_page must be a whole number"),
    ({"sort": "birth_date"}, "sort must be one of"),
    ({"order": "up"}, "order must be asc or desc"),
    ({"date_from": "2024-13-01"}, "date_from must be a date"),
    ({"date_to": "20240101"}, "date_to must be a date"),
    ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "date_from is after date_to"),
    ({"modality": "C T"}, "modality must be"),
    ({"search": "x" * 201}, "search is too long"),
    ({"cursor": "abc"}, "cursor is not one this worklist gave"),
    ({"cursor": "!!"}, "cursor is not one this worklist gave"),
    ({"cursor": base64.urlsafe_b64encode(b'["last_study_date","desc",1,2]').decode()}, "cursor is not one"),
    ({"cursor": base64.urlsafe_b64encode(json.dumps(["name", "asc", "DOE", "0" * 8 + "-00000000" * 4]).encode())
      .decode()}, "cursor belongs to another sort order"),
])
def test_malformed_worklist_parameters_get_a_400_with_a_message(radiologist, args, message):
    response = radiologist.get("/api/patient_list_api", query_string=args)
    assert response.status_code == 400
    body = response.get_json()
    assert body["success"] is False and message in body["error"]


def test_modality_and_date_filters_keep_patients_with_one_matching_study(radiologist, sample_plan):
    studies = [(p, s) for p in sample_plan.patients for s in p.studies]
    dates = sorted(iso(s.study_date) for _, s in studies)
    date_from, date_to = dates[len(dates) // 4], dates[3 * len(dates) // 4]
    expected = {p.patient_id for p, s in studies if "CT" in s.modalities and date_from <= iso(s.study_date) <= date_to}
    body = worklist(radiologist, modality="ct", date_from=date_from, date_to=date_to, per_page=200)
    assert set(patient_ids(body)) == expected and body["total"] == len(expected)
    only_cr = {p.patient_id for p, s in studies if "CR" in s.modalities}
    assert set(patient_ids(worklist(radiologist, modality="CR", per_page=200))) == only_cr


def test_a_referring_doctor_sees_only_their_patients_and_studies(house, sample_plan):
    mine = house_studies(sample_plan)
    assert mine, "the sample plan must have studies referred by House"
    body = worklist(house, per_page=200)
    assert set(patient_ids(body)) == {p.patient_id for p, _ in mine}
    assert body["total"] == len({p.patient_id for p, _ in mine})
    for row in body["patients"]:
        own = [s for p, s in mine if p.patient_id == row["patientID"]]
        assert row["studyCount"] == len(own)
        assert row["lastStudyDate"] == max(iso(s.study_date) for s in own)
    patient = body["patients"][0]
    studies = house.get(f"/api/study_list_api?patientId={patient['orthancId']}").get_json()["studies"]
    assert all(person_name_key(s["referringPhysician"].replace(",", "^")) == HOUSE for s in studies)


def test_a_referring_doctor_gets_404_for_anything_outside_their_scope(house, radiologist, sample_plan):
    mine = {p.patient_id for p, _ in house_studies(sample_plan)}
    everyone = worklist(radiologist, per_page=200)["patients"]
    other = next(p for p in everyone if p["patientID"] not in mine)
    assert house.get(f"/api/study_list_api?patientId={other['orthancId']}").status_code == 404
    study = radiologist.get(f"/api/study_list_api?patientId={other['orthancId']}").get_json()["studies"][0]
    assert house.get(f"/api/load_study_fast?studyUID={study['studyUID']}").status_code == 404
    images = radiologist.get(f"/api/load_study_fast?studyUID={study['studyUID']}").get_json()["images"]
    # Guessing an image id of another doctor's study gets nowhere, opened or not.
    assert house.get(f"/api/get_dicom_orthanc?instanceId={images[0]['instanceId']}").status_code == 404


def test_an_empty_dicom_name_sees_nothing(app, synced):
    make_user(app, "nobody", PASSWORD, "referring_doctor")
    browser = app.test_client()
    login(browser, "nobody", PASSWORD)
    assert worklist(browser)["total"] == 0


def test_the_study_browser_lists_a_patients_studies_newest_first(radiologist, sample_plan):
    planned = max(sample_plan.patients, key=lambda p: len(p.studies))
    row = worklist(radiologist, search=planned.patient_id)["patients"][0]
    body = radiologist.get(f"/api/study_list_api?patientId={row['orthancId']}").get_json()
    assert body["success"] and body["patient"]["patientID"] == planned.patient_id
    assert [s["studyUID"] for s in body["studies"]] == [
        s.study_uid for s in sorted(planned.studies, key=lambda s: (s.study_date, s.study_time), reverse=True)]
    first = body["studies"][0]
    for field in ("orthancId", "studyDate", "studyTime", "description", "accessionNumber", "modalities",
                  "referringPhysician", "seriesCount", "instanceCount", "isStable", "isNew"):
        assert field in first


@pytest.mark.parametrize("query, status", [("", 400), ("?patientId=nope", 400), ("?patientId=../system", 400),
                                           ("?patientId=" + "a" * 8 + "-aaaaaaaa" * 4, 404)])
def test_study_list_rejects_bad_and_unknown_ids(radiologist, query, status):
    assert radiologist.get(f"/api/study_list_api{query}").status_code == status


def open_study(browser, study_uid):
    """Call load_study_fast; return the JSON."""
    response = browser.get(f"/api/load_study_fast?studyUID={study_uid}")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_load_study_fast_lists_every_image_in_series_then_instance_order(app, radiologist, sample_plan, db):
    study = max(sample_plan.studies, key=lambda s: (len(s.series), s.instance_count))
    body = open_study(radiologist, study.study_uid)
    assert body["studyUID"] == study.study_uid and body["imageCount"] == study.instance_count
    expected = [(series.series_uid, n + 1) for series in sorted(study.series, key=lambda s: s.series_number)
                for n in range(series.instance_count)]
    assert [(i["seriesUID"], i["instanceNumber"]) for i in body["images"]] == expected
    first = body["images"][0]
    assert first["imageId"] == f"wadouri:/api/get_dicom_orthanc?instanceId={first['instanceId']}"
    assert [s["seriesUID"] for s in body["series"]] == [s.series_uid for s in sorted(study.series,
                                                                                        key=lambda s: s.series_number)]
    logged = db.query("SELECT * FROM study_access_log")
    assert len(logged) == 1
    assert logged[0]["study_uid"] == study.study_uid and logged[0]["username"] == "rad"
    assert logged[0]["action"] == "view"


@pytest.mark.parametrize("query, status", [("", 400), ("?studyUID=abc", 400), ("?studyUID=1.2.3.4.5", 404)])
def test_load_study_fast_rejects_bad_and_unknown_uids(radiologist, query, status):
    assert radiologist.get(f"/api/load_study_fast{query}").status_code == status


def test_the_proxy_streams_orthancs_exact_bytes_with_caching_headers(radiologist, synced, sample_plan, db):
    study = sample_plan.studies[0]
    image = open_study(radiologist, study.study_uid)["images"][0]
    response = radiologist.get(f"/api/get_dicom_orthanc?instanceId={image['instanceId']}", buffered=False)
    assert response.status_code == 200
    assert response.is_streamed  # sent in chunks as Orthanc sends them, never held whole
    with synced.open_instance_file(image["instanceId"]) as original:
        assert response.data == original.content
    assert response.headers["Content-Type"] == "application/dicom"
    assert response.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Cache-Control"] == "private, max-age=86400"
    etag = response.headers["ETag"]
    again = radiologist.get(f"/api/get_dicom_orthanc?instanceId={image['instanceId']}",
                            headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert db.query_value("SELECT COUNT(*) FROM study_access_log") == 1  # the viewer's fetches add no rows


def test_a_file_fetched_without_opening_its_study_is_audited(app, radiologist, synced, sample_plan, db):
    study = sample_plan.studies[1]
    instance_id = synced.study_instances(db.query_value(
        "SELECT orthanc_id FROM cached_studies WHERE study_uid = ?", (study.study_uid,)))[0]["ID"]
    assert radiologist.get(f"/api/get_dicom_orthanc?instanceId={instance_id}").status_code == 200
    assert radiologist.get(f"/api/get_dicom_orthanc?instanceId={instance_id}").status_code == 200
    rows = db.query("SELECT action, study_uid FROM study_access_log")
    assert rows == [{"action": "image", "study_uid": study.study_uid}]


@pytest.mark.parametrize("instance_id, status", [
    ("../../system", 400), ("", 400), ("A" * 8 + "-AAAAAAAA" * 4, 400), ("0" * 8 + "-00000000" * 4, 404),
])
def test_the_proxy_only_takes_orthanc_ids(radiologist, instance_id, status):
    response = radiologist.get("/api/get_dicom_orthanc", query_string={"instanceId": instance_id})
    assert response.status_code == status
    assert response.get_json()["success"] is False


def test_break_glass_opens_one_patient_for_a_while_with_a_reason(app, house, radiologist, sample_plan, db):
    mine = {p.patient_id for p, _ in house_studies(sample_plan)}
    other = next(p for p in sample_plan.patients if p.patient_id not in mine)
    token = csrf_token(house, "/patients")

    def ask(body, browser=house):
        return browser.post("/api/break_glass", json=body, headers={"X-CSRFToken": token})

    assert ask({"patientID": other.patient_id}).status_code == 400
    assert ask({"patientID": "NOPE", "reason": "emergency on call"}).status_code == 404
    assert house.post("/api/break_glass", json={"patientID": other.patient_id, "reason": "x" * 20}).status_code == 400
    granted = ask({"patientID": other.patient_id, "reason": "emergency on call tonight"})
    assert granted.status_code == 200, granted.get_json()
    orthanc_id = granted.get_json()["patientId"]
    studies = house.get(f"/api/study_list_api?patientId={orthanc_id}").get_json()["studies"]
    assert len(studies) == len(other.studies)
    assert other.patient_id in patient_ids(worklist(house, per_page=200))
    event = db.query_one("SELECT * FROM auth_events WHERE event_type = 'break_glass'")
    assert event["username"] == "house" and "emergency on call tonight" in event["detail"]
    db.execute("UPDATE break_glass_grants SET expires_at = ?", (datetime.datetime(2020, 1, 1),))
    db.commit()
    assert house.get(f"/api/study_list_api?patientId={orthanc_id}").status_code == 404
    rad_token = csrf_token(radiologist, "/patients")
    response = radiologist.post("/api/break_glass", json={"patientID": other.patient_id, "reason": "a good reason"},
                                headers={"X-CSRFToken": rad_token})
    assert response.status_code == 403


def test_studies_new_since_the_previous_login_are_marked(app, synced, sample_plan, db):
    make_user(app, "rad", PASSWORD, "radiologist")
    first = app.test_client()
    login(first, "rad", PASSWORD)
    assert not any(p["hasNewStudies"] for p in worklist(first, per_page=200)["patients"])
    # A study arriving later, as the sync records it: the study's first_seen_at, then its patient's row.
    db.execute("UPDATE cached_studies SET first_seen_at = ? WHERE study_uid = ?",
               (datetime.datetime(2099, 1, 1), sample_plan.studies[0].study_uid))
    patient_oid = db.query_value("SELECT patient_orthanc_id FROM cached_studies WHERE study_uid = ?",
                                 (sample_plan.studies[0].study_uid,))
    sync.refresh_patients(db, [patient_oid], datetime.datetime(2099, 1, 1))
    db.commit()
    later = app.test_client()
    login(later, "rad", PASSWORD)
    flagged = [p["patientID"] for p in worklist(later, per_page=200)["patients"] if p["hasNewStudies"]]
    assert flagged == [sample_plan.patients[0].patient_id]


def test_a_referring_doctor_sees_new_studies_among_their_own_only(app, synced, sample_plan, db):
    make_user(app, "house2", PASSWORD, "referring_doctor", dicom_name="House^Gregory")
    first = app.test_client()
    login(first, "house2", PASSWORD)
    mine = house_studies(sample_plan)
    # One of House's patients has a new study of House's, another a new study of another doctor's.
    referred, = [(p, s) for p, s in mine if len(p.studies) == 1][:1]
    shared, other_doctors = next((p, s) for p, _ in mine for s in p.studies
                                 if (p, s) not in mine and p is not referred[0])
    for study in (referred[1], other_doctors):
        db.execute("UPDATE cached_studies SET first_seen_at = ? WHERE study_uid = ?",
                   (datetime.datetime(2099, 1, 1), study.study_uid))
    # As the sync records arrivals: the studies' first_seen_at, then their patients' rows.
    sync.refresh_patients(db, [row["orthanc_id"] for row in db.query("SELECT orthanc_id FROM cached_patients")],
                          datetime.datetime(2099, 1, 1))
    db.commit()
    later = app.test_client()
    login(later, "house2", PASSWORD)
    listed = worklist(later, per_page=200)["patients"]
    assert shared.patient_id in [p["patientID"] for p in listed]
    assert [p["patientID"] for p in listed if p["hasNewStudies"]] == [referred[0].patient_id]


def test_orthanc_problems_in_the_viewer_paths(app, empty_orthanc, sample_plan, db):
    from pacs_lite.sample_data import generate_study_files, upload_files

    client = point_at(app, empty_orthanc)
    patient = next(p for p in sample_plan.patients if len(p.studies) >= 2)
    for study in patient.studies[:2]:
        upload_files(generate_study_files(patient, study), client)
    sync.sync_once(connect(app.config["DATABASE_URL"]), client, app.config["DATABASE_URL"])
    make_user(app, "rad", PASSWORD, "radiologist")
    browser = app.test_client()
    login(browser, "rad", PASSWORD)
    kept, deleted = patient.studies[0], patient.studies[1]
    image = open_study(browser, kept.study_uid)["images"][0]
    # A study deleted in Orthanc: 404, and it leaves the cache at once.
    client.delete_study(db.query_value("SELECT orthanc_id FROM cached_studies WHERE study_uid = ?",
                                       (deleted.study_uid,)))
    assert browser.get(f"/api/load_study_fast?studyUID={deleted.study_uid}").status_code == 404
    assert db.query_value("SELECT COUNT(*) FROM cached_studies WHERE study_uid = ?", (deleted.study_uid,)) == 0
    # Orthanc down: the viewer paths say so with 502, the worklist still answers from the cache.
    empty_orthanc.stop(kill=True)
    for path in (f"/api/load_study_fast?studyUID={kept.study_uid}",
                 f"/api/get_dicom_orthanc?instanceId={image['instanceId']}"):
        response = browser.get(path)
        assert response.status_code == 502 and "not reachable" in response.get_json()["error"]
    with pytest.raises(Exception):
        sync.sync_once(connect(app.config["DATABASE_URL"]), client, app.config["DATABASE_URL"])
    body = worklist(browser)
    assert body["total"] == 1 and "Orthanc" in body["cache"]["orthancError"]
    client.close()


def use_plan(monkeypatch, plan):
    """Make the worklist read its matches as the plan says: "few" (the defaults: up to 2,000 are sorted as a set),
    "walked" (always as many, walking the sort index), or "sorted" (always as many, read from all of them
    sorted)."""
    from pacs_lite import worklist as worklist_sql

    if plan != "few":
        monkeypatch.setattr(worklist_sql, "FEW_MATCHES", 0)
        monkeypatch.setattr(worklist_sql, "MAX_WALK_PER_MATCH", 10 ** 9 if plan == "walked" else 0)


def use_page_anchors_every(monkeypatch, rows):
    """Make the worklist read deep pages from page anchors this many rows apart, with none kept yet."""
    from pacs_lite import worklist as worklist_sql

    monkeypatch.setattr(worklist_sql, "ANCHOR_EVERY", rows)
    monkeypatch.setattr(worklist_sql, "_kept_anchors", {})


@pytest.mark.parametrize("args", [
    {}, {"page": "2", "per_page": "5"}, {"sort": "name", "page": "3", "per_page": "4"},
    {"sort": "patient_id", "order": "desc", "page": "2", "per_page": "3"},
    {"search": "s"}, {"search": "pl00", "sort": "name"}, {"search": "pl"}, {"modality": "CT"},
    {"modality": "MR", "sort": "name"}, {"modality": "US", "order": "asc", "page": "2", "per_page": "2"},
    {"date_from": "2018-01-01", "date_to": "2022-12-31", "modality": "MR"}, {"search": "a", "modality": "CR"},
    {"date_from": "2020-01-01"}, {"date_from": "2020-01-01", "date_to": "2099-12-31", "sort": "patient_id"},
    {"date_from": "2018-01-01", "date_to": "2022-12-31"},
    {"search": "s", "page": "2", "per_page": "3"}, {"search": "m", "sort": "name", "page": "2", "per_page": "2"},
    {"date_from": "2018-01-01", "date_to": "2022-12-31", "page": "3", "per_page": "2"},
    {"search": "a", "modality": "CR", "order": "asc", "page": "2", "per_page": "1"},
])
def test_every_query_plan_gives_the_same_page(radiologist, monkeypatch, args):
    from pacs_lite import worklist as worklist_sql

    expected = worklist(radiologist, **args)
    # Deep pages read from page anchors, and many matches walked along the sort index or sorted, agree with the
    # defaults.
    use_page_anchors_every(monkeypatch, 2)
    monkeypatch.setattr(worklist_sql, "FEW_MATCHES", 0)
    for walk_per_match in (10 ** 9, 0):
        monkeypatch.setattr(worklist_sql, "MAX_WALK_PER_MATCH", walk_per_match)
        again = worklist(radiologist, **args)
        assert patient_ids(again) == patient_ids(expected) and again["total"] == expected["total"], walk_per_match


def test_a_rare_word_of_a_common_prefix_is_read_as_few_matches(radiologist, monkeypatch):
    from pacs_lite import worklist as worklist_sql

    # Three sample patients have a name word starting with MAR; one has MARIO.
    monkeypatch.setattr(worklist_sql, "FEW_MATCHES", 2)
    few = []
    read_few = worklist_sql._page_of_few_matches
    monkeypatch.setattr(worklist_sql, "_page_of_few_matches", lambda *call: few.append(call) or read_few(*call))
    mario = worklist(radiologist, search="mario")
    assert patient_ids(mario) == ["PL0014"] and mario["total"] == 1 and len(few) == 1
    # Three patients for "mar" are many here: not read as few, their total read from the kept count.
    mar = worklist(radiologist, search="mar")
    assert sorted(patient_ids(mar)) == ["PL0013", "PL0014", "PL0018"] and mar["total"] == 3 and len(few) == 1


@pytest.mark.parametrize("search, expected", [("mari", ["PL0013", "PL0014", "PL0018"]), ("smit", ["PL0011", "PL0012"]),
                                              ("pete", ["PL0012"]), ("p", None)])
def test_a_search_of_one_short_word_is_sorted_without_counting_its_matches(radiologist, monkeypatch, search,
                                                                            expected):
    from pacs_lite import worklist as worklist_sql

    # A word of up to four characters: its total is the kept count of its prefix, so its matches are only sorted
    # (by name here; newest first, see the next test). But "p" starts PETER and PHD and every PatientID: only a
    # count of both together is exact.
    read_few = worklist_sql._page_of_few_matches
    few = []
    monkeypatch.setattr(worklist_sql, "_page_of_few_matches", lambda *call: few.append(call) or read_few(*call))
    everyone = patient_ids(worklist(radiologist, sort="name", per_page=200))
    body = worklist(radiologist, search=search, sort="name", per_page=200)
    assert len(few) == (1 if expected is None else 0)
    expected = everyone if expected is None else [pid for pid in everyone if pid in expected]
    assert patient_ids(body) == expected and body["total"] == len(expected)


@pytest.mark.parametrize("args", [{}, {"modality": "CT"}, {"modality": "MR"}, {"date_from": "2020-01-01"},
                                  {"date_from": "2099-01-01"}])
def test_a_search_of_one_short_word_is_read_newest_first_along_its_prefix(radiologist, db, monkeypatch, args):
    from pacs_lite import worklist as worklist_sql

    along = []
    read_along = worklist_sql._page_along_name_prefix
    monkeypatch.setattr(worklist_sql, "_page_along_name_prefix", lambda *call: along.append(call) or read_along(*call))
    # The filter alone, and each search sorted by name, are read another way.
    everyone = patient_ids(worklist(radiologist, **args, per_page=200))
    searches = ("s", "ma", "mari", "jurg", "d", "山")
    for search in searches:
        found = set(patient_ids(worklist(radiologist, search=search, **args, sort="name", per_page=200)))
        expected = [pid for pid in everyone if pid in found]
        body = worklist(radiologist, search=search, **args, per_page=200)
        assert patient_ids(body) == expected and body["total"] == len(expected), search
        for page in (2, 50):
            paged = worklist(radiologist, search=search, **args, per_page=2, page=page)
            assert patient_ids(paged) == expected[2 * page - 2:2 * page] and paged["total"] == len(expected), search
    assert len(along) == len(searches) * 3
    assert any(worklist(radiologist, search=search, **args)["total"] for search in searches) == (
        args.get("date_from") != "2099-01-01")
    # The page is read from the prefix's rows.
    db.execute("DELETE FROM cached_name_prefix_patients WHERE prefix = 'S'")
    db.commit()
    assert worklist(radiologist, search="s", **args)["patients"] == []


@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
@pytest.mark.parametrize("args", [{"date_from": "2016-01-01", "date_to": "2019-12-31"},
                                  {"date_from": "2017-03-05", "date_to": "2018-06-30"},
                                  {"date_to": "2018-12-31"}])
def test_a_short_word_with_a_date_range_finds_its_patients_under_its_prefix_and_dates(radiologist, db, monkeypatch,
                                                                                      plan, args):
    from pacs_lite import worklist as worklist_sql

    use_plan(monkeypatch, plan)
    dated = []
    read_dated = worklist_sql.name_prefix_dates
    monkeypatch.setattr(worklist_sql, "name_prefix_dates", lambda *call: dated.append(call) or read_dated(*call))
    in_range = {sort: patient_ids(worklist(radiologist, **args, sort=sort, per_page=200))
                for sort in ("last_study_date", "name")}
    searches = ("s", "ma", "mari", "d", "山")
    for search in searches:
        # The search alone and the range alone are read another way.
        found = set(patient_ids(worklist(radiologist, search=search, sort="name", per_page=200)))
        for sort, everyone in in_range.items():
            expected = [pid for pid in everyone if pid in found]
            body = worklist(radiologist, search=search, **args, sort=sort, per_page=200)
            assert patient_ids(body) == expected and body["total"] == len(expected), (search, sort)
            paged = worklist(radiologist, search=search, **args, sort=sort, per_page=2, page=2)
            assert patient_ids(paged) == expected[2:4] and paged["total"] == len(expected), (search, sort)
    assert len(dated) == len(searches) * 4
    # The patients are read from the prefix's date rows.
    assert worklist(radiologist, search="s", **args)["total"] > 0
    db.execute("DELETE FROM cached_name_prefix_dates WHERE prefix = 'S'")
    db.commit()
    assert worklist(radiologist, search="s", **args) | {"cache": None} == {
        "success": True, "patients": [], "total": 0, "page": 1, "per_page": 50, "nextCursor": None, "cache": None}


@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
def test_a_modality_or_a_date_range_open_at_its_end_is_counted_right(radiologist, sample_plan, monkeypatch, plan):
    use_plan(monkeypatch, plan)  # as many matches, the total is read from the kept counts
    studies = [(p, s) for p in sample_plan.patients for s in p.studies]
    dates = sorted(iso(s.study_date) for _, s in studies)
    since = dates[len(dates) // 2]
    expected = {p.patient_id for p, s in studies if iso(s.study_date) >= since}
    for date_to in ("", dates[-1], "2099-12-31"):
        body = worklist(radiologist, date_from=since, date_to=date_to, per_page=200)
        assert set(patient_ids(body)) == expected and body["total"] == len(expected)
    expected = {p.patient_id for p, s in studies if "MR" in s.modalities}
    body = worklist(radiologist, modality="MR", per_page=200)
    assert set(patient_ids(body)) == expected and body["total"] == len(expected)


# Made-up patients (a letter each) and their studies: (DICOM date or '' for none, modalities of its series).
DATED_STUDIES = {
    "a": [("20200105", ["CT"]), ("20200105", ["MR"]), ("20210301", ["CT"])],
    "b": [("", ["CT"]), ("20190101", ["CT"])],
    "c": [("", ["MR"])],
    "d": [("20200105", ["CT", "MR"])],
    "e": [("20180101", ["US"]), ("20200601", ["CT"]), ("20220101", ["CT"]), ("20230101", ["MR"])],
    "f": [("20200105", ["CT"]), ("20200105", ["CT"])],
    "g": [("20200230", ["CT"]), ("20201345", ["MR"])],  # no days of the calendar: unknown dates
}


@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
def test_a_date_range_keeps_the_patients_with_a_study_of_known_date_in_it(db, monkeypatch, plan):
    from pacs_lite import cache, worklist as worklist_sql
    from pacs_lite.visibility import Scope

    use_plan(monkeypatch, plan)  # as many matches, the total is counted apart
    now = datetime.datetime(2026, 1, 1)
    studies = [made_up_study(patient, number, date, modalities)
               for number, (patient, own) in enumerate(DATED_STUDIES.items())
               for number, (date, modalities) in enumerate(own, start=10 * number)]
    with db.transaction():
        sync.write_studies(db, studies, now)
    patients = {row["orthanc_id"]: row for row in db.query("SELECT * FROM cached_patients")}
    in_order = {"last_study_date": sorted(patients, key=lambda pid: (patients[pid]["last_study_date"], pid),
                                          reverse=True),
                "name": sorted(patients, key=lambda pid: (patients[pid]["name_key"], pid))}
    scope, state = Scope(user_id=1, referring_key=None), cache.get_sync_state(db)
    # With whole years and months, whose totals are kept (2019, 2020, 2020-01, 2020-02, 2020-06, 2021-03).
    ranges = [(date_from, date_to)
              for date_from in ("", "2019-01-01", "2020-01-01", "2020-01-05", "2020-01-06", "2020-02-01",
                                "2020-06-01", "2021-01-01", "2021-03-01")
              for date_to in ("", "2019-12-31", "2020-01-05", "2020-01-31", "2020-02-29", "2020-06-30", "2020-12-31",
                              "2021-03-01", "2021-03-31", "2022-12-31", "2099-12-31")
              if (date_from or date_to) and not (date_to and date_from > date_to)]
    assert {worklist_sql.whole_period(worklist_sql.WorklistQuery(date_from=f, date_to=t)) for f, t in ranges} == {
        None, "2019", "2020", "2020-01", "2020-02", "2020-06", "2021-03"}
    for (date_from, date_to), modality in itertools.product(ranges, ("", "CT", "MR", "US")):
        kept = {study["ParentPatient"] for study, series in studies
                if is_day(study["MainDicomTags"]["StudyDate"])
                and (date_from or "0") <= iso(study["MainDicomTags"]["StudyDate"]) <= (date_to or "9")
                and (not modality or modality in {s["MainDicomTags"]["Modality"] for s in series})}
        # "b" matches patient B's name and PatientID both; "test" every name.
        for search, sort in itertools.product(("", "test", "b"), in_order):
            query = worklist_sql.WorklistQuery(date_from=date_from, date_to=date_to, modality=modality,
                                               search=search, sort=sort, order="desc" if sort != "name" else "asc")
            expected = [pid for pid in in_order[sort] if pid in kept and (search != "b" or pid.startswith("b"))]
            rows, total = worklist_sql.list_patients(db, query, scope, state)
            assert [row["orthanc_id"] for row in rows] == expected and total == len(expected), query
            rows, total = worklist_sql.list_patients(db, replace(query, page=2, per_page=2), scope, state)
            assert [row["orthanc_id"] for row in rows] == expected[2:4] and total == len(expected), query


@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
def test_a_search_with_filters_keeps_the_patients_both_keep(radiologist, sample_plan, monkeypatch, plan):
    from pacs_lite import worklist as worklist_sql

    use_plan(monkeypatch, plan)
    # A seek weighed as one row, so that with the sample's few patients each filter is read first for some search.
    monkeypatch.setattr(worklist_sql, "ROWS_PER_SEEK", 1)
    tested_first = []
    matching = worklist_sql.matching_patients
    monkeypatch.setattr(worklist_sql, "matching_patients",
                        lambda query, words, by_patient_id, filter_first=False:
                        tested_first.append((query.search, query.modality, query.date_from, query.date_to, filter_first))
                        or matching(query, words, by_patient_id, filter_first))
    dates = sorted(iso(s.study_date) for p in sample_plan.patients for s in p.studies)
    filters = [{"modality": "CT"}, {"date_from": dates[len(dates) // 2]}, {"date_from": dates[3], "date_to": dates[3]},
               {"date_from": dates[2], "date_to": dates[-3], "modality": "MR"}]
    for search in ("s", "m", "pl", "pl00", "muller"):
        by_search = {p["patientID"]: p for p in worklist(radiologist, search=search, per_page=200)["patients"]}
        for args in filters:
            kept = set(patient_ids(worklist(radiologist, **args, per_page=200))) & set(by_search)
            body = worklist(radiologist, search=search, **args, per_page=200)
            # Newest first, ties by Orthanc id (descending), as the worklist sorts.
            expected = sorted(kept, key=lambda pid: (by_search[pid]["lastStudyDate"], by_search[pid]["orthancId"]),
                              reverse=True)
            assert patient_ids(body) == expected and body["total"] == len(expected), (search, args)
    # With the default bounds, each filter was read first (the search tested on its rows) for some search, and
    # the search first for another.
    for args in filters if plan == "few" else []:
        for first in (True, False):
            assert any((modality, date_from, date_to, filter_first) == (
                args.get("modality", ""), args.get("date_from", ""), args.get("date_to", ""), first)
                for search, modality, date_from, date_to, filter_first in tested_first if search), (args, first)


@pytest.mark.parametrize("args, period", [({"date_from": "2019-01-01", "date_to": "2019-12-31"}, "2019"),
                                          ({"date_from": "2016-03-01", "date_to": "2016-03-31", "modality": "CT"},
                                           "2016-03"),
                                          ({"date_from": "2024-02-01", "date_to": "2024-02-29"}, "2024-02")])
def test_a_whole_year_or_months_page_and_total_are_read_from_what_the_cache_keeps(radiologist, db, sample_plan, args,
                                                                                  period):
    first, last = args["date_from"].replace("-", ""), args["date_to"].replace("-", "")
    expected = {p.patient_id for p in sample_plan.patients for s in p.studies
                if first <= s.study_date <= last and args.get("modality", s.modalities[0]) in s.modalities}
    everyone = patient_ids(worklist(radiologist, per_page=200))
    counted = worklist(radiologist, **args, per_page=200)
    assert patient_ids(counted) == [pid for pid in everyone if pid in expected] and counted["total"] == len(expected)
    # Sorted by name, the same patients, found another way.
    assert set(patient_ids(worklist(radiologist, **args, sort="name", per_page=200))) == expected
    db.execute("INSERT INTO cached_period_counts (modality, span, period, previous_period, patient_count) "
               "VALUES (?, ?, ?, ?, 1000)", (args.get("modality", ""), "year" if len(period) == 4 else "month", period,
                                             "0000-00"[:len(period)]))
    db.commit()
    assert worklist(radiologist, **args)["total"] == len(expected) + 1000
    # Newest first, the page is read along the period's rows of cached_period_patients.
    db.execute("DELETE FROM cached_period_patients WHERE modality = ? AND period = ?",
               (args.get("modality", ""), period))
    db.commit()
    assert worklist(radiologist, **args)["patients"] == []


@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
@pytest.mark.parametrize("args, span", [({"date_from": "2016-01-01", "date_to": "2019-12-31"}, "year"),
                                        ({"date_from": "2016-01-01", "date_to": "2019-12-31", "modality": "CT"}, "year"),
                                        ({"date_to": "2018-12-31"}, "year"),
                                        ({"date_from": "2019-11-01", "date_to": "2020-02-29"}, "month"),
                                        ({"date_from": "2017-03-01", "date_to": "2018-10-31", "modality": "MR"},
                                         "month")])
def test_a_range_of_whole_years_or_months_takes_its_total_from_the_kept_counts(radiologist, db, sample_plan,
                                                                               monkeypatch, plan, args, span):
    use_plan(monkeypatch, plan)
    first, last = args.get("date_from", "0001-01-01"), args["date_to"]
    expected = {p.patient_id for p in sample_plan.patients for s in p.studies
                if first.replace("-", "") <= s.study_date <= last.replace("-", "")
                and args.get("modality", s.modalities[0]) in s.modalities}
    everyone = patient_ids(worklist(radiologist, per_page=200))
    body = worklist(radiologist, **args, per_page=200)
    assert expected and patient_ids(body) == [pid for pid in everyone if pid in expected]
    assert body["total"] == len(expected)
    # The total is the sum of the kept counts of the range's periods whose period before is not in it: a count
    # put before the range's first period adds to it, and counts added to those after it do not.
    length = 4 if span == "year" else 7
    db.execute("INSERT INTO cached_period_counts (modality, span, period, previous_period, patient_count) "
               "VALUES (?, ?, ?, ?, 1000)", (args.get("modality", ""), span, last[:length], "0000-00"[:length]))
    db.execute("UPDATE cached_period_counts SET patient_count = patient_count + 500 WHERE modality = ? AND span = ? "
               "AND period >= ? AND period <= ? AND previous_period >= ?",
               (args.get("modality", ""), span, first[:length], last[:length], first[:length]))
    db.commit()
    assert worklist(radiologist, **args)["total"] == len(expected) + 1000


def test_a_modality_filters_total_is_read_from_the_kept_count(radiologist, db, monkeypatch):
    from pacs_lite import worklist as worklist_sql

    monkeypatch.setattr(worklist_sql, "FEW_MATCHES", 0)
    counted = worklist(radiologist, modality="CT")["total"]
    db.execute("UPDATE cached_modality_counts SET patient_count = patient_count + 1000 WHERE modality = 'CT'")
    db.commit()
    assert counted > 0 and worklist(radiologist, modality="CT")["total"] == counted + 1000


@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
def test_a_short_word_with_a_modalitys_total_is_read_from_the_kept_count(radiologist, sample_plan, db, monkeypatch,
                                                                        plan):
    from pacs_lite import worklist as worklist_sql

    use_plan(monkeypatch, plan)
    read_kept = worklist_sql.total_from_prefix_modality_counts
    kept = []
    monkeypatch.setattr(worklist_sql, "total_from_prefix_modality_counts",
                        lambda *call: kept.append(read_kept(*call)) or kept[-1])
    for sort in ("last_study_date", "name"):
        everyone = patient_ids(worklist(radiologist, sort=sort, per_page=200))
        for search, modality in itertools.product(("s", "ma", "mari", "d", "smith", "pl"), ("CT", "MR", "CR", "XA")):
            with_modality = {p.patient_id for p in sample_plan.patients if any(
                modality in {series.modality for series in study.series} for study in p.studies)}
            found = set(patient_ids(worklist(radiologist, search=search, per_page=200))) & with_modality
            body = worklist(radiologist, search=search, modality=modality, sort=sort, per_page=200)
            assert patient_ids(body) == [pid for pid in everyone if pid in found] and body["total"] == len(found), (
                search, modality, sort)
    # Sorted by name, read for the short words that start no PatientID (every PatientID starts with PL), and none
    # else; newest first, the short words read theirs with their page (see the next test), and the others none.
    assert len(kept) == 6 * 4 + 2 * 4 and sum(total is not None for total in kept) == 4 * 4
    # The total is the kept count's.
    db.execute("UPDATE cached_name_prefix_modalities SET patient_count = patient_count + 1000 "
               "WHERE prefix = 'S' AND modality = 'CT'")
    db.commit()
    for sort in ("last_study_date", "name"):
        assert worklist(radiologist, search="s", modality="CT", sort=sort)["total"] == len(
            set(patient_ids(worklist(radiologist, search="s", modality="CT", per_page=200)))) + 1000


@pytest.mark.parametrize("args", [{}, {"search": "s"}, {"search": "pl00"}, {"modality": "CT"},
                                  {"date_from": "2018-01-01"}, {"modality": "MR", "sort": "name"}])
def test_a_page_past_the_last_keeps_the_total(radiologist, args):
    total = worklist(radiologist, **args)["total"]
    past = worklist(radiologist, **args, page=99)
    assert past["patients"] == [] and past["total"] == total > 0


def test_the_unfiltered_total_follows_the_cache(radiologist, synced, db, sample_plan):
    assert worklist(radiologist)["total"] == len(sample_plan.patients)
    orthanc_id = db.query_value("SELECT orthanc_id FROM cached_studies WHERE study_uid = ?",
                                (sample_plan.patients[0].studies[0].study_uid,))
    for study in sample_plan.patients[0].studies:
        sync.evict_study(db, db.query_value("SELECT orthanc_id FROM cached_studies WHERE study_uid = ?",
                                            (study.study_uid,)))
    assert orthanc_id and worklist(radiologist)["total"] == len(sample_plan.patients) - 1
    assert db.query_value("SELECT COUNT(*) FROM cached_patients") == len(sample_plan.patients) - 1


@pytest.mark.parametrize("sort", ["last_study_date", "name"])
def test_deep_pages_follow_the_cache(radiologist, synced, db, sample_plan, monkeypatch, sort):
    use_page_anchors_every(monkeypatch, 2)

    def every_page(numbers=range(1, 30)):
        pages = {n: patient_ids(worklist(radiologist, sort=sort, per_page=3, page=n)) for n in numbers}
        return [pid for n in sorted(pages) for pid in pages[n]]

    whole = patient_ids(worklist(radiologist, sort=sort, per_page=200))
    assert every_page(range(29, 0, -1)) == whole and len(whole) == len(sample_plan.patients)
    use_page_anchors_every(monkeypatch, 2)
    assert every_page() == whole
    # A patient leaves the middle of the list: the anchors read before must not be used again.
    gone = next(p for p in sample_plan.patients if p.patient_id == whole[len(whole) // 2])
    for study in gone.studies:
        sync.evict_study(db, db.query_value("SELECT orthanc_id FROM cached_studies WHERE study_uid = ?",
                                            (study.study_uid,)))
    whole_now = patient_ids(worklist(radiologist, sort=sort, per_page=200))
    assert every_page() == whole_now == [pid for pid in whole if pid != gone.patient_id]


@pytest.mark.parametrize("args", [
    {}, {"sort": "name", "per_page": "3", "page": "2"}, {"sort": "patient_id", "order": "desc"}, {"search": "s"},
    {"search": "pl00", "sort": "name"}, {"search": "müller", "page": "1"}, {"modality": "CT"},
    {"modality": "MR", "search": "m", "sort": "name"}, {"date_from": "2019-01-01", "per_page": "2", "page": "2"},
    {"date_from": "2019-01-01", "date_to": "2099-12-31", "sort": "patient_id"},
    {"date_from": "2016-01-01", "date_to": "2019-12-31"}, {"date_to": "2018-06-30", "sort": "name"},
    {"date_from": "2017-01-01", "date_to": "2021-12-31", "modality": "CT", "per_page": "1", "page": "2"},
    {"date_from": "2015-01-01", "date_to": "2022-12-31", "search": "s"},
])
def test_a_referring_doctors_list_is_the_same_read_from_referrals_or_grouped_from_studies(house, db, monkeypatch,
                                                                                          args):
    from pacs_lite import worklist as worklist_sql

    grouped = []
    group = worklist_sql._list_patients_of_visible_studies
    monkeypatch.setattr(worklist_sql, "_list_patients_of_visible_studies",
                        lambda *call: grouped.append(call) or group(*call))
    expected = worklist(house, **args)
    past_the_last = worklist(house, **{**args, "page": "99"})
    assert grouped == []  # read from cached_referrals
    # A live grant for a patient without studies changes nothing but sends the list through the grouping.
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    with db.transaction():
        studies.grant_break_glass(db, db.query_value("SELECT id FROM users WHERE username = 'house'"),
                                  "0" * 8 + "-00000000" * 4, "a grant of no study", now,
                                  now + datetime.timedelta(hours=1))
    again = worklist(house, **args)
    assert len(grouped) == 1
    assert without_cache_age(again) == without_cache_age(expected) and expected["total"] > 0
    assert without_cache_age(worklist(house, **{**args, "page": "99"})) == without_cache_age(past_the_last)
    assert len(grouped) == 2 and past_the_last["patients"] == [] and past_the_last["total"] == expected["total"]


def without_cache_age(body):
    """Return a worklist answer without its cache block, whose age in seconds moves on while a test runs."""
    return {key: value for key, value in body.items() if key != "cache"}


@pytest.mark.parametrize("user, args", [
    ("radiologist", {}), ("radiologist", {"sort": "name"}), ("radiologist", {"sort": "patient_id", "order": "desc"}),
    ("radiologist", {"search": "s"}), ("radiologist", {"search": "m", "modality": "CT"}),
    ("radiologist", {"search": "a", "date_from": "2016-01-01"}), ("radiologist", {"modality": "CT"}),
    ("radiologist", {"date_from": "2019-01-01", "date_to": "2019-12-31"}),
    ("radiologist", {"date_from": "2018-01-01", "date_to": "2018-12-31", "modality": "CT"}),
    ("radiologist", {"modality": "MR", "order": "asc"}), ("radiologist", {"date_from": "2018-01-01"}),
    ("radiologist", {"date_from": "2018-01-01", "date_to": "2022-12-31", "sort": "name"}),
    ("radiologist", {"date_from": "2016-01-01", "date_to": "2023-12-31", "modality": "MR"}),
    ("house", {}), ("house", {"sort": "name", "order": "desc"}),
    ("house", {"date_from": "2016-01-01", "date_to": "2023-12-31"}),
])
@pytest.mark.parametrize("plan", ["few", "walked", "sorted"])
def test_paging_by_cursor_gives_the_pages_of_page_numbers(radiologist, house, monkeypatch, user, args, plan):
    browser = {"radiologist": radiologist, "house": house}[user]
    if plan != "few":
        use_page_anchors_every(monkeypatch, 2)
        use_plan(monkeypatch, plan)  # a cursor's page is always walked
    first = worklist(browser, **args, per_page=2)
    pages, cursor = [first], first["nextCursor"]
    for page in range(2, 100):
        numbered = worklist(browser, **args, per_page=2, page=page)
        # page=1 with the cursor: the cursor alone says where the page starts.
        by_cursor = worklist(browser, **args, per_page=2, cursor=cursor) if cursor else {"patients": []}
        assert patient_ids(by_cursor) == patient_ids(numbered)
        if not numbered["patients"]:
            break
        assert by_cursor["total"] == numbered["total"] == first["total"]
        pages.append(numbered)
        cursor = by_cursor["nextCursor"]
    seen = [pid for page in pages for pid in patient_ids(page)]
    assert len(seen) == len(set(seen)) == first["total"] > 2
    assert pages[-1]["nextCursor"] is None or len(pages[-1]["patients"]) == 2
