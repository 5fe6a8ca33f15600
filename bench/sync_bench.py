"""Benchmark the cache sync against Orthanc's own listing, on SQLite and MariaDB.

Starts a private Orthanc and a private MariaDB in temp folders, fills Orthanc
with N small synthetic studies, then measures (median of K repeats):

- Orthanc alone listing every study and series (`/studies?expand` and
  `/series?expand` in pages, as the full sync reads them): the floor;
- a full sync into a fresh SQLite file and a fresh MariaDB database;
- an incremental pass with no changes, and one after adding 10 new studies.

    .venv/bin/python bench/sync_bench.py [--studies N] [--repeat K]

Everything it starts is stopped at the end, on error and on Ctrl-C too.
"""

import argparse
import contextlib
import io
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.uid import ComputedRadiographyImageStorage as CRImageStorage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pacs_lite import sync  # noqa: E402
from pacs_lite.db import connect, forget_thread_connections  # noqa: E402
from pacs_lite.orthanc import OrthancClient  # noqa: E402
from pacs_lite.orthanc_server import OrthancServer  # noqa: E402
from pacs_lite.schema import init_db  # noqa: E402
from tests.mariadb_server import MariaDBServer  # noqa: E402

SOP_CLASSES = {"CT": CTImageStorage, "MR": MRImageStorage, "CR": CRImageStorage}
MODALITIES = ["CT", "MR", "CR", "CT", "MR"]
SURNAMES = ["SMITH", "MÜLLER", "GARCIA", "NGUYEN", "OBRIEN", "ROSSI", "KOWALSKI", "TANAKA",
            "DUBOIS", "JOHANSSON", "PETROV", "SILVA", "KIM", "OKAFOR", "COHEN", "PATEL"]
GIVEN = ["ANNA", "JOHN", "MARIA", "LUCAS", "SOFIA", "JÜRGEN", "AMIR", "YUKI", "LEA", "OMAR",
         "EMMA", "IVAN", "INES", "PAUL", "NORA", "SEAN", "ZOE", "MAX", "ELLA", "TOM"]
DOCTORS = ["HOUSE^GREGORY", "CURIE^MARIE", "GREY^MEREDITH", "", "WATSON^JOHN^H^DR"]
THREADS = 4
NEW_STUDIES = 10


def uid(*parts):
    """Return a deterministic UID for parts."""
    return generate_uid(entropy_srcs=["pacs_lite sync bench", *map(str, parts)])


def study_files(index, patients):
    """Return the Part-10 bytes of study number index: 1-2 tiny instances, 2 series for some."""
    p = index % patients
    modality = MODALITIES[index % len(MODALITIES)]
    series_count = 2 if index % 4 == 0 else 1
    files = []
    for s in range(series_count):
        for i in range(1 if s else 1 + index % 2):
            ds = Dataset()
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.PatientName = f"{SURNAMES[p % len(SURNAMES)]}^{GIVEN[p // len(SURNAMES) % len(GIVEN)]}"
            ds.PatientID = f"BENCH{p:06d}"
            ds.PatientBirthDate = f"{1940 + p % 60}{1 + p % 12:02d}{1 + p % 28:02d}"
            ds.PatientSex = "MF"[p % 2]
            ds.StudyInstanceUID = uid("study", index)
            ds.StudyDate = f"{2015 + index % 10}{1 + index % 12:02d}{1 + index % 28:02d}"
            ds.StudyTime = f"{8 + index % 10:02d}{index % 60:02d}00"
            ds.StudyDescription = f"{modality} study {index}"
            ds.AccessionNumber = f"A{index:08d}"
            ds.ReferringPhysicianName = DOCTORS[index % len(DOCTORS)]
            ds.Modality = modality
            ds.SeriesInstanceUID, ds.SeriesNumber = uid("series", index, s), s + 1
            ds.SOPClassUID, ds.SOPInstanceUID = SOP_CLASSES[modality], uid("instance", index, s, i)
            ds.InstanceNumber, ds.Rows, ds.Columns, ds.PixelData = i + 1, 4, 4, bytes(32)  # 4x4 pixels
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            buffer = io.BytesIO()
            pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
            files.append(buffer.getvalue())
    return files


def add_studies(client, first, count, patients):
    """Build and upload studies first..first+count-1 with several threads; return the file count."""
    def one(index):
        files = study_files(index, patients)
        for data in files:
            if client.upload(data).get("Status") not in ("Success", "AlreadyStored"):
                raise RuntimeError(f"Orthanc did not store a file of study {index}")
        return len(files)

    with ThreadPoolExecutor(THREADS) as pool:
        try:
            return sum(pool.map(one, range(first, first + count)))
        except BaseException:
            pool.shutdown(cancel_futures=True)  # else Ctrl-C waits for every queued study
            raise


def settle(client, quiet=3.0):
    """Wait until the changes feed stops growing (Stable* events come StableAge seconds late)."""
    last, since = client.last_change_seq(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.5)
        now = client.last_change_seq()
        if now != last:
            last, since = now, time.monotonic()


def timed(action):
    """Run action(); return (milliseconds, its result)."""
    started = time.perf_counter()
    result = action()
    return (time.perf_counter() - started) * 1000, result


def run_sync(client, url, full):
    """Run one sync pass on url; return (ms, SyncResult)."""
    return timed(lambda: sync.sync_once(connect(url), client, url, full=full))


def fresh_databases(folder, mariadb, repeat):
    """Return {"SQLite": url, "MariaDB": url} for empty databases with the schema."""
    urls = {"SQLite": f"sqlite:///{folder}/bench{repeat}.db",
            "MariaDB": mariadb.create_database(f"bench{repeat}")}
    for url in urls.values():
        init_db(connect(url))
        connect(url).commit()
    return urls


def main(argv=None):
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=2000, help="studies to put in Orthanc (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats per measure; the median is shown")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM unwind through the `with` below, which stops both servers.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    patients = max(1, args.studies // 2)
    times = {}  # (measure, database) -> [ms, one per repeat]

    def record(key, ms):
        times.setdefault(key, []).append(ms)

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pacs_sync_bench_")))
        print("starting Orthanc and MariaDB...", flush=True)
        orthanc = stack.enter_context(OrthancServer(folder / "orthanc"))
        mariadb = stack.enter_context(MariaDBServer(folder / "mariadb"))
        client = stack.enter_context(OrthancClient(orthanc.url, orthanc.username, orthanc.password))
        stack.callback(forget_thread_connections)

        ms, files = timed(lambda: add_studies(client, 0, args.studies, patients))
        print(f"fill: {args.studies} studies, {files} files in {ms / 1000:.1f} s "
              f"({files / ms * 1000:.0f} files/s, {THREADS} threads)", flush=True)
        settle(client)
        next_study = args.studies

        for repeat in range(args.repeat):
            ms, (studies, series) = timed(lambda: (sync.read_all(client.studies_page),
                                                   sync.read_all(client.series_page)))
            record(("listing", ""), ms)
            # Alternate which database goes first, so neither always gets the warmer Orthanc.
            urls = list(fresh_databases(folder, mariadb, repeat).items())[::-1 if repeat % 2 else 1]
            for kind, url in urls:
                ms, result = run_sync(client, url, full=True)
                assert result.added == len(studies), result.summary()
                record(("full", kind), ms)
            for kind, url in urls:
                ms, result = run_sync(client, url, full=False)
                assert not (result.full or result.added or result.updated), result.summary()
                record(("none", kind), ms)
            add_studies(client, next_study, NEW_STUDIES, patients)
            next_study += NEW_STUDIES
            for kind, url in urls:
                ms, result = run_sync(client, url, full=False)
                assert result.added == NEW_STUDIES, result.summary()
                record(("new", kind), ms)
            print(f"repeat {repeat + 1}/{args.repeat}: {len(studies)} studies, {len(series)} series", flush=True)
            forget_thread_connections()
            mariadb.drop_database(f"bench{repeat}")
            settle(client)

    print_table(args, times)
    return 0


def print_table(args, times):
    """Print the medians side by side."""
    med = {key: statistics.median(values) for key, values in times.items()}
    floor = med[("listing", "")]
    print(f"\nN = {args.studies} studies (+{NEW_STUDIES} per repeat), median of {args.repeat} runs, ms")
    print(f"{'':34}{'SQLite':>10}{'MariaDB':>10}")
    print(f"{'Orthanc listing (floor)':34}{floor:>10.0f}{floor:>10.0f}")
    rows = [("full sync", "full"), ("incremental, no change", "none"), ("incremental, +10 studies", "new")]
    for label, key in rows:
        print(f"{label:34}{med[(key, 'SQLite')]:>10.0f}{med[(key, 'MariaDB')]:>10.0f}")
    print(f"{'full sync / Orthanc listing':34}{med[('full', 'SQLite')] / floor:>9.1f}x"
          f"{med[('full', 'MariaDB')] / floor:>9.1f}x")
    print("\nevery run, ms:")
    for (measure, kind), values in times.items():
        print(f"  {measure:8}{kind:8}" + " ".join(f"{v:7.0f}" for v in values))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; Orthanc and MariaDB stopped")
