"""Benchmark the viewer: navigation to the first image, and to the whole series loaded, in headless Chromium.

Starts a private Orthanc holding three 200-slice CTs of one patient
(`make_ct_series(200)`, seeds 0, 1 and 2: 256 × 256, 16-bit, uncompressed), a
SQLite cache filled by `pacs-lite sync`, a real `python -m pacs_lite serve`
(waitress), and Debian's Chromium through Playwright. Each run opens a new
browser context (empty HTTP cache, like a new browser), logs in, then times:

  cold              study A in the new context: bundle, worker, wasm and images all fetched
  warm, new study   study B next in the same context: the bundle is cached, its images are not
  warm, same study  study A once more: bundle and images in the HTTP cache
  prior, same page  on A's page, Compare → study C side by side (no navigation; C's images not cached)

Page loads are timed with the page's own marks, in ms since the start of the
navigation: `viewer:first-image` (the first image drawn on the canvas) and
`viewer:series-loaded` (every image of the series decoded and cached); the
load_study_fast answer (resource timing), `viewer:cornerstone-ready` (the part
of Cornerstone that draws images evaluated and initialised) and
`viewer:tools-ready` (the mouse tools, imported after the first image) show
where the time goes. The prior is timed from the click (the pane's
data-first-image-ms and data-series-ms). It prints the median of R runs and
every run.

    .venv/bin/python bench/viewer_bench.py [--runs 5] [--slices 200]

Everything it starts is stopped at the end, on error and on Ctrl-C too.
"""

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pacs_lite.orthanc import OrthancClient  # noqa: E402
from pacs_lite.orthanc_server import OrthancServer  # noqa: E402
from pacs_lite.sample_data import large_ct_plan, make_ct_series, upload_files  # noqa: E402
from tests.serve_process import PACS_LITE, environment, start_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "bench_radiologist", "viewer bench password"
MARKS = ("viewer:cornerstone-ready", "viewer:first-image", "viewer:tools-ready", "viewer:series-loaded")
TARGET_COLD_MS, TARGET_WARM_MS = 1000, 300
PAGE_TIMEOUT_MS = 60_000


def run_command(env, *args, stdin=""):
    """Run one pacs-lite command; stop the benchmark with its output when it fails."""
    result = subprocess.run([*PACS_LITE, *args], input=stdin, capture_output=True, text=True, env=env, timeout=300)
    if result.returncode != 0:
        sys.exit(f"pacs-lite {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def wait_for_stable(client, count, timeout=120):
    """Wait until Orthanc calls every study stable, so that one sync sees them whole."""
    deadline = time.monotonic() + timeout
    while True:
        studies = client.studies_page(0, 1000)
        if len(studies) >= count and all(study["IsStable"] for study in studies):
            return
        if time.monotonic() > deadline:
            sys.exit("the benchmark studies never became stable in Orthanc")
        time.sleep(0.3)


def log_in(page, base_url):
    """Log in through the form (not timed)."""
    page.goto(base_url + "/auth/login")
    page.fill("#username", USER)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/patients")


def open_viewer(page, base_url, study_uid):
    """Open the viewer, wait for the whole series, and return its marks in ms since navigation start."""
    page.goto(f"{base_url}/viewer?studyUID={study_uid}", wait_until="commit")
    page.wait_for_selector("#viewer[data-series-loaded]", state="attached", timeout=PAGE_TIMEOUT_MS)
    marks = page.evaluate("(names) => names.map((n) => (performance.getEntriesByName(n)[0] || {}).startTime ?? null)",
                          list(MARKS))
    answered = page.evaluate("performance.getEntriesByType('resource')"
                             ".find((r) => r.name.includes('/api/load_study_fast')).responseEnd")
    check_no_failures(page, 0)
    return {"study JSON": answered, **dict(zip(MARKS, marks))}


def check_no_failures(page, pane):
    """Stop the benchmark when a viewport failed to load an image."""
    failed = page.evaluate(f"document.querySelector('#pane-{pane}').dataset.failed")
    if failed not in (None, "0"):
        sys.exit(f"{failed} images failed to load in viewport {pane + 1}")


def open_prior(page, study_uid):
    """On the open viewer, show a study side by side; return ms from the click to its first image and to all."""
    page.click("#compare-menu summary")
    page.click(f"#compare-list button[data-study-uid='{study_uid}']")
    page.wait_for_selector("#pane-1[data-series-ms]", state="attached", timeout=PAGE_TIMEOUT_MS)
    check_no_failures(page, 1)
    first, whole = page.evaluate(
        "['firstImageMs', 'seriesMs'].map((k) => Number(document.querySelector('#pane-1').dataset[k]))")
    return {"study JSON": None, "viewer:cornerstone-ready": None, "viewer:first-image": first,
            "viewer:tools-ready": None, "viewer:series-loaded": whole}


def measure(browser, base_url, study_a, study_b, study_c):
    """One run: a new context, then cold A, warm B, warm A again, then C side by side on A's page."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        log_in(page, base_url)
        cold = open_viewer(page, base_url, study_a)
        warm_new = open_viewer(page, base_url, study_b)
        warm_again = open_viewer(page, base_url, study_a)
        prior = open_prior(page, study_c)
        return {"cold": cold, "warm, new study": warm_new, "warm, same study": warm_again,
                "prior, same page": prior}
    finally:
        context.close()


def print_table(runs, slices):
    """Print the medians, then every run."""
    kinds = list(runs[0])
    columns = [("study JSON", "study JSON"), ("bundle ready", "viewer:cornerstone-ready"),
               ("first image", "viewer:first-image"), ("tools ready", "viewer:tools-ready"),
               (f"all {slices} images", "viewer:series-loaded")]
    targets = {"cold": TARGET_COLD_MS, "warm, new study": TARGET_WARM_MS, "warm, same study": TARGET_WARM_MS}

    def median(kind, mark):
        values = [run[kind][mark] for run in runs]
        return None if None in values else statistics.median(values)

    print()
    print(f"ms since navigation start (the prior: since the click), median of {len(runs)} runs")
    print(f"| {'page load':<18} | " + " | ".join(f"{title:>14}" for title, _ in columns) + " | target (first image) |")
    print(f"| {'-' * 18} | " + " | ".join("-" * 13 + ":" for _ in columns) + " | --- |")
    for kind in kinds:
        cells = [median(kind, mark) for _, mark in columns]
        target = targets.get(kind)
        verdict = f"≤ {target} ms: {'met' if cells[2] <= target else 'missed'}" if target else ""
        text = " | ".join(f"{'–' if cell is None else f'{cell:.0f}':>14}" for cell in cells)
        print(f"| {kind:<18} | {text} | {verdict} |")
    print()
    for kind in kinds:
        firsts = " / ".join(f"{run[kind]['viewer:first-image']:.0f}" for run in runs)
        alls = " / ".join(f"{run[kind]['viewer:series-loaded']:.0f}" for run in runs)
        print(f"{kind}: first image {firsts}; all images {alls}")


def main(argv=None):
    """Set everything up, run the measurements, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs (new browser contexts); default 5")
    parser.add_argument("--slices", type=int, default=200, help="slices per CT; default 200")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally blocks on SIGTERM too
    with tempfile.TemporaryDirectory(prefix="viewer_bench_") as folder:
        folder = Path(folder)
        with OrthancServer(folder / "orthanc") as orthanc:
            with OrthancClient(orthanc.url, orthanc.username, orthanc.password) as client:
                started = time.monotonic()
                files = [file for seed in (0, 1, 2) for file in make_ct_series(args.slices, seed=seed)]
                upload_files(files, client)
                size = sum(len(data) for _, data in files) / 1e6
                print(f"fill: {len(files)} files ({size:.0f} MB) in {time.monotonic() - started:.1f} s")
                wait_for_stable(client, 3)
            study_a, study_b, study_c = (large_ct_plan(args.slices, seed=s).studies[0].study_uid for s in (0, 1, 2))

            env = environment(folder / "instance", f"sqlite:///{folder / 'cache.db'}")
            env.update(PACS_LITE_ORTHANC_URL=orthanc.url, PACS_LITE_ORTHANC_USERNAME=orthanc.username,
                       PACS_LITE_ORTHANC_PASSWORD=orthanc.password)
            run_command(env, "init-db")
            run_command(env, "create-user", USER, "--role", "radiologist", "--password-stdin", stdin=PASSWORD + "\n")
            run_command(env, "sync")
            server = start_server(env, folder / "serve.log")
            base_url = server.url
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                    try:
                        measure(browser, base_url, study_a, study_b, study_c)  # warm-up: the server's first requests
                        runs = []
                        for number in range(1, args.runs + 1):
                            runs.append(measure(browser, base_url, study_a, study_b, study_c))
                            print(f"run {number}/{args.runs} done", flush=True)
                    finally:
                        browser.close()
            finally:
                server.stop()
            print_table(runs, args.slices)
    return 0


if __name__ == "__main__":
    sys.exit(main())
