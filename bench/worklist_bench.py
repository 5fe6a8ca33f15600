"""Benchmark the worklist API (/api/patient_list_api) on a large cache, on SQLite and MariaDB.

Fills the cache tables with P synthetic patients and S studies (1-2 series
each) through the project's own data layer (sync.study_row / series_row /
patient_row / referral_rows, then cache.save_studies / save_patients /
save_referrals in batches, one transaction per batch), once into a SQLite file and once into a private
MariaDB. Then, for each database, starts a real `python -m pacs_lite serve`
(waitress, 4 threads), logs in a radiologist and a referring doctor
(HOUSE^GREGORY) over HTTP, and times R sequential requests of each query
shape over one keep-alive http.client connection per user (and the floor
through requests too, which adds about 1 ms a call of its own), in rounds
(--rounds, 10): every shape in turn in each round, so that a slow spell of
the shared machine falls on all of them alike. It prints p50 / p99 per shape
against the target (p50 <= 5 ms, p99 <= 20 ms), and the query plans of the
shapes that miss it. A shape that has spent --shape-budget seconds (60) and
has 20 timed requests sits out the rounds left, so a very slow one cannot
hold the run for an hour.

    .venv/bin/python bench/worklist_bench.py [--patients 100000] [--studies 300000] [--requests 200]
    .venv/bin/python bench/worklist_bench.py --keep /var/tmp/worklist_bench   # reuse the filled databases

Everything it starts (servers, MariaDB) is stopped at the end, on error and on
Ctrl-C too.
"""

import argparse
import contextlib
import datetime
import hashlib
import http.client
import json
import math
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pacs_lite import cache, sync, worklist  # noqa: E402
from pacs_lite.api.params import worklist_query  # noqa: E402
from pacs_lite.clock import utc_now  # noqa: E402
from pacs_lite.db import connect, forget_thread_connections  # noqa: E402
from pacs_lite.names import person_name_key  # noqa: E402
from pacs_lite.orthanc import ORTHANC_ID  # noqa: E402
from pacs_lite.schema import init_db  # noqa: E402
from pacs_lite.visibility import Scope  # noqa: E402
from tests.mariadb_server import MariaDBServer  # noqa: E402
from tests.serve_process import PACS_LITE, environment, start_server  # noqa: E402

SEED = 20261128
FILL_FORMAT = 2  # bump when the generated data changes, so kept databases are refilled
BATCH_PATIENTS = 1000  # patients (with all their studies) per transaction
SERVE_THREADS = 4
WARM_UP = 5
MIN_REQUESTS = 20  # a shape over its time budget still gets this many timed requests
HTTP_TIMEOUT = 120
TARGET_P50, TARGET_P99 = 5.0, 20.0
FLOOR_VIA_REQUESTS = "floor via requests"  # the floor timed through requests.Session, not http.client
FROM_PAGE_BEFORE = "from the page before"  # a shape's cursor: the nextCursor of the page before it
PASSWORD = "worklist bench password"
RADIOLOGIST, REFERRING = "bench_radiologist", "bench_house"
HOUSE = "HOUSE^GREGORY"
HOUSE_STUDIES = 1000
MARIADB_NAME = "worklist_bench"
FIRST_DAY = datetime.date(2011, 1, 1)
LAST_DAY = datetime.date(2025, 12, 31)
DAYS = (LAST_DAY - FIRST_DAY).days + 1  # 15 years of study dates

# Family names, the most common first (they are drawn with falling weights); some with accents or several words.
FAMILY = """
SMITH MÜLLER GARCÍA NGUYEN JOHNSON SCHMIDT MARTIN ROSSI KOWALSKI BROWN SCHNEIDER DUBOIS MARTÍNEZ WILLIAMS
FISCHER LÓPEZ JONES WEBER BERNARD GONZÁLEZ MEYER RUSSO NOWAK TAYLOR WAGNER RODRÍGUEZ PETIT BECKER FERRARI
WILSON HOFFMANN PÉREZ DAVIES SCHULZ DURAND SÁNCHEZ EVANS KOCH LEROY ROMANO THOMAS RICHTER MOREAU GÓMEZ
ROBERTS KLEIN WÓJCIK FERNÁNDEZ WOLF SIMON COLOMBO JOHANSSON SCHRÖDER LAURENT DÍAZ WALKER NEUMANN LEFÈVRE
RICCI WRIGHT SCHWARZ MICHEL KOWALCZYK NÚÑEZ ANDERSSON ZIMMERMANN GARNIER MARINO THOMPSON BRAUN FRANÇOIS
JIMÉNEZ WHITE KRÜGER LEWANDOWSKI GRECO HOFMANN KARLSSON HARTMANN NIELSEN LANGE ÖZTÜRK YILMAZ HUGHES
SCHMITT BRUNO GIRARD RAMÍREZ WERNER SVOBODA KRAUSE NOVÁK GALLO CÔTÉ HERNÁNDEZ SÖDERBERG DVOŘÁK KOVÁČ
JØRGENSEN MEIER ÅBERG LEHMANN GREEN CONTI HALL ŞAHIN HANSEN SCHMID ÇELIK KING MORENO SCHULZE
BÉLANGER MAIER GAUTHIER ESPOSITO KÖHLER HERRMANN TANAKA SUZUKI SATO KIM LEE PARK CHEN WANG LI ZHANG LIU
PATEL SHAH SINGH KUMAR COHEN LEVI KATZ OKAFOR OKONKWO MENSAH SILVA SANTOS OLIVEIRA PEREIRA COSTA ALMEIDA
FERREIRA RIBEIRO CARVALHO GOMES MARTINS ROCHA PETROV IVANOV SMIRNOV POPESCU POPA IONESCU HORVÁTH NAGY
KISS TÓTH SZABÓ VARGA PAPADOPOULOS OBRIEN O'CONNOR MURPHY KELLY WALSH BYRNE RYAN DOYLE SULLIVAN MCCARTHY
JANSEN BAKKER VISSER SMIT MEIJER MULDER VOS PETERS JACOBS
MAES WILLEMS CLAES GOOSSENS WOUTERS STEVENS ABADI HADDAD KHOURY NASSER SALEH MANSOUR HASSAN ALI AHMED
SAYED ÅSTRÖM BLOMQVIST LINDGREN LUNDQVIST SANDBERG STRÖM HÄKKINEN VIRTANEN KORHONEN MÄKINEN NIEMINEN
SCHÄFER BÖHM JÄGER GÜNTHER FUCHS VOGEL STEIN SOMMER SEIDEL BRANDT HAAS
""".split()
# Surnames of several words (one PN component, several words in the search index).
FAMILY += ["DE LUCA", "VAN DIJK", "DE JONG", "DE VRIES", "VAN DEN BERG", "DE BOER", "DE LA CRUZ", "VAN DER MEER",
           "MARTIN-LÓPEZ", "DA SILVA", "LE GALL", "DI STEFANO"]

GIVEN = """
MARIA JOHN ANNA DAVID SOFIA MICHAEL EMMA THOMAS LAURA PETER JULIA PAUL SARAH JAMES ELENA ANDREAS LÉA
JÜRGEN JOSÉ MARÍA ZOË RENÉE HÉLÈNE FRANÇOIS CHLOÉ ANDRÉ SØREN BJÖRN ÅSA JOÃO INÊS CÉLINE MATTHÄUS JÖRG
GÜNTER BÄRBEL ÉMILE NOÉMIE RAPHAËL AGNÈS ÁLVARO LUCÍA SEBASTIÁN IÑAKI MÁRIA ZSÓFIA ŁUKASZ MAŁGORZATA
ANTONÍN TOMÁŠ MEHMET AYŞE ÇAĞLA LUCAS LUKAS MAX LEON FELIX NOAH ELIAS BEN FINN JONAS LIAM OLIVER HUGO
LOUIS GABRIEL ARTHUR JULES ADAM ALEXANDER DANIEL SAMUEL MARTIN SIMON STEFAN FRANK KLAUS WOLFGANG HANS
MARCO LUCA GIULIA FRANCESCA ALESSANDRO MATTEO CHIARA SARA PIOTR KATARZYNA AGNIESZKA MAGDALENA JAN KAREN
LINDA SUSAN ROBERT RICHARD WILLIAM JOSEPH CHARLES MARY PATRICIA JENNIFER ELIZABETH BARBARA JESSICA NANCY
YUKI HARUTO SAKURA MIN-JUN JI-WOO WEI FANG MING AMIR OMAR FATIMA AISHA LEILA YUSUF IBRAHIM PRIYA RAHUL
ARJUN ANANYA CHIDI NGOZI KWAME AMA IVAN OLGA DMITRI NATALIA SERGEI TATIANA INGRID SIGRID ASTRID LARS
ERIK NILS KERSTIN SEAN NIAMH SIOBHAN CONOR AOIFE EOIN NORA INES ELLA TOM ROSA CLARA LENA EVA HANNA
""".split()

DOCTOR_GIVEN = ["JAMES", "LISA", "ROBERT", "ALLISON", "ERIC", "CHRISTINA", "MEREDITH", "DEREK", "MIRANDA",
                "PRESTON", "ISOBEL", "MARC", "NATHALIE", "KENJI", "PRIYA", "HÅKAN", "RAÚL", "AMÉLIE"]
# modality -> (weight, study descriptions, body parts)
MODALITIES = {
    "CT": (30, ["CT CHEST", "CT HEAD W/O CONTRAST", "CT ABDOMEN PELVIS W CONTRAST", "CT ANGIO CHEST"],
           ["CHEST", "HEAD", "ABDOMEN"]),
    "MR": (20, ["MRI BRAIN", "MRI KNEE LEFT", "MRI LUMBAR SPINE", "MRI PROSTATE"], ["BRAIN", "KNEE", "LSPINE"]),
    "CR": (25, ["CHEST PA LAT", "HAND 2 VIEWS", "KNEE AP LAT"], ["CHEST", "HAND", "KNEE"]),
    "US": (15, ["US ABDOMEN", "US THYROID", "US OBSTETRIC"], ["ABDOMEN", "NECK", "PELVIS"]),
    "DX": (10, ["DX CHEST", "DX PELVIS", "DX SPINE"], ["CHEST", "PELVIS", "SPINE"]),
}


def orthanc_id(*parts):
    """Return an id of Orthanc's form (sha1 in five 8-hex groups) for these identifying parts."""
    digest = hashlib.sha1("|".join(parts).encode()).hexdigest()
    return "-".join(digest[i:i + 8] for i in range(0, 40, 8))


def dicom_uid(*parts):
    """Return a deterministic 2.25 (UUID-derived) UID."""
    return "2.25." + str(int(hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:32], 16))


def falling_weights(count, skew=0.9, offset=8):
    """Return Zipf-like weights: the first items are drawn most often."""
    return [1 / (i + offset) ** skew for i in range(count)]


def doctors(rng):
    """Return 199 referring physicians' PNs; HOUSE^GREGORY is not among them (his studies are placed apart)."""
    names = set()
    while len(names) < 199:
        family = rng.choice(FAMILY[:120])
        given = rng.choice(DOCTOR_GIVEN)
        middle = rng.choice(["", "", "", "A", "J", "M"])
        names.add("^".join(p for p in (family, given, middle) if p) + ("^^DR" if rng.random() < 0.2 else ""))
    names.discard(HOUSE)
    return sorted(names)


def generate(patients, studies, now):
    """Yield (study rows, series rows, patient rows) batches of BATCH_PATIENTS patients; deterministic."""
    rng = random.Random(SEED)
    family_weights = falling_weights(len(FAMILY))
    given_weights = falling_weights(len(GIVEN), skew=0.7)
    doctor_names = doctors(rng)
    doctor_weights = falling_weights(len(doctor_names), skew=0.8, offset=3)
    modality_names = list(MODALITIES)
    modality_weights = [MODALITIES[m][0] for m in modality_names]
    ids = rng.sample(range(10_000_000, 100_000_000), patients)
    # Every patient has one study; the others go to patients with skewed weights (some have dozens).
    per_patient = [1] * patients
    activity = [rng.expovariate(1) ** 2 for _ in range(patients)]
    for index in rng.choices(range(patients), weights=activity, k=max(0, studies - patients)):
        per_patient[index] += 1
    house = set(rng.sample(range(studies), min(HOUSE_STUDIES, studies)))
    study_number = 0
    batch = ([], [], [], [])
    for p in range(patients):
        patient_id = str(ids[p])
        name = f"{rng.choices(FAMILY, family_weights)[0]}^{rng.choices(GIVEN, given_weights)[0]}"
        if rng.random() < 0.1:
            name += "^" + rng.choices(GIVEN, given_weights)[0]
        sex = rng.choice("MF")
        birth = FIRST_DAY - datetime.timedelta(days=rng.randrange(365 * 95))
        patient_main = {"PatientID": patient_id, "PatientName": name, "PatientBirthDate": birth.strftime("%Y%m%d"),
                        "PatientSex": sex}
        patient_oid = orthanc_id(patient_id)
        own = []
        for _ in range(per_patient[p]):
            study_uid = dicom_uid("study", study_number)
            study_oid = orthanc_id(patient_id, study_uid)
            modality = rng.choices(modality_names, modality_weights)[0]
            _, descriptions, parts = MODALITIES[modality]
            series_modalities = [modality]
            if rng.random() < 0.4:
                series_modalities.append(modality if rng.random() < 0.8 else rng.choice(modality_names))
            series_rows = []
            for number, series_modality in enumerate(series_modalities, start=1):
                series_uid = dicom_uid("series", study_number, number)
                series = {
                    "ID": orthanc_id(patient_id, study_uid, series_uid),
                    "ParentStudy": study_oid,
                    "MainDicomTags": {"SeriesInstanceUID": series_uid, "SeriesNumber": str(number),
                                      "Modality": series_modality, "SeriesDescription": f"{series_modality} {number}",
                                      "BodyPartExamined": rng.choice(MODALITIES[series_modality][2])},
                    # series_row only counts the instances; a range has the length without the ids.
                    "Instances": range(rng.randint(1, 300 if series_modality in ("CT", "MR") else 4)),
                }
                series_rows.append(sync.series_row(series, now))
            if study_number in house:
                referring = HOUSE
            elif rng.random() < 0.03:
                referring = ""
            else:
                referring = rng.choices(doctor_names, doctor_weights)[0]
            date = FIRST_DAY + datetime.timedelta(days=rng.randrange(DAYS))
            study = {
                "ID": study_oid,
                "ParentPatient": patient_oid,
                "IsStable": True,
                "LastUpdate": date.strftime("%Y%m%dT%H%M%S"),
                "MainDicomTags": {
                    "StudyInstanceUID": study_uid, "StudyDate": date.strftime("%Y%m%d"),
                    "StudyTime": f"{rng.randrange(7, 20):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}",
                    "StudyDescription": rng.choice(descriptions), "AccessionNumber": f"A{study_number + 1:09d}",
                    "ReferringPhysicianName": referring,
                },
                "PatientMainDicomTags": patient_main,
            }
            row = sync.study_row(study, series_rows, now)
            own.append(row)
            batch[0].append(row)
            batch[1].extend(series_rows)
            study_number += 1
        patient = sync.patient_row(patient_oid, own, now)
        batch[2].append(patient)
        batch[3].extend(sync.referral_rows(patient, own))
        if len(batch[2]) == BATCH_PATIENTS or p == patients - 1:
            yield batch
            batch = ([], [], [], [])


def fill(url, patients, studies):
    """Create the schema and write the synthetic cache; return (seconds in all, seconds writing, row counts)."""
    db = connect(url)
    init_db(db)
    db.commit()
    now = utc_now()
    started, in_db, done = time.perf_counter(), 0.0, 0
    for study_rows, series_rows, patient_rows, referral_rows in generate(patients, studies, now):
        t = time.perf_counter()
        with db.transaction():
            cache.save_studies(db, study_rows, series_rows)
            cache.save_patients(db, patient_rows)
            cache.save_referrals(db, [p["orthanc_id"] for p in patient_rows], referral_rows)
        in_db += time.perf_counter() - t
        done += len(study_rows)
        if done % 50_000 < len(study_rows):
            print(f"  {done:,} studies written, {time.perf_counter() - started:.0f} s", flush=True)
    with db.transaction():
        cache.save_sync_success(db, utc_now(), studies, 0, 0, 0, True)
    counts = cache.counts(db)
    if counts != {"patients": patients, "studies": studies, "series": counts["series"]}:
        raise RuntimeError(f"the fill wrote {counts}, not {patients} patients and {studies} studies")
    return time.perf_counter() - started, in_db, counts


# ---------------------------------------------------------------- kept databases


def fill_marker(args):
    """Return what identifies a fill: a kept database is reused only when this matches.

    The schema version is not part of it: a kept fill is upgraded in place by init_db, as a clinic's is.
    """
    return {"patients": args.patients, "studies": args.studies, "seed": SEED, "format": FILL_FORMAT}


def marker_matches(folder, kind, args):
    """Tell whether folder holds a finished fill of this kind with the same parameters."""
    try:
        kept = json.loads((folder / f"{kind}.filled.json").read_text())
    except (OSError, ValueError):
        return False
    wanted = fill_marker(args)
    return {key: kept.get(key) for key in wanted} == wanted


def write_marker(folder, kind, args):
    """Record that the fill of this kind finished."""
    (folder / f"{kind}.filled.json").write_text(json.dumps(fill_marker(args)))


def prepare_database(kind, url, folder, args):
    """Fill the database unless a kept fill with the same parameters is in folder."""
    if marker_matches(folder, kind, args):
        db = connect(url)
        started = time.perf_counter()
        before, after = init_db(db)
        db.commit()
        if before != after:
            print(f"{kind}: upgraded the kept fill from schema version {before} to {after} in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
        counts = cache.counts(db)
        db.rollback()
        print(f"{kind}: reusing the kept fill ({counts['patients']:,} patients, {counts['studies']:,} studies, "
              f"{counts['series']:,} series)", flush=True)
        return
    (folder / f"{kind}.filled.json").unlink(missing_ok=True)
    print(f"{kind}: filling {args.patients:,} patients, {args.studies:,} studies...", flush=True)
    seconds, in_db, counts = fill(url, args.patients, args.studies)
    print(f"{kind}: fill took {seconds:.0f} s ({in_db:.0f} s writing; {counts['patients']:,} patients, "
          f"{counts['studies']:,} studies, {counts['series']:,} series, "
          f"{counts['studies'] / in_db:,.0f} studies/s)", flush=True)
    write_marker(folder, kind, args)


def warm_buffer_pool(url):
    """Read the cache tables once, as the buffer pool of a server that has been running for a while holds them."""
    db = connect(url)
    started = time.perf_counter()
    for table in ("cached_patients", "cached_studies", "cached_patient_words", "cached_referrals"):
        db.query(f"SELECT COUNT(*) FROM {table} FORCE INDEX (PRIMARY)")
    db.rollback()
    print(f"MariaDB: read the cache tables into the buffer pool in {time.perf_counter() - started:.0f} s", flush=True)


# ---------------------------------------------------------------- the server and the client


def create_users(instance, url):
    """Create the radiologist and the referring doctor (kept databases have them already)."""
    for username, extra in ((RADIOLOGIST, ["--role", "radiologist"]),
                            (REFERRING, ["--role", "referring_doctor", "--dicom-name", HOUSE])):
        result = subprocess.run([*PACS_LITE, "create-user", username, *extra, "--password-stdin"], input=PASSWORD + "\n",
                                capture_output=True, text=True, env=environment(instance, url), timeout=120)
        if result.returncode != 0 and "exists already" not in result.stderr:
            raise RuntimeError(f"create-user {username} failed: {result.stderr.strip()}")


def log_in(server, username):
    """Return a requests.Session logged in as username through the login form.

    It logs in twice and keeps the second session, so the user has a previous
    login and the worklist runs its "new studies since your last login" query,
    as it does for anyone but a first-time user.
    """
    for _ in range(2):
        http = requests.Session()
        page = http.get(server.url + "/auth/login", timeout=HTTP_TIMEOUT).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = http.post(server.url + "/auth/login", allow_redirects=False, timeout=HTTP_TIMEOUT,
                             data={"username": username, "password": PASSWORD, "csrf_token": token, "next": ""})
        if response.status_code != 302 or "pacs_lite_session" not in http.cookies:
            raise RuntimeError(f"login as {username} failed: {response.status_code} {response.text[:300]}")
    return http


# ---------------------------------------------------------------- the query shapes


def shapes(url):
    """Return [(label, role, params)]; the narrow and PatientID searches use values the fill holds."""
    db = connect(url)
    # A PatientID prefix: the first 4 digits of one patient's id (about a dozen patients share them).
    patient_id = db.query_value("SELECT patient_id FROM cached_patients ORDER BY orthanc_id LIMIT 1")
    db.rollback()
    month = {"date_from": "2024-03-01", "date_to": "2024-03-31", "modality": "CT"}
    return [
        ("floor: /auth/check_session", "radiologist", None),
        (FLOOR_VIA_REQUESTS, "radiologist", None),
        ("page 1", "radiologist", {}),
        ("deep page (1000 x 50)", "radiologist", {"page": "1000", "per_page": "50"}),
        ("deep page, Next from 999", "radiologist", {"page": "1000", "per_page": "50", "cursor": FROM_PAGE_BEFORE}),
        ("search 's' (broad)", "radiologist", {"search": "s"}),
        ("search 'muller jurg' (narrow)", "radiologist", {"search": "muller jurg"}),
        ("search 'jurg' (mid-size)", "radiologist", {"search": "jurg"}),
        (f"PatientID prefix '{patient_id[:4]}'", "radiologist", {"search": patient_id[:4]}),
        ("2024-03 + modality CT", "radiologist", month),
        ("2024, the whole year", "radiologist", {"date_from": "2024-01-01", "date_to": "2024-12-31"}),
        ("2018-2022, whole years", "radiologist", {"date_from": "2018-01-01", "date_to": "2022-12-31"}),
        ("2023-07 to 2024-06, whole months", "radiologist", {"date_from": "2023-07-01", "date_to": "2024-06-30"}),
        ("search 's' + 2024", "radiologist", {"search": "s", "date_from": "2024-01-01", "date_to": "2024-12-31"}),
        ("search 'ma' + 2024", "radiologist", {"search": "ma", "date_from": "2024-01-01", "date_to": "2024-12-31"}),
        ("search 's' + modality CT", "radiologist", {"search": "s", "modality": "CT"}),
        ("modality CT, all dates", "radiologist", {"modality": "CT"}),
        ("last 30 days (to the newest)", "radiologist",
         {"date_from": (LAST_DAY - datetime.timedelta(days=29)).isoformat(), "date_to": LAST_DAY.isoformat()}),
        ("since 2024-01-01", "radiologist", {"date_from": "2024-01-01"}),
        ("sort by name, page 1", "radiologist", {"sort": "name"}),
        ("referring: page 1", "referring", {}),
        ("referring: search 's'", "referring", {"search": "s"}),
        ("referring: 2024", "referring", {"date_from": "2024-01-01", "date_to": "2024-12-31"}),
    ]


@dataclass
class Result:
    """The timings of one shape."""

    label: str
    role: str
    params: dict | None  # None: the floor (/auth/check_session)
    total: int
    times: list

    @property
    def p50(self):
        """The median."""
        return statistics.median(self.times)

    @property
    def p99(self):
        """The nearest-rank 99th percentile (with fewer than 100 requests, the slowest)."""
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]

    @property
    def meets_target(self):
        """Tell whether the shape meets p50 <= 5 ms and p99 <= 20 ms."""
        return self.p50 <= TARGET_P50 and self.p99 <= TARGET_P99


class KeepAliveClient:
    """GET requests over one keep-alive http.client connection, with a logged-in session's cookie.

    The timed requests go through it, so that the figures are the server's:
    the requests library spends about 1 ms of its own on each call here (the
    "floor via requests" line shows it side by side).
    """

    def __init__(self, server, session):
        parts = urllib.parse.urlsplit(server.url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=HTTP_TIMEOUT)
        self.cookie = "; ".join(f"{cookie.name}={cookie.value}" for cookie in session.cookies)

    def get(self, url, params):
        """Send one GET (parameters that are None left out, as requests does); return (status, parsed JSON body)."""
        path = urllib.parse.urlsplit(url).path
        query = urllib.parse.urlencode({key: value for key, value in params.items() if value is not None})
        self.connection.request("GET", f"{path}?{query}", headers={"Cookie": self.cookie})
        response = self.connection.getresponse()
        return response.status, json.loads(response.read())

    def close(self):
        """Close the connection."""
        self.connection.close()


class RequestsClient:
    """The same GET through a requests.Session, for the floor as most Python clients see it."""

    def __init__(self, session):
        self.session = session

    def get(self, url, params):
        """Send one GET; return (status, parsed JSON body)."""
        response = self.session.get(url, params=params, timeout=HTTP_TIMEOUT)
        return response.status_code, response.json()


def prepare(client, server, params):
    """Return (url, params) of one shape's requests, after its warm-up requests. params None is the floor: a
    logged-in request that reads only the session. A deep page "Next from the page before" is sent with the
    cursor that page gave, as the worklist pages on."""
    if params is None:
        url, params = server.url + "/auth/check_session", {}
    else:
        url = server.url + "/api/patient_list_api"
    if params.get("cursor") == FROM_PAGE_BEFORE:
        _, before = client.get(url, {**params, "cursor": "", "page": str(int(params["page"]) - 1)})
        params = {**params, "cursor": before["nextCursor"]}
    timed(client, url, params, WARM_UP)
    return url, params


def timed(client, url, params, count):
    """Time count sequential requests of one shape; return (total, [ms]). Each answer must be 200, successful and
    of the same total."""
    total, times = None, []
    for _ in range(count):
        started = time.perf_counter()
        status, body = client.get(url, params)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"{params} answered {status}: {str(body)[:300]}")
        answered = body.get("success") or body.get("authenticated")
        if not answered or (total is not None and body.get("total", 0) != total):
            raise RuntimeError(f"{params} answered {str(body)[:300]}")
        total = body.get("total", 0)
    return total, times


def run_shapes(kind, server, url, count, budget, rounds):
    """Log both users in and measure every shape; return [Result].

    The count requests of each shape are sent in rounds, every shape in turn
    in each round, so that a slow spell of the shared machine falls on every
    shape alike. A shape that has spent budget seconds and has MIN_REQUESTS
    timings sits out the rounds left, so a pathological one cannot hold the
    run for an hour.
    """
    sessions = {"radiologist": log_in(server, RADIOLOGIST), "referring": log_in(server, REFERRING)}
    clients = {role: KeepAliveClient(server, session) for role, session in sessions.items()}
    results = []
    try:
        for label, role, params in shapes(url):
            client = RequestsClient(sessions[role]) if label == FLOOR_VIA_REQUESTS else clients[role]
            shape_url, sent = prepare(client, server, params)
            results.append((Result(label, role, None if params is None else sent, None, []), client, shape_url))
        spent = {}
        for number in range(rounds):
            started_round = time.perf_counter()
            share = count // rounds + (number < count % rounds)
            for result, client, shape_url in results if share else []:
                if len(result.times) >= MIN_REQUESTS and budget and spent.get(result.label, 0) > budget:
                    continue
                started = time.monotonic()
                total, times = timed(client, shape_url, result.params or {}, share)
                spent[result.label] = spent.get(result.label, 0) + time.monotonic() - started
                if result.total is not None and total != result.total:
                    raise RuntimeError(f"{result.params} answered a total of {total}, and {result.total} before")
                result.total = total
                result.times += times
            print(f"  {kind}: round {number + 1} of {rounds} ({time.perf_counter() - started_round:.0f} s)", flush=True)
    finally:
        for closing in [*clients.values(), *sessions.values()]:
            closing.close()
    for result, _, _ in results:
        shown_total = "" if result.params is None else f"total {result.total:,}, "
        print(f"  {kind}: {result.label}: {shown_total}p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms "
              f"over {len(result.times)} requests", flush=True)
    return [result for result, _, _ in results]


def print_table(kind, results, args):
    """Print one database's table."""
    print(f"\n{kind}: {args.patients:,} patients, {args.studies:,} studies; up to {args.requests} sequential "
          f"requests per shape (n) in {args.rounds} rounds, after {WARM_UP} warm-up; target p50 <= {TARGET_P50:g} ms, "
          f"p99 <= {TARGET_P99:g} ms")
    print(f"{'shape':34}{'total':>9}{'p50 ms':>9}{'p99 ms':>9}{'n':>5}  target")
    for r in results:
        shown_total = "" if r.params is None else f"{r.total:,}"
        print(f"{r.label:34}{shown_total:>9}{r.p50:>9.1f}{r.p99:>9.1f}{len(r.times):>5}  "
              f"{'ok' if r.meets_target else 'MISSED'}")


# ---------------------------------------------------------------- query plans of the shapes that miss


class Recorder:
    """A Database stand-in that runs queries on the real one and records them."""

    def __init__(self, db):
        self.db = db
        self.dialect = db.dialect
        self.statements = []

    def query(self, sql, params=()):
        """Record and run a query."""
        self.statements.append((sql, list(params)))
        return self.db.query(sql, params)

    def query_one(self, sql, params=()):
        """Record and run a query for one row."""
        self.statements.append((sql, list(params)))
        return self.db.query_one(sql, params)

    def query_value(self, sql, params=()):
        """Record and run a query for one value."""
        self.statements.append((sql, list(params)))
        return self.db.query_value(sql, params)


def plan_lines(db, sql, params):
    """Return the plan of a statement as lines: EXPLAIN QUERY PLAN (SQLite) or EXPLAIN (MariaDB)."""
    if db.dialect == "sqlite":
        rows = db.query("EXPLAIN QUERY PLAN " + sql, params)
        depth = {0: -1}
        lines = []
        for row in rows:
            depth[row["id"]] = depth.get(row["parent"], -1) + 1
            lines.append("  " * depth[row["id"]] + row["detail"])
        return lines
    rows = db.query("EXPLAIN " + sql, params)
    keys = ["id", "select_type", "table", "type", "key", "key_len", "ref", "rows", "Extra"]
    return [" | ".join(str(row.get(k)) for k in keys) for row in rows]


def explain_misses(kind, url, results):
    """Print, for each shape that missed the target, its statements, their time in-process and plans."""
    db = connect(url)
    misses = [r for r in results if r.params is not None and not r.meets_target]
    if not misses:
        return
    referring_id = db.query_value("SELECT id FROM users WHERE username = ?", (REFERRING,))
    print(f"\n{kind}: query plans of the shapes that missed the target")
    for miss in misses:
        label, role, params = miss.label, miss.role, miss.params
        query = worklist_query(params, 50)
        now = utc_now()
        scope = (Scope(user_id=referring_id, referring_key=person_name_key(HOUSE), now=now) if role == "referring"
                 else Scope(user_id=0, referring_key=None, now=now))
        recorder = Recorder(db)
        worklist.list_patients(recorder, query, scope, db.query_one("SELECT * FROM sync_state WHERE id = 1"))
        print(f"\n=== {label} ({role}, {params})")
        for sql, statement_params in recorder.statements:
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                db.query(sql, statement_params)
                runs.append((time.perf_counter() - t) * 1000)
            shown = re.sub(r"\?(?:, \?){3,}", lambda m: f"<{m.group(0).count('?')} ids>", " ".join(sql.split()))
            print(f"\n-- {statistics.median(runs):.1f} ms in-process (median of 3): {shown}")
            shown_params = [p for p in statement_params if not (isinstance(p, str) and ORTHANC_ID.fullmatch(p))]
            print(f"-- params (ids left out): {shown_params}")
            for line in plan_lines(db, sql, statement_params):
                print("   " + line)
    db.rollback()


# ---------------------------------------------------------------- main


def main(argv=None):
    """Fill both databases, measure every shape on each, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000, help="patients in the cache (default 100000)")
    parser.add_argument("--studies", type=int, default=300_000, help="studies in the cache (default 300000)")
    parser.add_argument("--requests", type=int, default=200, help="timed requests per shape (default 200)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="send each shape's requests in this many rounds, every shape in turn (default 10)")
    parser.add_argument("--shape-budget", type=float, default=60, metavar="SECONDS",
                        help=f"stop a shape after this many seconds (with at least {MIN_REQUESTS} requests); "
                             "0: never (default 60)")
    parser.add_argument("--keep", metavar="DIR", type=Path,
                        help="keep the filled SQLite file and MariaDB datadir in DIR and reuse them next time")
    parser.add_argument("--only", choices=["sqlite", "mariadb"], help="measure one database only")
    parser.add_argument("--mariadb-buffer-pool", default="256M", metavar="SIZE",
                        help="InnoDB buffer pool of the private MariaDB (default 256M, the tests' setting)")
    parser.add_argument("--no-explain", action="store_true", help="do not print the plans of the shapes that miss")
    args = parser.parse_args(argv)
    if args.studies < args.patients or args.patients < 1:
        parser.error("--studies must be at least --patients, and --patients at least 1")
    # Ctrl-C and SIGTERM unwind through the `with` below, which stops the servers and MariaDB.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tables = {}
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = args.keep.resolve()
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pacs_worklist_bench_")))
        stack.callback(forget_thread_connections)
        kinds = [k for k in ("SQLite", "MariaDB") if args.only in (None, k.lower())]
        for kind in kinds:
            if kind == "SQLite":
                url = f"sqlite:///{folder}/worklist.sqlite"
            else:
                mariadb_folder = folder / "mariadb"
                if not marker_matches(folder, kind, args) and mariadb_folder.exists():
                    shutil.rmtree(mariadb_folder)  # an unfinished or different fill: start clean
                mariadb_folder.mkdir(exist_ok=True)
                print("starting MariaDB...", flush=True)
                mariadb = stack.enter_context(MariaDBServer(mariadb_folder, args.mariadb_buffer_pool))
                if marker_matches(folder, kind, args):
                    url = mariadb.url(MARIADB_NAME)
                else:
                    url = mariadb.create_database(MARIADB_NAME)
            if kind == "SQLite" and not marker_matches(folder, kind, args):
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{folder}/worklist.sqlite{suffix}").unlink(missing_ok=True)
            prepare_database(kind, url, folder, args)
            if kind == "MariaDB":
                warm_buffer_pool(url)
            forget_thread_connections()
            instance = folder / f"instance-{kind.lower()}"
            create_users(instance, url)
            server = start_server(environment(instance, url), folder / f"serve-{kind.lower()}.log", SERVE_THREADS)
            stack.callback(server.stop)
            print(f"{kind}: measuring {args.requests} requests per shape on {server.url}", flush=True)
            tables[kind] = run_shapes(kind, server, url, args.requests, args.shape_budget, args.rounds)
            server.stop()
            print_table(kind, tables[kind], args)
            if not args.no_explain:
                explain_misses(kind, url, tables[kind])
            forget_thread_connections()
    print()
    for kind, results in tables.items():
        print_table(kind, results, args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit("interrupted; the servers and MariaDB were stopped")
