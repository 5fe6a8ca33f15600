"""The worklist and the study browser in a real Chromium, against a real `pacs-lite serve` and Orthanc."""

import datetime
import re
import subprocess
import unicodedata

import pytest
import requests

from tests.mariadb_server import free_port
from tests.serve_process import PACS_LITE, orthanc_environment, start_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "browser test password"
PAGE_SIZE = 8  # small, so the 19 sample patients span three pages
REFERRING_DICOM_NAME = "HOUSE^GREGORY"
NOT_FOUND = "This patient does not exist or you may not see it."


def run(env, *args, stdin=""):
    """Run one pacs-lite command to the end; fail the test with its output when it fails."""
    result = subprocess.run([*PACS_LITE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, f"pacs-lite {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def server(tmp_path_factory, sample_orthanc):
    """A `pacs-lite serve` on SQLite whose cache `pacs-lite sync` filled from the sample Orthanc."""
    folder = tmp_path_factory.mktemp("browser")
    env = orthanc_environment(folder, sample_orthanc, PACS_LITE_PAGE_SIZE=str(PAGE_SIZE))
    run(env, "init-db")
    run(env, "create-user", "ada", "--role", "radiologist", "--full-name", "Ada Lovelace", "--password-stdin",
        stdin=PASSWORD + "\n")
    run(env, "create-user", "house", "--role", "referring_doctor", "--full-name", "Gregory House",
        "--dicom-name", REFERRING_DICOM_NAME, "--password-stdin", stdin=PASSWORD + "\n")
    run(env, "sync")
    running = start_server(env, folder / "serve.log")
    running.env = env  # for tests that run more pacs-lite commands on this server's database
    try:
        yield running
    finally:
        running.stop()
    assert "Traceback" not in running.log()


@pytest.fixture(scope="module")
def browser():
    """One headless Debian Chromium for the module."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser tab (own cookies and storage); fails the test on any dialog, script error or CSP report."""
    context = browser.new_context(base_url=server.url, locale="en-GB")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    problems = watch(tab)
    yield tab
    context.close()
    assert not problems, problems


def watch(tab):
    """Collect script errors, dialogs and CSP reports of a tab; return the list they go to."""
    problems = []

    def on_dialog(dialog):
        problems.append(f"a {dialog.type} dialog opened: {dialog.message!r}")
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on("console", lambda message: problems.append(f"console: {message.text}")
           if message.type == "error" and "Content Security Policy" in message.text else None)
    return problems


def log_in(page, username):
    """Log in through the form and land on the worklist."""
    page.goto("/patients")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/patients$"))


def rows(page):
    """Return the locator of the worklist rows."""
    return page.locator("#patient-rows tr")


def shown_patient_ids(page):
    """Return the patient IDs on the worklist page, top to bottom."""
    return page.locator("#patient-rows td.patient-id").all_inner_texts()


def fold(text):
    """Fold a DICOM person name the way the referring-physician rule does."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text or "") if not unicodedata.combining(c))
    return " ".join(text.replace("^", " ").upper().split())


def iso(dicom_date):
    """Return a DICOM date YYYYMMDD as YYYY-MM-DD."""
    return f"{dicom_date[:4]}-{dicom_date[4:6]}-{dicom_date[6:]}"


def patient(plan, patient_id):
    """Return the planned patient with this PatientID."""
    return next(p for p in plan.patients if p.patient_id == patient_id)


def orthanc_patient_id(orthanc, patient_id):
    """Return Orthanc's id of the patient with this PatientID."""
    answer = requests.post(orthanc.url + "tools/lookup", data=patient_id, auth=(orthanc.username, orthanc.password),
                           timeout=10)
    answer.raise_for_status()
    return next(item["ID"] for item in answer.json() if item["Type"] == "Patient")


def test_a_radiologist_finds_a_patient_by_search_and_opens_a_study(page, sample_plan):
    log_in(page, "ada")
    expect(page.locator("#current-user")).to_contain_text("Ada Lovelace")
    expect(page.locator("#current-user")).to_contain_text("radiologist")
    expect(page.locator("#worklist-summary")).to_have_text(f"1–{PAGE_SIZE} of {len(sample_plan.patients)} patients")
    expect(page.locator("#cache-age")).to_contain_text("Updated")
    expect(page.locator("#cache-warning")).to_be_hidden()

    page.get_by_label("Search", exact=True).press_sequentially("muller", delay=30)
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("MÜLLER")
    expect(rows(page).first).to_contain_text("PL0003")
    expect(page).to_have_url(re.compile(r"/patients\?search=muller$"))
    expect(page.locator("#worklist-summary")).to_have_text("1–1 of 1 patient")

    page.get_by_role("link", name=re.compile("MÜLLER")).click()
    expect(page).to_have_url(re.compile(r"/studies\?patientId=[0-9a-f-]+$"))
    muller = patient(sample_plan, "PL0003")
    expect(page.locator("#patient-name")).to_contain_text("MÜLLER")
    expect(page.locator("#patient-id")).to_have_text("PL0003")
    expect(page.locator("#patient-birth-date")).to_have_text(iso(muller.birth_date))
    expect(page.locator("#patient-study-count")).to_have_text(f"{len(muller.studies)} studies")
    newest_first = sorted(muller.studies, key=lambda s: s.study_date, reverse=True)
    expect(page.locator("#study-rows td.study-date")).to_have_text([iso(s.study_date) for s in newest_first])
    expect(page.locator("#study-rows td.study-time").first).to_have_text(
        f"{newest_first[0].study_time[:2]}:{newest_first[0].study_time[2:4]}")
    expect(page.locator("#back-to-worklist")).to_have_attribute("href", "/patients?search=muller")

    page.get_by_role("link", name="Open", exact=True).first.click()
    expect(page).to_have_url(re.compile(r"/viewer\?studyUID=" + re.escape(newest_first[0].study_uid) + "$"))


def test_an_html_patient_name_and_description_render_as_text(page):
    log_in(page, "ada")
    page.get_by_label("Search", exact=True).fill("PL0017")
    expect(rows(page)).to_have_count(1)
    name_link = rows(page).first.locator("td.patient-name a")
    expect(name_link).to_have_text("<script>alert(1)</script>")
    expect(page.locator("#patient-rows script")).to_have_count(0)

    name_link.click()
    expect(page.locator("#patient-name")).to_have_text("<script>alert(1)</script>")
    expect(page.locator("#study-rows td.study-description").filter(has_text="<b>bold</b>")).to_contain_text(
        '<b>bold</b> & "quoted"')
    expect(page.locator("#study-rows b")).to_have_count(0)


def test_the_keyboard_searches_moves_and_opens(page, sample_plan):
    log_in(page, "ada")
    expect(rows(page)).to_have_count(PAGE_SIZE)
    page.locator("h1").click()
    page.keyboard.press("/")
    expect(page.get_by_label("Search", exact=True)).to_be_focused()
    page.keyboard.type("lopez")
    # Newest study first: LOPEZ%^MARIA (2024) above LOPEZ^MARIO (2021).
    expect(page.locator("#patient-rows td.patient-id")).to_have_text(["PL0013", "PL0014"])

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(rows(page).nth(1)).to_have_class(re.compile(r"\brow-highlight\b"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/studies\?patientId="))
    expect(page.locator("#patient-id")).to_have_text("PL0014")

    page.go_back()
    expect(page.get_by_label("Search", exact=True)).to_have_value("lopez")
    expect(page.locator("#patient-rows td.patient-id")).to_have_text(["PL0013", "PL0014"])
    page.locator("h1").click()
    for key in ("j", "j", "k"):
        page.keyboard.press(key)
    expect(rows(page).nth(0)).to_have_class(re.compile(r"\brow-highlight\b"))
    page.keyboard.press("Enter")
    expect(page.locator("#patient-id")).to_have_text("PL0013")


def test_sorting_and_paging(page, sample_plan):
    log_in(page, "ada")
    all_ids = sorted(p.patient_id for p in sample_plan.patients)
    expect(page.locator("th[data-sort=last_study_date]")).to_have_attribute("aria-sort", "descending")

    page.get_by_role("button", name="Patient ID").click()
    expect(page.locator("th[data-sort=patient_id]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("th[data-sort=last_study_date]")).not_to_have_attribute("aria-sort", re.compile(".*"))
    expect(page.locator("#patient-rows td.patient-id")).to_have_text(all_ids[:PAGE_SIZE])
    expect(page.locator("#page-of")).to_have_text("Page 1 of 3")
    expect(page.get_by_role("button", name="‹ Previous")).to_be_disabled()

    with page.expect_request(re.compile(r"/api/patient_list_api\?.*page=2")) as next_page:
        page.get_by_role("button", name="Next ›").click()
    assert "cursor=" in next_page.value.url  # Next reads on from where page 1 ended, not by offset
    expect(page.locator("#page-of")).to_have_text("Page 2 of 3")
    expect(page.locator("#worklist-summary")).to_have_text(f"9–16 of {len(all_ids)} patients")
    expect(page.locator("#patient-rows td.patient-id")).to_have_text(all_ids[PAGE_SIZE:2 * PAGE_SIZE])
    expect(page).to_have_url(re.compile(r"sort=patient_id&order=asc&page=2$"))

    page.get_by_role("button", name="Patient ID").click()
    expect(page.locator("th[data-sort=patient_id]")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#page-of")).to_have_text("Page 1 of 3")
    expect(page.locator("#patient-rows td.patient-id")).to_have_text(all_ids[::-1][:PAGE_SIZE])

    page.reload()
    expect(page.locator("th[data-sort=patient_id]")).to_have_attribute("aria-sort", "descending")
    expect(page.locator("#patient-rows td.patient-id").first).to_have_text(all_ids[-1])


def test_date_presets_and_filters_narrow_the_list(page, sample_plan):
    log_in(page, "ada")
    expect(rows(page)).to_have_count(PAGE_SIZE)

    # Every sample study is older than 30 days.
    page.get_by_role("button", name="Last 30 days").click()
    today = datetime.date.today()
    expect(page.get_by_label("Studies from")).to_have_value((today - datetime.timedelta(days=29)).isoformat())
    expect(page.get_by_label("to", exact=True)).to_have_value(today.isoformat())
    expect(page.locator("#worklist-empty")).to_have_text("No patients match.")
    expect(rows(page)).to_have_count(0)
    expect(page.get_by_role("button", name="Last 30 days")).to_have_attribute("aria-pressed", "true")

    page.get_by_role("button", name="Any date").click()
    expect(rows(page)).to_have_count(PAGE_SIZE)
    page.get_by_label("Studies from").fill("2024-01-01")
    since_2024 = sorted(p.patient_id for p in sample_plan.patients
                        if any(s.study_date >= "20240101" for s in p.studies))
    expect(page.locator("#worklist-summary")).to_have_text(f"1–{len(since_2024)} of {len(since_2024)} patients")
    assert sorted(shown_patient_ids(page)) == since_2024

    page.get_by_label("Modality").select_option("MR")
    mr_since_2024 = sorted(p.patient_id for p in sample_plan.patients
                           if any(s.study_date >= "20240101" and "MR" in s.modalities for s in p.studies))
    expect(page.locator("#patient-rows td.patient-id")).to_have_text(mr_since_2024)

    page.reload()  # the state lives in the URL
    expect(page.get_by_label("Modality")).to_have_value("MR")
    expect(page.get_by_label("Studies from")).to_have_value("2024-01-01")
    expect(page.locator("#patient-rows td.patient-id")).to_have_text(mr_since_2024)

    # A range the API refuses shows its message instead of a stale list.
    page.get_by_label("to", exact=True).fill("2020-01-01")
    expect(page.locator("#worklist-error")).to_be_visible()
    expect(page.locator("#worklist-error")).not_to_be_empty()
    expect(rows(page)).to_have_count(0)
    expect(page.locator("#worklist-empty")).to_be_hidden()


def test_a_referring_doctor_sees_only_their_patients_and_can_break_glass(page, sample_plan, sample_orthanc):
    log_in(page, "house")
    expect(page.locator("#current-user")).to_contain_text("referring doctor")
    theirs = {p.patient_id for p in sample_plan.patients
              if any(fold(s.referring_physician) == fold(REFERRING_DICOM_NAME) for s in p.studies)}
    assert 0 < len(theirs) < len(sample_plan.patients)
    expect(page.locator("#worklist-summary")).to_contain_text(f"of {len(theirs)} patients")
    seen = set(shown_patient_ids(page))
    shown_from = 1
    while page.get_by_role("button", name="Next ›").is_enabled():
        page.get_by_role("button", name="Next ›").click()
        shown_from += PAGE_SIZE
        # Wait for the next page itself (its summary is written with its rows), not just for a change.
        expect(page.locator("#worklist-summary")).to_contain_text(f"{shown_from}–")
        seen |= set(shown_patient_ids(page))
    assert seen == theirs

    other = next(p.patient_id for p in sample_plan.patients if p.patient_id not in theirs and p.patient_name)
    other_orthanc_id = orthanc_patient_id(sample_orthanc, other)
    page.goto(f"/studies?patientId={other_orthanc_id}")
    expect(page.locator("#studies-error")).to_have_text(NOT_FOUND)
    expect(page.locator("#patient-header")).to_be_hidden()

    page.goto("/patients")
    page.get_by_text("Break-glass access").click()
    page.get_by_label("Patient ID").fill(other)
    page.get_by_label("Reason").fill("too short")
    page.get_by_role("button", name="Open patient").click()
    expect(page.locator("#break-glass-error")).to_contain_text("at least 10 characters")
    page.get_by_label("Reason").fill("Seen in the emergency room, on call tonight")
    page.get_by_role("button", name="Open patient").click()
    expect(page).to_have_url(re.compile(r"/studies\?patientId=" + re.escape(other_orthanc_id) + "$"))
    expect(page.locator("#patient-id")).to_have_text(other)


def test_an_ended_session_sends_the_browser_to_the_login_form(page):
    log_in(page, "ada")
    expect(rows(page)).to_have_count(PAGE_SIZE)
    page.context.clear_cookies()
    page.get_by_label("Search", exact=True).fill("doe")
    expect(page).to_have_url(re.compile(r"/auth/login\?next=%2Fpatients%3Fsearch%3Ddoe$"))


def test_a_failed_sync_shows_a_warning_over_the_cached_list(page, server, sample_plan):
    unreachable = dict(server.env, PACS_LITE_ORTHANC_URL=f"http://127.0.0.1:{free_port()}/")
    failed = subprocess.run([*PACS_LITE, "sync"], capture_output=True, text=True, env=unreachable, timeout=120)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    try:
        log_in(page, "ada")
        warning = page.locator("#cache-warning")
        expect(warning).to_be_visible()
        expect(warning).to_contain_text("The PACS is not reachable; the list may be out of date: ")
        expect(page.locator("#worklist-summary")).to_have_text(f"1–{PAGE_SIZE} of {len(sample_plan.patients)} patients")
    finally:
        run(server.env, "sync")
    page.reload()
    expect(rows(page)).to_have_count(PAGE_SIZE)
    expect(page.locator("#cache-warning")).to_be_hidden()


def test_text_typed_before_the_page_script_runs_still_searches(page):
    log_in(page, "ada")
    # Hold the worklist's script back, type while the page is still loading, then let it run.
    release = []
    page.route(re.compile(r"/static/js/worklist\.js"), lambda route: release.append(route))
    page.goto("/patients", wait_until="commit")  # "load" would wait for the held script
    page.get_by_label("Search", exact=True).fill("PL0017")
    page.wait_for_timeout(300)
    assert release, "the page did not ask for its script"
    for route in release:
        route.continue_()
    expect(rows(page)).to_have_count(1)
    expect(rows(page).first).to_contain_text("PL0017")
