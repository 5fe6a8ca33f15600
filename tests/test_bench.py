"""The worklist benchmark still runs, and its totals through the real server agree with the cache's rows."""

import re
import subprocess
import sys
from pathlib import Path

from pacs_lite.db import connect

BENCH = Path(__file__).resolve().parent.parent / "bench" / "worklist_bench.py"


def totals_of_last_table(output):
    """Return {shape: total} from the last table the bench printed (shapes without a total left out)."""
    table = output.rsplit("SQLite: ", 1)[1]
    found = {}
    for line in table.splitlines():
        row = re.match(r"(.+?)\s{2,}([\d,]+)\s+[\d.]+\s+[\d.]+\s+\d+\s+(ok|MISSED)$", line)
        if row:
            found[row.group(1).strip()] = int(row.group(2).replace(",", ""))
    return found


def test_the_worklist_bench_runs_and_its_totals_match_the_cache(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCH), "--patients", "300", "--studies", "1200", "--requests", "3", "--only", "sqlite",
         "--no-explain", "--keep", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    totals = totals_of_last_table(result.stdout)
    db = connect(f"sqlite:///{tmp_path}/worklist.sqlite")

    def patients_with_studies(condition):
        return db.query_value(f"SELECT COUNT(DISTINCT patient_orthanc_id) FROM cached_studies WHERE {condition}")

    ct = "(',' || modalities || ',') LIKE '%,CT,%'"
    assert totals["page 1"] == db.query_value("SELECT COUNT(*) FROM cached_patients") == 300
    assert totals["modality CT, all dates"] == patients_with_studies(ct) > 0
    assert totals["since 2024-01-01"] == patients_with_studies("study_date >= '2024-01-01'") > 0
    assert totals["last 30 days (to the newest)"] == patients_with_studies(
        "study_date BETWEEN '2025-12-02' AND '2025-12-31'")
    assert totals["2024-03 + modality CT"] == patients_with_studies(
        f"study_date BETWEEN '2024-03-01' AND '2024-03-31' AND {ct}")
    assert totals["2024, the whole year"] == patients_with_studies(
        "study_date BETWEEN '2024-01-01' AND '2024-12-31'") > 0
    assert totals["2018-2022, whole years"] == patients_with_studies(
        "study_date BETWEEN '2018-01-01' AND '2022-12-31'") > 0
    assert totals["2023-07 to 2024-06, whole months"] == patients_with_studies(
        "study_date BETWEEN '2023-07-01' AND '2024-06-30'") > 0
    assert totals["referring: 2024"] == db.query_value(
        "SELECT COUNT(DISTINCT patient_orthanc_id) FROM cached_studies WHERE referring_physician_key = 'HOUSE GREGORY' "
        "AND study_date BETWEEN '2024-01-01' AND '2024-12-31'") > 0
    names = {row["orthanc_id"]: row["name_key"].split() for row in db.query("SELECT * FROM cached_patients")}
    assert totals["search 'jurg' (mid-size)"] == sum(
        any(w.startswith("JURG") for w in words) for words in names.values()) > 0
    # PatientIDs are digits: "s" finds names only.
    in_2024 = {row["patient_orthanc_id"] for row in db.query(
        "SELECT patient_orthanc_id FROM cached_studies WHERE study_date BETWEEN '2024-01-01' AND '2024-12-31'")}
    assert totals["search 's' + 2024"] == sum(
        any(w.startswith("S") for w in names[patient]) for patient in in_2024) > 0
    assert totals["search 'ma' + 2024"] == sum(
        any(w.startswith("MA") for w in names[patient]) for patient in in_2024) > 0
    with_ct = {row["patient_orthanc_id"] for row in db.query(f"SELECT patient_orthanc_id FROM cached_studies WHERE {ct}")}
    assert totals["search 's' + modality CT"] == sum(
        any(w.startswith("S") for w in names[patient]) for patient in with_ct) > 0
