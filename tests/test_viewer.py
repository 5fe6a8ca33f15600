"""The viewer in a real Chromium, against a real `pacs-lite serve` and a real Orthanc of this module's own.

The Orthanc holds three sample patients (one with priors, one MONOCHROME1
chest film), one study with each compressed transfer syntax that pydicom ships
a test file for, a multi-frame instance, an image that cannot be decoded, and
a study that a test deletes behind the cache's back. Images are proven drawn
by reading the canvas' pixels.
"""

import io
import re
import time

import numpy as np
import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
)

from pacs_lite.orthanc import OrthancClient
from pacs_lite.orthanc_server import OrthancServer
from pacs_lite.sample_data import SamplePlan, iter_sample_files, upload_files
from tests.serve_process import orthanc_environment, start_server

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

from tests.test_browser import browser, iso, run, watch  # noqa: E402,F401  (after the Playwright skip; browser is a fixture)

PASSWORD = "viewer test password"
# Three sample patients: MÜLLER has a CT head with a CT prior, Gómez a MONOCHROME1 chest film.
SAMPLE_PATIENTS = ("PL0003", "PL0004", "PL0017")
DELETED_PATIENT = "PL0017"  # its first study is deleted from Orthanc after the sync

# pydicom's compressed test files: name -> (what it exercises, drawn in colour).
SYNTAX_FILES = {
    "JPEG2000.dcm": ("JPEG 2000, 16-bit", False),
    "MR_small_jpeg_ls_lossless.dcm": ("JPEG-LS lossless", False),
    "MR_small_RLE.dcm": ("RLE lossless", False),
    "SC_rgb_jpeg_gdcm.dcm": ("JPEG lossless RGB", True),
    "JPEG-lossy.dcm": ("JPEG extended 12-bit", False),
    "SC_rgb_dcmtk_+eb+cy+n1.dcm": ("JPEG baseline YBR", True),
}
UID_ROOT = "2.25.4242424242"
SYNTAX_STUDY_UID = f"{UID_ROOT}.1"
MULTIFRAME_STUDY_UID = f"{UID_ROOT}.2"
BROKEN_STUDY_UID = f"{UID_ROOT}.3"
FRAMES = 4
PACS_DOWN = "The PACS (Orthanc) is not reachable"
NOT_FOUND = "This study was not found: it may have been deleted from the PACS, or you may not see it."


# ------------------------------------------------------------------ test data


def part10(ds):
    """Return a dataset as DICOM Part-10 bytes."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def rehome(ds, study_uid, series_number, description):
    """Move a dataset into our test patient and a study/series of ours; pixels and transfer syntax stay."""
    ds.PatientName = "VIEWER^TEST"
    ds.PatientID = "PLVIEWER"
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = "20240301"
    ds.StudyTime = "120000"
    ds.SeriesInstanceUID = f"{study_uid}.{series_number}"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = description
    ds.InstanceNumber = 1
    ds.SOPInstanceUID = f"{study_uid}.{series_number}.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def syntax_files():
    """Yield (name, bytes) of pydicom's compressed test files, one series each of one study."""
    for number, (name, (description, _)) in enumerate(SYNTAX_FILES.items(), start=1):
        ds = pydicom.dcmread(get_testdata_file(name))
        syntax = ds.file_meta.TransferSyntaxUID
        ds = rehome(ds, SYNTAX_STUDY_UID, number, description)
        ds.StudyDescription = "COMPRESSED TRANSFER SYNTAXES"
        assert ds.file_meta.TransferSyntaxUID == syntax
        yield name, part10(ds)


def base_dataset(sop_class, study_uid, description):
    """Return a minimal secondary-capture dataset of our test patient, file meta included."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = "OT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    rehome(ds, study_uid, 1, description)
    ds.StudyDescription = description
    return ds


def multiframe_file():
    """Return a 4-frame greyscale instance whose frame k is a ramp plus k × 1000."""
    ds = base_dataset(MultiFrameGrayscaleWordSecondaryCaptureImageStorage, MULTIFRAME_STUDY_UID, "MULTI-FRAME")
    ds.NumberOfFrames = FRAMES
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 4096
    ramp = np.tile(np.arange(64, dtype=np.uint16) * 8, (64, 1))
    ds.PixelData = np.stack([ramp + k * 1000 for k in range(FRAMES)]).astype("<u2").tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return part10(ds)


def small_image(series_number, instance_number, pixels, syntax=ExplicitVRLittleEndian):
    """Return a 32 × 32 8-bit greyscale instance of the broken-images study."""
    ds = base_dataset(SecondaryCaptureImageStorage, BROKEN_STUDY_UID, "BROKEN IMAGES")
    ds.SeriesInstanceUID = f"{BROKEN_STUDY_UID}.{series_number}"
    ds.SeriesNumber = series_number
    ds.SeriesDescription = "UNDECODABLE" if series_number == 1 else "SECOND IMAGE UNDECODABLE"
    ds.InstanceNumber = instance_number
    ds.SOPInstanceUID = f"{BROKEN_STUDY_UID}.{series_number}.{instance_number}"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 32
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels
    if syntax != ExplicitVRLittleEndian:
        ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = syntax
    return part10(ds)


def broken_files():
    """Yield (name, bytes) of a study with images that say JPEG baseline but hold no JPEG stream.

    Series 1 is one such image; series 2 a good image followed by one.
    """
    not_jpeg = encapsulate([b"\xff\xd8\xff\xe0 this is not a JPEG stream at all " * 4 + b"\xff\xd9"])
    ramp = np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1)).tobytes()
    yield "broken-1-1.dcm", small_image(1, 1, not_jpeg, JPEGBaseline8Bit)
    yield "broken-2-1.dcm", small_image(2, 1, ramp)
    yield "broken-2-2.dcm", small_image(2, 2, not_jpeg, JPEGBaseline8Bit)


def viewer_files(plan):
    """Yield every (path, bytes) the module's Orthanc holds."""
    patients = tuple(p for p in plan.patients if p.patient_id in SAMPLE_PATIENTS)
    yield from iter_sample_files(plan=SamplePlan(seed=plan.seed, patients=patients))
    yield from syntax_files()
    yield "multiframe.dcm", multiframe_file()
    yield from broken_files()


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def viewer_orthanc(tmp_path_factory, sample_plan):
    """A real Orthanc of this module's own with the viewer's test studies; tests may stop it or delete from it."""
    with OrthancServer(tmp_path_factory.mktemp("viewer-orthanc")) as orthanc:
        with OrthancClient(orthanc.url, orthanc.username, orthanc.password) as client:
            upload_files(viewer_files(sample_plan), client)
            deadline = time.monotonic() + 60
            while not all(study["IsStable"] for study in client.studies_page(0, 1000)):
                assert time.monotonic() < deadline, "the viewer's studies never became stable"
                time.sleep(0.2)
        yield orthanc
        orthanc.stop(kill=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory, viewer_orthanc):
    """A `pacs-lite serve` on SQLite whose cache `pacs-lite sync` filled from the module's Orthanc."""
    folder = tmp_path_factory.mktemp("viewer")
    env = orthanc_environment(folder, viewer_orthanc)
    run(env, "init-db")
    run(env, "create-user", "ada", "--role", "radiologist", "--full-name", "Ada Lovelace", "--password-stdin",
        stdin=PASSWORD + "\n")
    run(env, "sync")
    running = start_server(env, folder / "serve.log")
    try:
        yield running
    finally:
        running.stop()
    assert "Traceback" not in running.log()


def new_context(browser, server):
    """Return a fresh browser context (own cookies and cache) on the server."""
    context = browser.new_context(base_url=server.url, locale="en-GB", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    return context


def log_in(page):
    """Log in through the form and land on the worklist."""
    page.goto("/patients")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/patients$"))


@pytest.fixture(scope="module")
def context(browser, server):
    """One logged-in context for the module, so the bundle is fetched once (tests open their own tabs)."""
    context = new_context(browser, server)
    tab = context.new_page()
    log_in(tab)
    tab.close()
    yield context
    context.close()


@pytest.fixture
def page(context):
    """A new tab of the logged-in context; fails the test on any dialog, script error or CSP report."""
    tab = context.new_page()
    problems = watch(tab)
    yield tab
    tab.close()
    assert not problems, problems


# ------------------------------------------------------------------ helpers


def study_of(plan, patient_id, number=1):
    """Return a planned study of a sample patient (number: 1-based, in date order)."""
    patient = next(p for p in plan.patients if p.patient_id == patient_id)
    return patient, patient.studies[number - 1]


def open_viewer(page, study_uid):
    """Open the viewer on a study and wait for its first image on screen, then for the mouse tools."""
    page.goto(f"/viewer?studyUID={study_uid}")
    wait_for_image(page)
    # The tools are imported once the first image is drawn; the mouse does nothing on the image before.
    expect(page.locator("#viewer")).to_have_attribute("data-tools", "ready")


def wait_for_image(page, pane=0):
    """Wait until a viewport drew the first image of its series."""
    expect(page.locator(f"#pane-{pane}")).to_have_attribute("data-first-image-ms", re.compile(r"^\d+$"),
                                                            timeout=15_000)


CANVAS_STATS = """([pane, points]) => {
  const canvas = document.querySelector(`#pane-${pane} .pane-viewport canvas`);
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  const luma = (i) => 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
  let min = 255, max = 0, sum = 0, colourful = 0, sumX = 0, sumY = 0;
  const levels = new Set();
  for (let i = 0; i < data.length; i += 4) {
    const y = luma(i);
    min = Math.min(min, y); max = Math.max(max, y); sum += y; levels.add(Math.round(y));
    sumX += y * ((i / 4) % canvas.width); sumY += y * Math.floor(i / 4 / canvas.width);
    const spread = Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]);
    if (spread > 60) colourful += 1;
  }
  const at = points.map(([x, y]) => luma((Math.round(y) * canvas.width + Math.round(x)) * 4));
  return { width: canvas.width, height: canvas.height, min, max, mean: sum / (data.length / 4),
           levels: levels.size, colourful: colourful / (data.length / 4), at,
           centroid: [sumX / sum, sumY / sum] };
}"""


def canvas_stats(page, pane=0, points=()):
    """Return what the viewport's canvas shows: luminance min/max/mean, levels, colour share, values at points."""
    return page.evaluate(CANVAS_STATS, [pane, [list(p) for p in points]])


def eventually(probe, check, timeout=5.0):
    """Call probe() until check(result) holds (the canvas is drawn a frame after a change); return the result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if check(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.05)


def assert_drawn(stats):
    """Fail unless the canvas shows a picture rather than a uniform area."""
    assert stats["max"] - stats["min"] > 50 and stats["levels"] > 20, stats


def overlay(page, corner, pane=0):
    """Return a locator of one corner overlay."""
    return page.locator(f"#pane-{pane} .overlay-{corner}")


def zoom(page, pane=0):
    """Return the magnification the overlay shows (screen pixels per image pixel)."""
    text = overlay(page, "br", pane).inner_text()
    return float(re.search(r"Zoom ([\d.]+)×", text).group(1))


def viewport_box(page, pane=0):
    """Return the viewport element's box on the page."""
    return page.locator(f"#pane-{pane} .pane-viewport").bounding_box()


def drag(page, start, end, steps=12):
    """Drag with the left mouse button from start to end (page coordinates)."""
    page.mouse.move(*start)
    page.mouse.down()
    # Cornerstone holds a press for up to 400 ms to tell a double click; past that it starts the drag here.
    page.wait_for_timeout(450)
    page.mouse.move(*end, steps=steps)
    page.wait_for_timeout(50)  # and applies drags once per animation frame
    page.mouse.up()


def measurement_texts(page, pane=0):
    """Return the texts the measurement tools drew on a viewport."""
    return page.locator(f"#pane-{pane} svg text").all_text_contents()


def series_button(page, description):
    """Return the series panel's button of a series."""
    return page.locator("#series-lists button.series-item").filter(has_text=description)


# ------------------------------------------------------------------ tests


def test_a_study_opens_from_the_study_browser_first_image_then_the_rest(page, sample_plan):
    patient, study = study_of(sample_plan, "PL0003", 1)  # MÜLLER's CT head, "Schädel nativ"
    series = study.series[0]
    page.goto("/patients")
    page.get_by_label("Search", exact=True).fill("muller")
    page.get_by_role("link", name=re.compile("MÜLLER")).click()
    page.locator("#study-rows tr", has_text="Schädel nativ").get_by_role("link", name="Open").click()
    expect(page).to_have_url(re.compile(r"/viewer\?studyUID=" + re.escape(study.study_uid) + "$"))
    wait_for_image(page)

    expect(page.locator("#patient-name")).to_have_text("MÜLLER, JÜRGEN")
    expect(page.locator("#patient-id")).to_have_text("PL0003")
    expect(page.locator("#patient-birth-date")).to_have_text(iso(patient.birth_date))
    expect(page.locator("#patient-sex")).to_have_text("M")
    expect(page.locator("#study-date")).to_contain_text(iso(study.study_date))
    expect(page.locator("#study-description")).to_have_text("Schädel nativ")
    expect(page).to_have_title(re.compile("MÜLLER, JÜRGEN"))

    assert_drawn(canvas_stats(page))
    count = series.instance_count
    expect(overlay(page, "tr")).to_contain_text(f"Im 1/{count}")
    expect(overlay(page, "tr")).to_contain_text(series.description)
    expect(overlay(page, "tl")).to_contain_text(iso(study.study_date))
    expect(overlay(page, "br")).to_contain_text("W 80 L 40")  # the file's window, BRAIN
    expect(overlay(page, "bl")).to_contain_text(f"Thick {series.slice_spacing:g} mm")
    # Then the rest of the series loads behind the first image, with a visible count.
    expect(page.locator("#pane-0")).to_have_attribute("data-complete", "true")
    expect(page.locator("#pane-0")).to_have_attribute("data-loaded", str(count))
    expect(page.locator("#pane-0 .pane-progress-text")).to_have_text(f"{count} / {count}")
    buttons = page.locator("#series-lists button.series-item")
    expect(buttons).to_have_count(len(study.series))
    expect(buttons.first).to_contain_text(f"{count} images")
    expect(buttons.first).to_have_attribute("aria-current", "true")


# The scripts a page loaded (its modules, their imports, the decode worker): [path?query, bytes transferred].
SCRIPT_LOADS = """() => performance.getEntriesByType("resource")
  .map((entry) => [new URL(entry.name), entry.transferSize])
  .filter(([url]) => url.pathname.endsWith(".js"))
  .map(([url, size]) => [url.pathname + url.search, size])"""


def test_a_second_viewer_load_takes_its_code_from_the_cache_without_asking(page, sample_plan):
    _, first = study_of(sample_plan, "PL0003", 1)
    _, second = study_of(sample_plan, "PL0003", 2)  # another URL: going to the same one is a reload
    open_viewer(page, first.study_uid)
    open_viewer(page, second.study_uid)
    loads = page.evaluate(SCRIPT_LOADS)
    paths = [path for path, _ in loads]
    # The page's own modules come as one bundle, Cornerstone in two parts (drawing, then the tools).
    assert any(re.search(r"/static/vendor/viewer/viewer\.js\?v=", path) for path in paths), paths
    assert not any(path.startswith("/static/js/") for path in paths), paths
    for bundle in ("/cornerstone.js?v=", "/cornerstone-tools.js?v="):
        assert any(bundle in path for path in paths), (bundle, paths)
    # Every script is versioned or named by its content, so none is even revalidated (transferSize 0).
    assert all(size == 0 for _, size in loads), loads


def test_scrolling_presets_length_and_roi(page, sample_plan):
    _, study = study_of(sample_plan, "PL0003", 1)
    series = study.series[0]
    open_viewer(page, study.study_uid)
    location = overlay(page, "bl").inner_text()

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(overlay(page, "tr")).to_contain_text(f"Im 3/{series.instance_count}")
    expect(overlay(page, "bl")).not_to_have_text(location)
    expect(page.locator("#pane-0 .pane-slider")).to_have_value("3")
    box = viewport_box(page)
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.wheel(0, 100)
    expect(overlay(page, "tr")).to_contain_text(f"Im 4/{series.instance_count}")
    page.mouse.wheel(0, -100)
    expect(overlay(page, "tr")).to_contain_text(f"Im 3/{series.instance_count}")
    fit = zoom(page)
    page.keyboard.down("Control")
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    expect(overlay(page, "br")).not_to_contain_text(f"Zoom {fit:.2f}×")
    expect(overlay(page, "tr")).to_contain_text(f"Im 3/{series.instance_count}")  # Ctrl + wheel zooms, not scrolls
    page.keyboard.press("0")
    expect(overlay(page, "br")).to_contain_text(f"Zoom {fit:.2f}×")

    before = canvas_stats(page)
    page.get_by_label("W/L preset").select_option("lung")
    expect(overlay(page, "br")).to_contain_text("W 1500 L -600")
    after = eventually(lambda: canvas_stats(page), lambda stats: abs(stats["mean"] - before["mean"]) > 5)
    assert abs(after["mean"] - before["mean"]) > 5, (before, after)  # the pixels follow the window
    page.keyboard.press("1")
    expect(overlay(page, "br")).to_contain_text("W 80 L 40")
    expect(page.get_by_label("W/L preset")).to_have_value("default")

    # A 300-pixel line across the image: its length in mm follows from the zoom and PixelSpacing.
    page.keyboard.press("l")
    expect(page.get_by_role("button", name="Length")).to_have_attribute("aria-pressed", "true")
    drag(page, (centre[0] - 150, centre[1] + 20), (centre[0] + 150, centre[1] + 20))
    expected = 300 / zoom(page) * series.pixel_spacing

    def lengths():
        return [float(m.group(1)) for t in measurement_texts(page) if (m := re.fullmatch(r"([\d.]+) mm", t.strip()))]

    # The label is drawn in the frame after the last move: on a busy machine the first read may show a shorter line.
    found = eventually(lengths, lambda values: bool(values) and abs(values[0] - expected) < 0.01 * expected)
    assert found and abs(found[0] - expected) < 0.01 * expected, (measurement_texts(page), expected)

    # A rectangle in the brain of the middle slice: its mean is in HU (rescale applied), brain ≈ 35 HU.
    page.keyboard.press("Home")
    for _ in range((series.instance_count - 1) // 2):
        page.keyboard.press("ArrowDown")
    expect(overlay(page, "tr")).to_contain_text(f"Im {(series.instance_count - 1) // 2 + 1}/")
    scale = zoom(page)
    brain = (centre[0] + 0.35 * 64 * scale, centre[1] + 0.35 * 64 * scale)  # (0.35, 0.35) of the half-width
    page.keyboard.press("r")
    drag(page, (brain[0] - 4 * scale, brain[1] - 4 * scale), (brain[0] + 4 * scale, brain[1] + 4 * scale))
    roi = " ".join(measurement_texts(page))
    mean = float(re.search(r"Mean: (-?[\d.]+) HU", roi).group(1))
    assert 20 < mean < 50, roi
    page.keyboard.press("c")  # delete the viewport's measurements
    expect(page.locator("#pane-0 svg text")).to_have_count(0)

    page.keyboard.press("?")
    expect(page.locator("#help-dialog")).to_be_visible()
    expect(page.locator("#help-keys")).to_contain_text("Length")
    page.keyboard.press("Escape")
    expect(page.locator("#help-dialog")).to_be_hidden()


def lung_and_spine(page, study_plan):
    """Return the canvas luminance in the left lung and on the spine of a sample chest film."""
    series = study_plan.series[0]
    box = viewport_box(page)
    scale = zoom(page)
    # The chest_pa phantom: lung centre at x = -0.43, spine at x = 0, both on row y = -0.10 (column-scaled).
    row = (-0.10 + series.rows / series.columns) * series.columns / 2
    dy = (row - series.rows / 2) * scale
    dx = -0.43 * series.columns / 2 * scale
    cx, cy = box["width"] / 2, box["height"] / 2
    return canvas_stats(page, points=[(cx + dx, cy + dy), (cx, cy + dy)])["at"]


def test_monochrome1_shows_dark_lungs_like_monochrome2(page, sample_plan):
    _, monochrome1 = study_of(sample_plan, "PL0004", 1)  # Gómez: the MONOCHROME1 chest film
    assert monochrome1.series[0].photometric == "MONOCHROME1"
    open_viewer(page, monochrome1.study_uid)
    lung, spine = lung_and_spine(page, monochrome1)
    assert spine - lung > 60, (lung, spine)
    expect(overlay(page, "br")).not_to_contain_text("Inverted")
    page.keyboard.press("i")
    expect(overlay(page, "br")).to_contain_text("Inverted")
    expect(page.get_by_role("button", name="Invert")).to_have_attribute("aria-pressed", "true")
    lung, spine = eventually(lambda: lung_and_spine(page, monochrome1), lambda values: values[0] > values[1])
    assert lung - spine > 60, (lung, spine)
    page.keyboard.press("0")  # reset: back to MONOCHROME1's own (inverted) display
    expect(overlay(page, "br")).not_to_contain_text("Inverted")
    lung, spine = eventually(lambda: lung_and_spine(page, monochrome1), lambda values: values[1] > values[0])
    assert spine - lung > 60, (lung, spine)

    # Flips and rotation move the picture: the brightness centroid mirrors (the heart is off centre).
    before = canvas_stats(page)
    (x, y), width = before["centroid"], before["width"]
    assert abs(x - width / 2) > 3, before["centroid"]
    page.keyboard.press("h")
    expect(overlay(page, "br")).to_contain_text("Flip H")
    flipped = eventually(lambda: canvas_stats(page), lambda stats: abs(stats["centroid"][0] - x) > 3)
    assert abs(flipped["centroid"][0] - (width - 1 - x)) < 2 and abs(flipped["centroid"][1] - y) < 2, (before, flipped)
    page.keyboard.press("]")
    expect(overlay(page, "br")).to_contain_text("Rot 90° · Flip H")
    page.keyboard.press("0")
    expect(overlay(page, "br")).not_to_contain_text("Flip H")
    back = eventually(lambda: canvas_stats(page), lambda stats: abs(stats["centroid"][0] - x) < 1)
    assert abs(back["centroid"][0] - x) < 1 and abs(back["centroid"][1] - y) < 1, (before, back)


def test_a_prior_opens_side_by_side_and_scrolls_along(page, sample_plan):
    _, trauma = study_of(sample_plan, "PL0003", 3)  # CR chest + CT head, 2023
    _, prior = study_of(sample_plan, "PL0003", 1)  # CT head, 2018
    open_viewer(page, trauma.study_uid)
    ct = next(s for s in trauma.series if s.modality == "CT")
    series_button(page, ct.description).click()
    expect(overlay(page, "tr")).to_contain_text(f"Im 1/{ct.instance_count}")
    wait_for_image(page)

    page.get_by_text("Compare").click()
    entry = page.locator("#compare-list li").filter(has_text="Schädel nativ")
    expect(entry.get_by_role("link", name="New tab ↗")).to_have_attribute(
        "href", f"/viewer?studyUID={prior.study_uid}")
    entry.get_by_role("button", name="Side by side").click()
    wait_for_image(page, 1)
    expect(page.locator("#viewport-grid")).to_have_attribute("data-layout", "1x2")
    assert_drawn(canvas_stats(page, 1))
    expect(page.locator("#pane-1 .pane-study")).to_have_text(f"{iso(prior.study_date)} · Schädel nativ")
    expect(page.locator("#pane-1 .pane-new-tab")).to_have_attribute("href", f"/viewer?studyUID={prior.study_uid}")
    expect(overlay(page, "tl", 1)).to_contain_text(iso(prior.study_date))
    expect(overlay(page, "tr", 1)).to_contain_text(f"Im 1/{prior.series[0].instance_count}")
    expect(page.get_by_label("Sync scroll")).to_be_checked()  # both CT

    page.locator("#pane-0 .pane-viewport").click()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(overlay(page, "tr", 0)).to_contain_text(f"Im 3/{ct.instance_count}")
    expect(overlay(page, "tr", 1)).not_to_contain_text("Im 1/")  # the prior followed

    page.locator("#pane-1 .pane-close").click()
    expect(page.locator("#pane-1")).to_be_hidden()
    expect(page.locator("#viewport-grid")).to_have_attribute("data-layout", "1x1")


def test_each_compressed_transfer_syntax_is_drawn(page):
    open_viewer(page, SYNTAX_STUDY_UID)
    for name, (description, colour) in SYNTAX_FILES.items():
        series_button(page, description).click()
        expect(overlay(page, "tr")).to_contain_text(description)
        wait_for_image(page)
        expect(page.locator("#pane-0 .pane-message")).to_be_hidden()
        stats = canvas_stats(page)
        assert stats["max"] - stats["min"] > 50 and stats["levels"] > 10, (name, stats)
        if colour:
            assert stats["colourful"] > 0.1, (name, stats)
        else:
            assert stats["colourful"] == 0, (name, stats)


def test_a_multi_frame_instance_scrolls_frame_by_frame(page):
    open_viewer(page, MULTIFRAME_STUDY_UID)
    expect(overlay(page, "tr")).to_contain_text(f"Im 1/{FRAMES}")
    expect(overlay(page, "tr")).to_contain_text(f"Fr 1/{FRAMES}")
    first = canvas_stats(page)["mean"]
    page.keyboard.press("ArrowDown")
    expect(overlay(page, "tr")).to_contain_text(f"Fr 2/{FRAMES}")
    second = eventually(lambda: canvas_stats(page)["mean"], lambda mean: mean > first + 10)
    assert second > first + 10, (first, second)  # frame 2 is 1000 brighter


def test_an_undecodable_image_says_so(page):
    page.goto(f"/viewer?studyUID={BROKEN_STUDY_UID}")
    message = page.locator("#pane-0 .pane-message")
    expect(message).to_be_visible()
    expect(message).to_have_text(
        "Image 1 of 1 could not be shown. This image could not be decoded (JPEG baseline).")
    expect(page.locator("#pane-0 .pane-progress-text")).to_have_text("0 / 1 · 1 failed")

    # A bad image further down a series: the good one shows; the wheel reaches the bad one, which says so.
    series_button(page, "SECOND IMAGE UNDECODABLE").click()
    wait_for_image(page)
    expect(message).to_be_hidden()
    expect(page.locator("#pane-0 .pane-progress-text")).to_have_text("1 / 2 · 1 failed")
    box = viewport_box(page)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 100)
    expect(message).to_have_text("Image 2 of 2 could not be shown. This image could not be decoded (JPEG baseline).")
    expect(overlay(page, "tr")).to_contain_text("Im 2/2")
    page.keyboard.press("ArrowUp")
    expect(message).to_be_hidden()
    expect(overlay(page, "tr")).to_contain_text("Im 1/2")


def test_a_study_deleted_from_the_pacs_says_so(page, sample_plan, viewer_orthanc):
    _, study = study_of(sample_plan, DELETED_PATIENT, 1)
    auth = (viewer_orthanc.username, viewer_orthanc.password)
    answer = requests.post(viewer_orthanc.url + "tools/lookup", data=study.study_uid, auth=auth, timeout=10)
    orthanc_id = next(item["ID"] for item in answer.json() if item["Type"] == "Study")
    with OrthancClient(viewer_orthanc.url, *auth) as client:
        client.delete_study(orthanc_id)  # behind the cache's back: no sync runs
    page.goto(f"/viewer?studyUID={study.study_uid}")
    expect(page.locator("#viewer-error-text")).to_have_text(NOT_FOUND)
    expect(page.locator("#viewer-body")).to_be_hidden()
    expect(page.locator("#viewer-retry")).to_be_hidden()
    expect(page.locator("#compare-menu")).to_be_hidden()
    page.goto("/viewer")  # no study asked for: back to the worklist
    expect(page).to_have_url(re.compile(r"/patients$"))


def test_an_ended_session_logs_in_again_and_comes_back(browser, server, sample_plan):
    _, trauma = study_of(sample_plan, "PL0003", 3)
    context = new_context(browser, server)
    try:
        tab = context.new_page()
        problems = watch(tab)
        log_in(tab)
        open_viewer(tab, trauma.study_uid)
        # Let the background work end first (series, thumbnails, the compare list): only the click asks next.
        expect(tab.locator("#pane-0")).to_have_attribute("data-complete", "true")
        expect(tab.locator("canvas.series-thumb.is-drawn")).to_have_count(len(trauma.series))
        expect(tab.locator("#compare-status")).not_to_have_text(re.compile("Loading"))
        context.clear_cookies()
        # The CT's first image was never fetched (only its thumbnail, the middle one): its request gets a 401.
        ct = next(s for s in trauma.series if s.modality == "CT")
        series_button(tab, ct.description).click()
        expect(tab).to_have_url(re.compile(r"/auth/login\?next=" + re.escape("%2Fviewer%3FstudyUID%3D")))
        tab.get_by_label("Username").fill("ada")
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Log in").click()
        expect(tab).to_have_url(re.compile(r"/viewer\?studyUID=" + re.escape(trauma.study_uid) + "$"))
        wait_for_image(tab)
        assert not problems, problems
    finally:
        context.close()


def test_an_unreachable_pacs_says_so(page, sample_plan, viewer_orthanc):
    _, study = study_of(sample_plan, "PL0004", 1)
    viewer_orthanc.stop()
    try:
        page.goto(f"/viewer?studyUID={study.study_uid}")
        expect(page.locator("#viewer-error-text")).to_contain_text(PACS_DOWN)
        expect(page.locator("#viewer-retry")).to_be_visible()
    finally:
        viewer_orthanc.start()
    page.get_by_role("button", name="Try again").click()
    wait_for_image(page)
