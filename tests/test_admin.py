"""The admin pages (users, audit log, sync), on SQLite and MariaDB, against a real Orthanc."""

import csv
import datetime
import html
import io
import re
import time
from types import SimpleNamespace

import pytest

from pacs_lite import audit, audit_log, cache, users
from pacs_lite.clock import utc_now
from pacs_lite.db import exclusive_lock
from pacs_lite.names import search_key
from pacs_lite.sync import LOCK_NAME
from tests.conftest import csrf_token, login, make_user, point_at

PASSWORD = "correct horse battery"
PAGES = ["/admin/users", "/admin/users/new", "/admin/users/{id}", "/admin/audit", "/admin/audit.csv", "/admin/sync"]
POSTS = ["/admin/users", "/admin/users/{id}", "/admin/users/{id}/password", "/admin/users/{id}/deactivate",
         "/admin/users/{id}/reactivate", "/admin/sync"]


@pytest.fixture
def admin(app):
    """A test client logged in as the admin root (the only admin)."""
    make_user(app, "root", PASSWORD, "admin", full_name="Root Admin")
    browser = app.test_client()
    assert login(browser, "root", PASSWORD).status_code == 302
    return browser


def logged_in(app, username, role, **fields):
    """Create a user and return a test client logged in as them."""
    make_user(app, username, PASSWORD, role, **fields)
    browser = app.test_client()
    assert login(browser, username, PASSWORD).status_code == 302
    return browser


def user_id(db, username):
    """Return the id of a user."""
    return users.get_user_by_username(db, username)["id"]


def post(browser, path, data=None, page="/admin/users"):
    """Post a form with the CSRF token of a page, the way a browser does."""
    return browser.post(path, data={"csrf_token": csrf_token(browser, page), **(data or {})})


def auth_events(db, event_type):
    """Return the auth_events rows of one type, oldest first."""
    return db.query("SELECT * FROM auth_events WHERE event_type = ? ORDER BY id", (event_type,))


def flashed(browser, path="/admin/users"):
    """Return the text of the alerts on a page (where a redirect's flash message shows)."""
    page = browser.get(path).get_data(as_text=True)
    return " ".join(re.findall(r'<div class="alert [^"]*" role="status">([^<]*)</div>', page))


def text(response):
    """Return a response's body as text, with HTML's escapes of quotes undone."""
    return response.get_data(as_text=True).replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")


# --- who may see the admin pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_admin_pages_are_for_admins_only(app, db, admin, path):
    path = path.format(id=user_id(db, "root"))
    assert admin.get(path).status_code == 200
    for role, extra in (("radiologist", {}), ("referring_doctor", {"dicom_name": "HOUSE^GREGORY"})):
        response = logged_in(app, f"a_{role}", role, **extra).get(path)
        assert response.status_code == 403, role
        assert "your role may not open this page" in response.get_data(as_text=True)
    response = app.test_client().get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/auth/login?next=")


@pytest.mark.parametrize("path", POSTS)
def test_admin_actions_are_for_admins_only(app, db, admin, path):
    path = path.format(id=user_id(db, "root"))
    radiologist = logged_in(app, "rad", "radiologist")
    assert post(radiologist, path, page="/patients").status_code == 403
    logged_out = app.test_client()
    response = post(logged_out, path, page="/auth/login")
    assert response.status_code == 302 and response.headers["Location"].startswith("/auth/login")
    assert users.get_user_by_username(db, "root")["is_active"] == 1


def test_every_admin_route_is_guarded(app, db, admin):
    radiologist = logged_in(app, "rad", "radiologist")
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")]
    assert len(rules) >= 10
    for rule in rules:
        path = rule.rule.replace("<int:user_id>", str(user_id(db, "root")))
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if method == "GET":
                response = radiologist.get(path)
            else:
                response = post(radiologist, path, page="/patients")
            assert response.status_code == 403, (method, path)


def test_the_admin_menu_shows_for_admins_only(app, admin):
    page = admin.get("/patients").get_data(as_text=True)
    for link in ('href="/admin/users"', 'href="/admin/audit"', 'href="/admin/sync"', ">Admin</summary>"):
        assert link in page
    other = logged_in(app, "rad", "radiologist").get("/patients").get_data(as_text=True)
    assert "/admin/" not in other and ">Admin<" not in other


@pytest.mark.parametrize("path", PAGES[:4] + PAGES[5:])
def test_admin_pages_have_no_inline_scripts_or_handlers(db, admin, path):
    page = admin.get(path.format(id=user_id(db, "root"))).get_data(as_text=True)
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert not re.search(r"\son[a-z]+\s*=", page)


@pytest.mark.parametrize("path", POSTS)
def test_every_admin_post_needs_the_csrf_token(db, admin, path):
    root = user_id(db, "root")
    before = db.query_value("SELECT COUNT(*) FROM auth_events")
    response = admin.post(path.format(id=root), data={"username": "eve", "role": "admin", "full_name": "x"})
    assert response.status_code == 400
    assert "did not come from this site" in response.get_data(as_text=True)
    response = admin.post(path.format(id=root), data={"csrf_token": "forged", "username": "eve", "role": "admin"})
    assert response.status_code == 400
    assert db.query_value("SELECT COUNT(*) FROM auth_events") == before
    assert users.get_user_by_username(db, "eve") is None


# --- users -----------------------------------------------------------------------------------------------------


def test_the_user_list_shows_every_user(app, admin):
    make_user(app, "house", role="referring_doctor", full_name="Gregory House", dicom_name="HOUSE^GREGORY")
    make_user(app, "nobody", role="referring_doctor")
    page = admin.get("/admin/users").get_data(as_text=True)
    for value in ("root", "Root Admin", "house", "Gregory House", "Referring doctor", "HOUSE^GREGORY", "Admin"):
        assert value in page
    row = re.search(r'<tr [^>]*data-username="root">(.*?)</tr>', page, re.S).group(1)
    assert "active" in row and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row)  # root's last login
    row = re.search(r'<tr [^>]*data-username="house">(.*?)</tr>', page, re.S).group(1)
    assert "never" in row
    row = re.search(r'<tr [^>]*data-username="nobody">(.*?)</tr>', page, re.S).group(1)
    assert "sees no studies" in row


def test_creating_a_user_shows_a_one_time_password_that_must_be_changed(app, db, admin):
    form = {"username": " Dr.Cuddy ", "full_name": "Lisa Cuddy", "email": "cuddy@example.org",
            "role": "referring_doctor", "dicom_name": "Cuddy^Lisa"}
    response = post(admin, "/admin/users", form, page="/admin/users/new")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="one-time-password">([^<]+)<', response.get_data(as_text=True)).group(1)
    assert len(password) >= 10
    user = users.get_user_by_username(db, "dr.cuddy")
    assert (user["role"], user["full_name"], user["email"], user["dicom_name"], user["dicom_name_key"]) == (
        "referring_doctor", "Lisa Cuddy", "cuddy@example.org", "Cuddy^Lisa", "CUDDY LISA")
    assert user["must_change_password"] == 1 and user["is_active"] == 1
    event = auth_events(db, "user_created")[-1]
    assert (event["username"], event["actor"], event["detail"]) == ("dr.cuddy", "root", "role referring_doctor")
    assert password not in str(db.query("SELECT * FROM auth_events"))
    cuddy = app.test_client()
    assert login(cuddy, "dr.cuddy", password).headers["Location"] == "/account/password"
    assert cuddy.get("/patients").headers["Location"] == "/account/password"
    assert "dr.cuddy" in admin.get("/admin/users").get_data(as_text=True)


@pytest.mark.parametrize("form, message", [
    ({"username": "bad name!", "role": "radiologist"}, "the username must be"),
    ({"username": "", "role": "radiologist"}, "the username must be"),
    ({"username": "newbie", "role": "superuser"}, "unknown role 'superuser'"),
    ({"username": "ROOT", "role": "radiologist"}, "a user named 'root' exists already"),
    ({"username": "newbie", "role": "radiologist", "email": "not an address"}, "is not an email address"),
    ({"username": "newbie", "role": "radiologist", "full_name": "x" * 129}, "the full name is too long"),
])
def test_bad_input_re_renders_the_new_user_form_with_the_message(db, admin, form, message):
    before = db.query_value("SELECT COUNT(*) FROM users")
    response = post(admin, "/admin/users", {"full_name": "Kept Name", **form}, page="/admin/users/new")
    assert response.status_code == 400
    page = text(response)
    assert re.search(r'id="form-error">Not created: [^<]*' + re.escape(message), page)
    assert f'value="{form.get("full_name", "Kept Name")}"' in page  # what was typed stays
    assert db.query_value("SELECT COUNT(*) FROM users") == before


def test_editing_a_user_saves_the_profile_and_audits_the_change(app, db, admin):
    make_user(app, "alice", role="radiologist", full_name="Alice")
    alice = user_id(db, "alice")
    form = {"full_name": "Alice Liddell", "email": "alice@example.org", "role": "referring_doctor",
            "dicom_name": "Liddell^Alice", "username": "hacker"}
    response = post(admin, f"/admin/users/{alice}", form, page=f"/admin/users/{alice}")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    assert "Saved alice" in flashed(admin)
    user = users.get_user(db, alice)
    assert (user["username"], user["role"], user["full_name"], user["email"], user["dicom_name_key"]) == (
        "alice", "referring_doctor", "Alice Liddell", "alice@example.org", "LIDDELL ALICE")
    event = auth_events(db, "user_updated")[-1]
    assert (event["username"], event["actor"]) == ("alice", "root")
    assert "role: 'radiologist' -> 'referring_doctor'" in event["detail"]
    assert "DICOM name: '' -> 'Liddell^Alice'" in event["detail"]
    response = post(admin, f"/admin/users/{alice}", form, page=f"/admin/users/{alice}")
    assert response.status_code == 302 and "Nothing changed" in flashed(admin)
    assert len(auth_events(db, "user_updated")) == 1


def test_a_bad_edit_re_renders_the_form_with_the_message(app, db, admin):
    make_user(app, "alice")
    alice = user_id(db, "alice")
    response = post(admin, f"/admin/users/{alice}", {"role": "wizard", "full_name": "A"}, page=f"/admin/users/{alice}")
    assert response.status_code == 400 and "unknown role 'wizard'" in text(response)
    assert users.get_user(db, alice)["role"] == "radiologist"
    assert admin.get("/admin/users/99999").status_code == 404
    assert post(admin, "/admin/users/99999/deactivate").status_code == 404


def test_resetting_a_password_forces_a_change_and_ends_the_users_sessions(app, db, admin):
    alice_browser = logged_in(app, "alice", "radiologist")
    alice = user_id(db, "alice")
    response = post(admin, f"/admin/users/{alice}/password", page=f"/admin/users/{alice}")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="one-time-password">([^<]+)<', response.get_data(as_text=True)).group(1)
    assert alice_browser.get("/auth/check_session").status_code == 401
    assert login(app.test_client(), "alice", PASSWORD).status_code == 401
    fresh = app.test_client()
    assert login(fresh, "alice", password).headers["Location"] == "/account/password"
    event = auth_events(db, "password_reset")[-1]
    assert (event["username"], event["actor"], event["detail"]) == ("alice", "root", "must change at next login")
    assert admin.get("/admin/users").status_code == 200  # the admin's own session goes on


def test_deactivation_ends_sessions_at_once_and_reactivation_lets_the_user_back(app, db, admin):
    alice_browser = logged_in(app, "alice", "radiologist")
    alice = user_id(db, "alice")
    response = post(admin, f"/admin/users/{alice}/deactivate", page=f"/admin/users/{alice}")
    assert response.status_code == 302
    assert "alice is deactivated" in flashed(admin)
    assert alice_browser.get("/auth/check_session").status_code == 401
    assert login(app.test_client(), "alice", PASSWORD).status_code == 401
    assert "Reactivate alice" in admin.get(f"/admin/users/{alice}").get_data(as_text=True)
    response = post(admin, f"/admin/users/{alice}/deactivate", page=f"/admin/users/{alice}")
    assert response.status_code == 400 and "alice is inactive already" in text(response)
    response = post(admin, f"/admin/users/{alice}/reactivate", page=f"/admin/users/{alice}")
    assert response.status_code == 302 and "alice is active again" in flashed(admin)
    assert login(app.test_client(), "alice", PASSWORD).status_code == 302
    events = [(e["event_type"], e["username"], e["actor"]) for e in
              db.query("SELECT * FROM auth_events WHERE event_type LIKE 'user_%activated' ORDER BY id")]
    assert events == [("user_deactivated", "alice", "root"), ("user_reactivated", "alice", "root")]


def test_the_last_active_admin_can_be_neither_deactivated_nor_demoted(app, db, admin):
    root = user_id(db, "root")
    response = post(admin, f"/admin/users/{root}/deactivate", page=f"/admin/users/{root}")
    assert response.status_code == 400
    assert "this is the last active admin; make another user an admin first" in text(response)
    form = {"role": "radiologist", "full_name": "Root Admin"}
    response = post(admin, f"/admin/users/{root}", form, page=f"/admin/users/{root}")
    assert response.status_code == 400 and "the last active admin" in text(response)
    assert users.get_user(db, root)["role"] == "admin" and users.get_user(db, root)["is_active"] == 1
    assert auth_events(db, "user_deactivated") == [] and auth_events(db, "user_updated") == []


def test_admins_may_change_other_admins_but_not_themselves(app, db, admin):
    make_user(app, "ada", role="admin")
    root, ada = user_id(db, "root"), user_id(db, "ada")
    response = post(admin, f"/admin/users/{root}/deactivate", page=f"/admin/users/{root}")
    assert response.status_code == 400 and "you cannot deactivate your own account" in text(response)
    response = post(admin, f"/admin/users/{root}", {"role": "radiologist"}, page=f"/admin/users/{root}")
    assert response.status_code == 400 and "you cannot change your own role" in text(response)
    # With root active, ada is not the last admin: she may be demoted, then made admin again, then deactivated.
    assert post(admin, f"/admin/users/{ada}", {"role": "radiologist"}, page=f"/admin/users/{ada}").status_code == 302
    assert post(admin, f"/admin/users/{ada}", {"role": "admin"}, page=f"/admin/users/{ada}").status_code == 302
    assert post(admin, f"/admin/users/{ada}/deactivate", page=f"/admin/users/{ada}").status_code == 302
    assert users.get_user(db, ada)["is_active"] == 0
    # An inactive admin does not count: root is now the last active one.
    response = post(admin, f"/admin/users/{root}/deactivate", page=f"/admin/users/{root}")
    assert "the last active admin" in text(response)


def test_the_account_rules_keep_the_last_admin_whoever_asks(app, db):
    from pacs_lite import accounts

    make_user(app, "root", role="admin")
    make_user(app, "old", role="admin")
    accounts.set_active(db, users.get_user_by_username(db, "old"), False, utc_now(), actor="cli")
    root = users.get_user_by_username(db, "root")
    with pytest.raises(accounts.AccountError, match="last active admin"):
        accounts.update_account(db, root, "radiologist", "", "", "", utc_now(), actor="cli")
    # Demoting an inactive admin leaves the active ones as they are.
    old = users.get_user_by_username(db, "old")
    assert accounts.update_account(db, old, "radiologist", "", "", "", utc_now(), actor="cli")
    assert users.get_user(db, root["id"])["role"] == "admin"


# --- the audit log ---------------------------------------------------------------------------------------------

NOW = utc_now()
DAY = datetime.timedelta(days=1)
MULLER = {"patient_id": "PL0003", "patient_name": "MÜLLER, JÜRGEN", "study_uid": "2.25.3003"}
OBRIEN = {"patient_id": "PL0007", "patient_name": 'O\'BRIEN, SEAN "JR", III', "study_uid": "2.25.7007"}
BREAK_GLASS_REASON = 'emergency, "on call"\nsecond line'


@pytest.fixture
def audit_rows(app, db, admin):
    """Known audit rows: 120 views by rad, 3 by house (one 8 days old), a break-glass, odd usernames."""
    rad = SimpleNamespace(id=1001, username="rad")
    house = SimpleNamespace(id=1002, username="house")
    with db.transaction():
        for n in range(120):
            # Ten rows share each second: the order must still be total and stable.
            audit.record_study_access(db, rad, MULLER, NOW - DAY - datetime.timedelta(seconds=n // 10), "10.0.0.1")
        audit.record_study_access(db, house, OBRIEN, NOW - 2 * DAY, "10.0.0.2")
        audit.record_study_access(db, house, OBRIEN, NOW - 2 * DAY, "10.0.0.2", action="image")
        audit.record_study_access(db, house, MULLER, NOW - 8 * DAY, "10.0.0.2")
        audit.record_auth_event(db, "break_glass", "house", NOW - 2 * DAY, "10.0.0.2",
                                detail=f"patient PL0003: {BREAK_GLASS_REASON}")
        audit.record_auth_event(db, "login_failed", "=cmd|' /c calc'!a0", NOW - 3 * DAY, "10.6.6.6",
                                detail="bad credentials")
    return SimpleNamespace(rad=rad, house=house)


def audit_page(browser, **args):
    """Get the audit page; return (response, its rows as dicts of the cells' text)."""
    response = browser.get("/admin/audit", query_string=args)
    page = response.get_data(as_text=True)
    rows = []
    for row in re.findall(r'<tr class="[^"]*" data-event="[^"]*">(.*?)</tr>', page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows.append(dict(zip(("at", "event", "user", "by", "patient", "study_uid", "detail", "ip"), cells)))
    return response, rows


def total_of(response):
    """Return the total the audit page states."""
    found = re.search(r'id="audit-total">\s*([\d,]+) rows?', response.get_data(as_text=True))
    return int(found.group(1).replace(",", "")) if found else 0


def all_audit_rows(db):
    """Return how many rows both audit tables hold."""
    return db.query_value("SELECT COUNT(*) FROM study_access_log") + db.query_value("SELECT COUNT(*) FROM auth_events")


def test_the_audit_log_pages_through_every_row_newest_first_with_the_exact_total(db, admin, audit_rows):
    expected_total = all_audit_rows(db)
    response, first = audit_page(admin)
    assert response.status_code == 200
    assert total_of(response) == expected_total
    assert len(first) == 50
    pages = -(-expected_total // 50)
    assert f"Page 1 of {pages}" in response.get_data(as_text=True)
    seen = first
    for page in range(2, pages + 1):
        response, rows = audit_page(admin, page=page)
        assert total_of(response) == expected_total
        seen += rows
    assert len(seen) == expected_total
    times = [row["at"] for row in seen]
    assert times == sorted(times, reverse=True)
    # The page past the end is empty but says so; the total stays.
    response, rows = audit_page(admin, page=pages + 1)
    assert response.status_code == 200 and rows == [] and "past the last page" in response.get_data(as_text=True)


def test_paging_never_repeats_or_skips_a_row_of_the_same_second(db, admin, audit_rows):
    filters = audit_log.AuditFilters(username="rad")
    paged = []
    for page in range(3):
        paged += audit_log.list_events(db, filters, 50, page * 50)
    assert len(paged) == 120 == len({row["id"] for row in paged})
    streamed = list(audit_log.iter_events(db, audit_log.AuditFilters(), batch=7))
    assert [(r["source"], r["id"]) for r in streamed] == [
        (r["source"], r["id"]) for r in audit_log.list_events(db, audit_log.AuditFilters(), 10_000, 0)]


@pytest.mark.parametrize("args, expected", [
    ({"user": "House"}, {("house", "Study opened"), ("house", "Image opened without its study"),
                         ("house", "BREAK-GLASS")}),
    ({"user": "root"}, {("root", "User created"), ("root", "Login")}),
    ({"patient": "PL0003"}, {("rad", "Study opened"), ("house", "Study opened"), ("house", "BREAK-GLASS")}),
    ({"patient": "müller"}, {("rad", "Study opened"), ("house", "Study opened")}),
    ({"patient": "2.25.7007"}, {("house", "Study opened"), ("house", "Image opened without its study")}),
    ({"event": "break_glass"}, {("house", "BREAK-GLASS")}),
    ({"event": "image"}, {("house", "Image opened without its study")}),
    ({"event": "view", "user": "house"}, {("house", "Study opened")}),
    ({"date_from": (NOW - 8 * DAY).date().isoformat(), "date_to": (NOW - 8 * DAY).date().isoformat()},
     {("house", "Study opened")}),
    ({"date_to": (NOW - 3 * DAY).date().isoformat()},
     {("house", "Study opened"), ("=cmd|' /c calc'!a0", "Login failed")}),
])
def test_audit_filters(admin, audit_rows, args, expected):
    response, rows = audit_page(admin, **args)
    assert response.status_code == 200
    total = total_of(response)
    for page in range(2, -(-total // 50) + 1):
        rows += audit_page(admin, page=page, **args)[1]
    assert {(row["user"], row["event"]) for row in rows} == expected
    assert total == len(rows)


def test_the_user_filter_also_finds_what_a_user_did_to_others(app, db, admin):
    make_user(app, "alice")
    alice = user_id(db, "alice")
    post(admin, f"/admin/users/{alice}/deactivate", page=f"/admin/users/{alice}")
    _, rows = audit_page(admin, user="root", event="user_deactivated")
    assert [(row["user"], row["by"]) for row in rows] == [("alice", "root")]


def test_patient_names_are_found_without_case_or_accents_through_the_cache(db, admin, audit_rows):
    with db.transaction():
        cache.save_patients(db, [{
            "orthanc_id": "0" * 8 + "-00000000" * 4, "patient_id": "PL0003", "patient_name": MULLER["patient_name"],
            "name_key": search_key("MÜLLER^JÜRGEN"), "patient_id_key": "PL0003", "birth_date": "", "sex": "",
            "study_count": 1, "last_study_date": "", "modalities": "", "last_arrival_at": None, "updated_at": NOW,
        }])
    response, rows = audit_page(admin, patient="jurgen mul")
    assert total_of(response) == 121 and {row["patient"] for row in rows} == {"MÜLLER, JÜRGEN (PL0003)"}


@pytest.mark.parametrize("args, message", [
    ({"event": "nope"}, "unknown event type 'nope'"),
    ({"date_from": "2024-13-01"}, "is not a date written YYYY-MM-DD"),
    ({"date_to": "20240101"}, "is not a date written YYYY-MM-DD"),
    ({"date_from": "2024-02-01", "date_to": "2024-01-01"}, "the first date is after the last"),
    ({"page": "0"}, "the page must be a whole number"),
    ({"page": "two"}, "the page must be a whole number"),
    ({"patient": "x" * 400}, "too long"),
])
def test_bad_audit_filters_answer_400_with_a_message(admin, args, message):
    response = admin.get("/admin/audit", query_string=args)
    assert response.status_code == 400 and message in text(response)
    assert admin.get("/admin/audit.csv", query_string=args).status_code == (400 if "page" not in args else 200)


def test_break_glass_events_stand_out_with_their_reason(admin, audit_rows):
    response = admin.get("/admin/audit", query_string={"user": "house"})
    page = response.get_data(as_text=True)
    row = re.search(r'<tr class="table-danger break-glass-row" data-event="break_glass">(.*?)</tr>', page, re.S)
    assert row and "BREAK-GLASS" in row.group(1)
    assert "emergency, &#34;on call&#34;" in row.group(1) and "patient PL0003" in row.group(1)
    assert re.search(r'id="break-glass-count">\s*<span class="badge text-bg-danger">1</span>', page)


def test_the_summary_counts_views_per_user_over_the_last_seven_days(admin, audit_rows):
    page = admin.get("/admin/audit", query_string={"event": "login"}).get_data(as_text=True)
    summary = re.search(r'<table [^>]*id="active-users">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(r'data-username="([^"]+)">.*?<td class="text-end views">(\d+)</td>', summary, re.S)
    # house's view of 8 days ago is left out; the filters of the page do not touch the summary.
    assert rows == [("rad", "120"), ("house", "2")]


def read_csv(response):
    """Parse a CSV response; check the BOM; return its rows (header first)."""
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_the_csv_export_has_a_header_and_every_filtered_row(db, admin, audit_rows):
    response = admin.get("/admin/audit.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="pacs_lite-audit-\d{8}-\d{6}\.csv"',
                        response.headers["Content-Disposition"])
    rows = read_csv(response)
    assert rows[0] == ["Time (UTC)", "Event", "User", "By", "Patient ID", "Patient name", "Study UID", "Detail",
                       "IP", "User agent"]
    assert len(rows) - 1 == all_audit_rows(db)
    times = [row[0] for row in rows[1:]]
    assert times == sorted(times, reverse=True)
    break_glass = next(row for row in rows if row[1] == "break_glass")
    assert break_glass[7] == f"patient PL0003: {BREAK_GLASS_REASON}"  # comma, quotes and newline survive
    assert any(row[5] == "MÜLLER, JÜRGEN" for row in rows)
    assert any(row[5] == OBRIEN["patient_name"] for row in rows)
    # A typed username that a spreadsheet would run as a formula is defused.
    assert ["'=cmd|' /c calc'!a0", "bad credentials"] == [
        next(row for row in rows if row[1] == "login_failed")[i] for i in (2, 7)]
    raw = response.get_data().decode("utf-8-sig")
    assert '"patient PL0003: emergency, ""on call""\nsecond line"' in raw
    assert raw.startswith("Time (UTC),Event,") and "\r\n" in raw


def test_the_csv_export_takes_the_page_filters(db, admin, audit_rows):
    args = {"user": "house", "date_from": (NOW - 3 * DAY).date().isoformat()}
    rows = read_csv(admin.get("/admin/audit.csv", query_string=args))
    _, page_rows = audit_page(admin, **args)
    assert len(rows) - 1 == len(page_rows) == 3
    # Of one second: study rows before auth events, each newest (highest id) first.
    assert [row[1] for row in rows[1:]] == ["image", "view", "break_glass"]
    page = admin.get("/admin/audit", query_string=args).get_data(as_text=True)
    link = re.search(r'href="([^"]+)" id="download-csv"', page).group(1).replace("&amp;", "&")
    assert link.startswith("/admin/audit.csv?") and "user=house" in link and "date_from=" in link
    assert read_csv(admin.get(link)) == rows


# --- sync ------------------------------------------------------------------------------------------------------


def test_the_sync_page_shows_orthanc_and_the_cache_and_sync_now_fills_it(app, db, admin, sample_orthanc,
                                                                         sample_plan):
    client = point_at(app, sample_orthanc)
    version = client.system()["Version"]
    client.close()
    page = admin.get("/admin/sync").get_data(as_text=True)
    assert re.search(r'id="orthanc-status"><span class="badge text-bg-success">answers</span>\s*Orthanc '
                     + re.escape(version), page)
    assert 'id="count-studies">0<' in page and "never been filled" in page
    assert re.search(r'id="active-sessions">1<', page)
    response = post(admin, "/admin/sync", page="/admin/sync")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/sync"
    page = admin.get("/admin/sync").get_data(as_text=True)
    assert re.search(rf"Sync finished: full sync \(empty cache\): {len(sample_plan.studies)} studies added", page)
    assert f'id="count-studies">{len(sample_plan.studies)}<' in page
    assert f'id="count-patients">{len(sample_plan.patients)}<' in page
    state = cache.get_sync_state(db)
    assert state["last_seq"] > 0 and f'id="last-seq">{state["last_seq"]}<' in page
    assert f"{len(sample_plan.studies)} studies added" in re.search(r'id="last-pass">(.*?)</dd>', page, re.S).group(1)
    post(admin, "/admin/sync", page="/admin/sync")
    assert "Sync finished: incremental sync: 0 studies added" in flashed(admin, "/admin/sync")


def test_sync_now_says_when_another_sync_is_running(app, db, admin, sample_orthanc):
    point_at(app, sample_orthanc).close()
    with exclusive_lock(app.config["DATABASE_URL"], LOCK_NAME) as got:
        assert got
        assert post(admin, "/admin/sync", page="/admin/sync").status_code == 302
        assert "Another sync is running" in flashed(admin, "/admin/sync")
    assert cache.counts(db)["studies"] == 0


def test_the_sync_page_says_clearly_when_orthanc_is_down(app, db, admin, empty_orthanc):
    point_at(app, empty_orthanc).close()
    empty_orthanc.stop(kill=True)
    started = time.monotonic()
    response = admin.get("/admin/sync")
    assert time.monotonic() - started < 5
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "not reachable" in page
    assert re.search(r'id="orthanc-error">Orthanc at http://127\.0\.0\.1:\d+/ refused the connection', page)
    assert post(admin, "/admin/sync", page="/admin/sync").status_code == 302
    page = admin.get("/admin/sync").get_data(as_text=True)
    assert "The sync failed: Orthanc at http://127.0.0.1:" in page
    assert re.search(r'id="sync-error">\s*The last pass failed at [\d-]+ [\d:]+ UTC: Orthanc at', page)
    assert "Traceback" not in page


def test_the_sync_page_does_not_hang_on_a_stalled_orthanc(app, admin, empty_orthanc):
    point_at(app, empty_orthanc).close()
    empty_orthanc.pause()
    try:
        started = time.monotonic()
        page = admin.get("/admin/sync").get_data(as_text=True)
        assert time.monotonic() - started < 10
    finally:
        empty_orthanc.resume()
    assert "did not answer within 5 s" in page
