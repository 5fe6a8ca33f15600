"""Benchmark the DICOM proxy: throughput next to Orthanc's own, and the server's memory on a large file.

    .venv/bin/python bench/proxy_bench.py [--megabytes 500] [--repeat 5]

Starts a private Orthanc and a real `pacs-lite serve` (SQLite), uploads one
multi-frame file of about --megabytes MB and a 200-image CT, then measures,
side by side in one run:
- the large file straight from Orthanc and through /api/get_dicom_orthanc
  (median seconds, MB/s), and the server process's peak resident memory
  while it streams it (it must stay flat: the file is never held whole);
- the 200 CT images one after the other, straight and through the proxy.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import requests
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pacs_lite.orthanc import OrthancClient  # noqa: E402
from pacs_lite.orthanc_server import OrthancServer  # noqa: E402
from pacs_lite.sample_data import make_ct_series, upload_files  # noqa: E402
from tests.serve_process import PACS_LITE, environment, start_server  # noqa: E402

PASSWORD = "bench password 1"


def multiframe_file(megabytes):
    """Return the bytes of a multi-frame 16-bit DICOM file of about this size."""
    rows = columns = 512
    frames = max(1, int(megabytes * 1024 * 1024 // (rows * columns * 2)))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID = "BENCH^MULTIFRAME", "PLBENCHMF"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyDate, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "20250101", "OT", 1, 1
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.random.default_rng(0).integers(0, 4096, (frames, rows, columns), dtype=np.uint16).tobytes()
    path = tempfile.mktemp(suffix=".dcm")
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    data = Path(path).read_bytes()
    os.unlink(path)
    return data


def rss_kb(pid):
    """Return a process's resident memory in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


def start_pacs_lite(folder, orthanc):
    """Set up a database with a radiologist, sync it and start `pacs-lite serve`; return the Server."""
    env = environment(folder / "instance", f"sqlite:///{folder / 'cache.db'}")
    env.update(PACS_LITE_ORTHANC_URL=orthanc.url, PACS_LITE_ORTHANC_USERNAME=orthanc.username,
               PACS_LITE_ORTHANC_PASSWORD=orthanc.password)
    subprocess.run([*PACS_LITE, "init-db"], env=env, check=True, capture_output=True)
    subprocess.run([*PACS_LITE, "create-user", "bench", "--role", "radiologist", "--password-stdin"], env=env,
                   check=True, capture_output=True, input=PASSWORD + "\n", text=True)
    subprocess.run([*PACS_LITE, "sync"], env=env, check=True, capture_output=True)
    return start_server(env, folder / "serve.log")


def log_in(url):
    """Return a requests.Session logged in to the server."""
    session = requests.Session()
    token = re.search(r'name="csrf_token" value="([^"]+)"', session.get(url + "/auth/login").text).group(1)
    session.post(url + "/auth/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token})
    return session


def timed_download(session, url, headers=None):
    """Download url in chunks; return (seconds, bytes)."""
    started = time.perf_counter()
    size = 0
    with session.get(url, stream=True, headers=headers or {}) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1024 * 1024):
            size += len(chunk)
    return time.perf_counter() - started, size


def main(argv=None):
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, OrthancServer(Path(folder) / "orthanc") as orthanc:
        client = OrthancClient(orthanc.url, orthanc.username, orthanc.password, timeout=(3, 300))
        big = multiframe_file(args.megabytes)
        stored = client.upload(big)
        big_id = stored["ID"]
        upload_files(make_ct_series(200), client)
        ct_study = next(s for s in client.studies_page(0, 10) if s["ID"] != stored["ParentStudy"])
        ct_ids = [i["ID"] for i in client.study_instances(ct_study["ID"])]
        server = start_pacs_lite(Path(folder), orthanc)
        process, url = server.process, server.url
        try:
            session = log_in(url)
            session.get(url + f"/api/load_study_fast?studyUID={ct_study['MainDicomTags']['StudyInstanceUID']}")
            direct = requests.Session()
            direct.auth = (orthanc.username, orthanc.password)
            identity = {"Accept-Encoding": "identity"}
            rows = []
            idle_rss = rss_kb(process.pid)
            peak = [idle_rss]
            stop = threading.Event()

            def watch():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kb(process.pid))
                    time.sleep(0.01)

            watcher = threading.Thread(target=watch)
            watcher.start()
            proxied = [timed_download(session, f"{url}/api/get_dicom_orthanc?instanceId={big_id}")
                       for _ in range(args.repeat)]
            stop.set()
            watcher.join()
            straight = [timed_download(direct, f"{orthanc.url}instances/{big_id}/file", identity)
                        for _ in range(args.repeat)]
            size_mb = proxied[0][1] / 1024 / 1024
            for name, runs in (("Orthanc direct", straight), ("through the proxy", proxied)):
                seconds = statistics.median(s for s, _ in runs)
                rows.append((f"{size_mb:.0f} MB file, {name}", seconds * 1000, size_mb / seconds))
            ct = {}
            for name, base, sess, headers in (
                ("Orthanc direct", f"{orthanc.url}instances/{{}}/file", direct, identity),
                ("through the proxy", f"{url}/api/get_dicom_orthanc?instanceId={{}}", session, {}),
            ):
                runs = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    for instance_id in ct_ids:
                        timed_download(sess, base.format(instance_id), headers)
                    runs.append(time.perf_counter() - started)
                ct[name] = statistics.median(runs)
                rows.append((f"200 CT images one by one, {name}", ct[name] * 1000, None))
            print(f"{'what':<45} {'median ms':>10} {'MB/s':>8}")
            for name, ms, rate in rows:
                shown = "" if rate is None else f"{rate:.0f}"
                print(f"{name:<45} {ms:>10.0f} {shown:>8}")
            print(f"proxy / direct: large file {rows[1][1] / rows[0][1]:.2f}x, "
                  f"200 images {ct['through the proxy'] / ct['Orthanc direct']:.2f}x")
            print(f"server memory: {idle_rss / 1024:.0f} MB idle, {peak[0] / 1024:.0f} MB peak while streaming "
                  f"{size_mb:.0f} MB ({(peak[0] - idle_rss) / 1024:.0f} MB more)")
            direct.close()
            session.close()
        finally:
            server.stop()
            client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
