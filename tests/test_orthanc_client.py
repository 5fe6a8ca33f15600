"""Test the Orthanc client against a real, private Orthanc.

One Orthanc process serves the whole module (`OrthancServer`); studies are
real DICOM files made with pydicom from its bundled CT_small.dcm, given new
UIDs. Faults are real: the server is stopped, or stalled with SIGSTOP, and a
small reverse proxy in front of it (under /orthanc/, like nginx or IIS would
put it) answers 502 to exercise the retry rules.
"""

import copy
import functools
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy
import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from pacs_lite.orthanc import (
    OrthancAuthError,
    OrthancClient,
    OrthancError,
    OrthancNotFound,
    OrthancUnreachable,
    is_orthanc_id,
)
from pacs_lite.orthanc_server import OrthancServer, free_loopback_port

UNKNOWN_ID = "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd"
BAD_IDS = [
    "",
    "abc",
    "../system",
    "0123ABCD-0123abcd-0123abcd-0123abcd-0123abcd",
    "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd\n",
    "0123abcd-0123abcd-0123abcd-0123abcd",
    "0123abcd-0123abcd-0123abcd-0123abcd-0123abcd-0123abcd",
    "0123abcd_0123abcd_0123abcd_0123abcd_0123abcd",
    "0123abcg-0123abcd-0123abcd-0123abcd-0123abcd",
    None,
    12345,
]


# --- DICOM test data -------------------------------------------------------


@functools.cache
def ct_template():
    """Return pydicom's bundled CT_small.dcm, read once."""
    return pydicom.dcmread(get_testdata_file("CT_small.dcm"))


def ct_file(study_uid, series_uid, series_number, instance_number,
            patient_id="PL-0001", patient_name="Test^Orthanc"):
    """Return the bytes of a CT instance copied from CT_small.dcm with new UIDs."""
    ds = copy.deepcopy(ct_template())
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def multiframe_file(frames=3):
    """Return the bytes of a small multi-frame secondary capture instance."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7.2"  # Multi-frame Grayscale Byte SC
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID = "PL-0002"
    ds.PatientName = "Frames^Many"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.InstanceNumber = 1
    ds.Rows = ds.Columns = 4
    ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = numpy.zeros((frames, 4, 4), numpy.uint8).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --- fixtures --------------------------------------------------------------


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """Run one private Orthanc for this module."""
    with OrthancServer(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="module")
def orthanc_client(orthanc):
    """Return a client with the module server's credentials."""
    with OrthancClient(orthanc.url, orthanc.username, orthanc.password) as module_client:
        yield module_client


@pytest.fixture(scope="module")
def study(orthanc_client):
    """Upload one study (two series, three CT instances) and describe it."""
    study_uid = generate_uid()
    series_uids = [generate_uid(), generate_uid()]
    files = {}
    answers = []
    for series_number, instance_number in [(1, 1), (1, 2), (2, 1)]:
        data = ct_file(study_uid, series_uids[series_number - 1], series_number,
                       instance_number, patient_name="Müller^Jürgen")
        answer = orthanc_client.upload(data)
        files[answer["ID"]] = data
        answers.append(answer)
    return {
        "id": answers[0]["ParentStudy"],
        "uid": study_uid,
        "series_uids": series_uids,
        "files": files,
        "answers": answers,
    }


@pytest.fixture
def dead_url():
    """Return a loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_loopback_port()}/"


class ProxyHandler(BaseHTTPRequestHandler):
    """Forward /orthanc/* to the real Orthanc, or fail as the proxy is told."""

    def do_GET(self):
        """Forward a GET."""
        self.forward()

    do_POST = do_DELETE = do_GET

    def forward(self):
        """Answer 502 while failures are left, else relay the call to Orthanc."""
        proxy = self.server
        proxy.calls.append((self.command, self.path))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if proxy.failures_left > 0:
            proxy.failures_left -= 1
            self.answer(502, {"Content-Type": "text/html"}, b"<h1>502 Bad Gateway</h1>")
            return
        if not self.path.startswith("/orthanc/"):
            self.answer(404, {}, b"")
            return
        relayed = ("authorization", "content-type", "accept-encoding")
        headers = {k: v for k, v in self.headers.items() if k.lower() in relayed}
        target = proxy.backend_url + self.path[len("/orthanc/"):]
        with requests.request(self.command, target, headers=headers, data=body,
                              stream=True, timeout=10) as answer:
            payload = answer.raw.read(decode_content=False)
            kept = {k: v for k, v in answer.headers.items()
                    if k.lower() in ("content-type", "content-encoding")}
            status = answer.status_code
        self.answer(status, kept, payload)

    def answer(self, status, headers, payload):
        """Send a whole answer."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        """Keep the test output quiet."""


@pytest.fixture
def proxy(orthanc):
    """Serve the real Orthanc under http://127.0.0.1:port/orthanc/."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    server.daemon_threads = True
    server.backend_url = orthanc.url
    server.failures_left = 0
    server.calls = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/orthanc"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- ids and settings ------------------------------------------------------


def test_is_orthanc_id_accepts_only_five_lowercase_hex_groups(study):
    """Accept Orthanc's real ids and nothing that merely looks close."""
    assert is_orthanc_id(study["id"])
    assert is_orthanc_id(UNKNOWN_ID)
    for bad in BAD_IDS:
        assert not is_orthanc_id(bad), bad


@pytest.mark.parametrize("method", ["study", "study_series", "study_instances",
                                    "open_instance_file", "delete_study"])
def test_bad_ids_raise_value_error_before_any_request(dead_url, method):
    """Refuse a malformed id before calling (else it would be OrthancUnreachable)."""
    with OrthancClient(dead_url, retries=0) as probe:
        for bad in BAD_IDS:
            with pytest.raises(ValueError):
                getattr(probe, method)(bad)


def test_bad_paging_arguments_raise_value_error(dead_url):
    """Refuse negative or non-integer since/limit before calling."""
    with OrthancClient(dead_url, retries=0) as probe:
        for call in (lambda: probe.changes(-1, 10),
                     lambda: probe.changes(0, "10"),
                     lambda: probe.studies_page(0, -5),
                     lambda: probe.series_page(True, 5)):
            with pytest.raises(ValueError):
                call()


@pytest.mark.parametrize("url", ["", "localhost:8042", "ftp://host/", "http://", None])
def test_malformed_orthanc_url_says_how_to_fix_it(url):
    """Reject an ORTHANC_URL that is not http(s)://host..."""
    with pytest.raises(ValueError, match="ORTHANC_URL"):
        OrthancClient(url)


# --- reading ---------------------------------------------------------------


def test_system_answers_with_version(orthanc_client):
    """Return /system as a dict naming Orthanc's version."""
    system = orthanc_client.system()
    assert system["Version"].startswith("1.")
    assert system["Name"] == "pacs_lite_test"


def test_upload_answers_and_study_is_listed(orthanc_client, study):
    """Store files, answer with their ids, and list the new study."""
    for answer in study["answers"]:
        assert answer["Status"] == "Success"
        assert is_orthanc_id(answer["ID"])
        assert answer["ParentStudy"] == study["id"]
    assert study["id"] in orthanc_client.study_ids()
    again = orthanc_client.upload(next(iter(study["files"].values())))
    assert again["Status"] == "AlreadyStored"


def test_upload_of_a_non_dicom_file_carries_orthancs_message(orthanc_client):
    """Turn Orthanc's error JSON into a readable OrthancError."""
    with pytest.raises(OrthancError) as caught:
        orthanc_client.upload(b"this is not DICOM")
    error = caught.value
    assert type(error) is OrthancError
    assert error.status == 400
    assert error.details["HttpStatus"] == 400
    assert "Bad file format" in str(error)
    assert "/instances" in str(error)


def test_changes_feed_advances_with_an_upload(orthanc_client):
    """Report the new study in the feed after the last seq seen."""
    before = orthanc_client.last_change_seq()
    answer = orthanc_client.upload(ct_file(generate_uid(), generate_uid(), 1, 1,
                                   patient_id="PL-0003"))
    after = orthanc_client.last_change_seq()
    assert after > before
    page = orthanc_client.changes(since=before, limit=100)
    assert page["Done"] is True
    assert page["Last"] == after
    seen = {(change["ChangeType"], change["ID"]) for change in page["Changes"]}
    assert ("NewInstance", answer["ID"]) in seen
    assert ("NewStudy", answer["ParentStudy"]) in seen
    assert all(change["Seq"] > before for change in page["Changes"])


def test_changes_pages_respect_limit(orthanc_client, study):
    """Walk the feed from the start in pages of two."""
    first = orthanc_client.changes(since=0, limit=2)
    assert len(first["Changes"]) == 2
    assert first["Done"] is False
    second = orthanc_client.changes(since=first["Last"], limit=2)
    assert second["Changes"][0]["Seq"] > first["Changes"][-1]["Seq"]


def test_studies_page_walks_every_study(orthanc_client, study):
    """Collect all studies page by page, each expanded with its tags."""
    walked = {}
    since = 0
    while True:
        page = orthanc_client.studies_page(since=since, limit=1)
        if not page:
            break
        assert len(page) == 1
        walked.update((item["ID"], item) for item in page)
        since += len(page)
    assert set(walked) == set(orthanc_client.study_ids())
    ours = walked[study["id"]]
    assert ours["MainDicomTags"]["StudyInstanceUID"] == study["uid"]
    assert ours["PatientMainDicomTags"]["PatientName"] == "Müller^Jürgen"
    assert len(ours["Series"]) == 2


def test_series_page_returns_expanded_series(orthanc_client, study):
    """List our two series, expanded, with their parent study."""
    series = orthanc_client.series_page(since=0, limit=1000)
    ours = [item for item in series if item["ParentStudy"] == study["id"]]
    uids = {item["MainDicomTags"]["SeriesInstanceUID"] for item in ours}
    assert uids == set(study["series_uids"])
    assert all(item["MainDicomTags"]["Modality"] == "CT" for item in ours)


def test_study_returns_tags_patient_and_series(orthanc_client, study):
    """Return one study with its DICOM tags, patient tags and series ids."""
    found = orthanc_client.study(study["id"])
    assert found["ID"] == study["id"]
    assert found["MainDicomTags"]["StudyInstanceUID"] == study["uid"]
    assert found["PatientMainDicomTags"]["PatientID"] == "PL-0001"
    assert found["PatientMainDicomTags"]["PatientName"] == "Müller^Jürgen"
    assert is_orthanc_id(found["ParentPatient"])
    assert len(found["Series"]) == 2


def test_study_series_returns_both_series_expanded(orthanc_client, study):
    """Return the study's series with SeriesNumber and their instance ids."""
    series = orthanc_client.study_series(study["id"])
    numbers = sorted(item["MainDicomTags"]["SeriesNumber"] for item in series)
    assert numbers == ["1", "2"]
    assert sum(len(item["Instances"]) for item in series) == 3


def test_study_instances_returns_what_the_viewer_needs(orthanc_client, study):
    """Return every instance in one call with number, position and parent series."""
    instances = orthanc_client.study_instances(study["id"])
    assert {item["ID"] for item in instances} == set(study["files"])
    series_ids = set(orthanc_client.study(study["id"])["Series"])
    for item in instances:
        assert item["Type"] == "Instance"
        assert item["ParentSeries"] in series_ids
        assert isinstance(item["IndexInSeries"], int)
        tags = item["MainDicomTags"]
        assert tags["InstanceNumber"] in ("1", "2")
        assert tags["SOPInstanceUID"]
        assert len(tags["ImagePositionPatient"].split("\\")) == 3
        assert "NumberOfFrames" not in tags  # single-frame CT has none


def test_study_instances_reports_number_of_frames(orthanc_client):
    """Include NumberOfFrames in the instance tags of a multi-frame image."""
    answer = orthanc_client.upload(multiframe_file(frames=3))
    try:
        [instance] = orthanc_client.study_instances(answer["ParentStudy"])
        assert instance["MainDicomTags"]["NumberOfFrames"] == "3"
    finally:
        orthanc_client.delete_study(answer["ParentStudy"])


def test_open_instance_file_streams_the_stored_bytes_unzipped(orthanc_client, study):
    """Stream each file byte for byte, without gzip."""
    for instance_id, data in study["files"].items():
        with orthanc_client.open_instance_file(instance_id) as response:
            assert response.headers.get("Content-Encoding", "identity") == "identity"
            assert response.headers["Content-Type"] == "application/dicom"
            received = b"".join(response.iter_content(chunk_size=8192))
        assert received == data


def test_orthanc_would_gzip_files_for_a_default_client(orthanc, study):
    """Show the trap the client avoids: a default requests call gets gzip."""
    instance_id = next(iter(study["files"]))
    with requests.Session() as session:
        session.auth = (orthanc.username, orthanc.password)
        with session.get(f"{orthanc.url}instances/{instance_id}/file",
                         stream=True, timeout=10) as response:
            assert response.headers.get("Content-Encoding") == "gzip"


# --- errors ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["study", "study_series", "study_instances",
                                    "open_instance_file", "delete_study"])
def test_unknown_id_raises_not_found(orthanc_client, method):
    """Raise OrthancNotFound for a well-formed id Orthanc does not have."""
    with pytest.raises(OrthancNotFound) as caught:
        getattr(orthanc_client, method)(UNKNOWN_ID)
    assert caught.value.status == 404
    assert UNKNOWN_ID in str(caught.value)


@pytest.mark.parametrize("username,password", [("pacs_test", "wrong"), (None, None)])
def test_wrong_credentials_raise_auth_error(orthanc, username, password):
    """Raise OrthancAuthError naming the settings to check."""
    with OrthancClient(orthanc.url, username, password) as probe:
        with pytest.raises(OrthancAuthError) as caught:
            probe.system()
    assert caught.value.status == 401
    assert "ORTHANC_USERNAME" in str(caught.value)
    assert "ORTHANC_PASSWORD" in str(caught.value)


def test_nothing_listening_raises_unreachable_quickly(dead_url):
    """Give up after the retries, in about a second, naming the URL."""
    secret_url = dead_url.replace("http://", "http://someone:s3cret@")
    with OrthancClient(secret_url, timeout=(1, 1), retries=2) as probe:
        started = time.monotonic()
        with pytest.raises(OrthancUnreachable) as caught:
            probe.system()
        elapsed = time.monotonic() - started
    assert elapsed < 3
    message = str(caught.value)
    assert dead_url in message
    assert "ORTHANC_URL" in message and "running" in message
    assert "s3cret" not in message


# --- a reverse proxy in front: path prefix and retries ---------------------


def test_path_prefix_of_the_base_url_is_kept(orthanc, proxy, study):
    """Keep /orthanc/ in every URL, with or without a trailing slash."""
    for base in (proxy.url, proxy.url + "/"):
        with OrthancClient(base, orthanc.username, orthanc.password) as probe:
            assert probe.system()["Version"]
            assert probe.study(study["id"])["ID"] == study["id"]
    assert proxy.calls
    assert all(path.startswith("/orthanc/") for _, path in proxy.calls)


def test_get_is_retried_on_bad_gateway(orthanc, proxy):
    """Retry a GET that a proxy failed with 502, and succeed."""
    proxy.failures_left = 2
    with OrthancClient(proxy.url, orthanc.username, orthanc.password,
                       retries=2) as probe:
        assert probe.system()["Version"]
    assert len(proxy.calls) == 3


def test_get_gives_up_after_its_retries(orthanc, proxy):
    """Raise OrthancUnreachable with the status once the retries are spent."""
    proxy.failures_left = 10
    with OrthancClient(proxy.url, orthanc.username, orthanc.password,
                       retries=2) as probe:
        with pytest.raises(OrthancUnreachable) as caught:
            probe.system()
    assert caught.value.status == 502
    assert len(proxy.calls) == 3


def test_upload_is_never_retried(orthanc, proxy, orthanc_client):
    """Send a POST once only, even when the proxy failed it."""
    proxy.failures_left = 1
    study_uid = generate_uid()
    with OrthancClient(proxy.url, orthanc.username, orthanc.password,
                       retries=2) as probe:
        with pytest.raises(OrthancUnreachable):
            probe.upload(ct_file(study_uid, generate_uid(), 1, 1))
    assert proxy.calls == [("POST", "/orthanc/instances")]
    stored = {item["MainDicomTags"]["StudyInstanceUID"]
              for item in orthanc_client.studies_page(0, 10000)}
    assert study_uid not in stored


# --- deleting, stopping and stalling the real server -----------------------


def test_delete_study_removes_it(orthanc_client):
    """Delete a study so that it is gone from the list and from lookups."""
    answer = orthanc_client.upload(ct_file(generate_uid(), generate_uid(), 1, 1,
                                   patient_id="PL-0004"))
    study_id = answer["ParentStudy"]
    assert study_id in orthanc_client.study_ids()
    orthanc_client.delete_study(study_id)
    assert study_id not in orthanc_client.study_ids()
    with pytest.raises(OrthancNotFound):
        orthanc_client.study(study_id)
    with pytest.raises(OrthancNotFound):
        orthanc_client.open_instance_file(answer["ID"])


def test_stopped_server_is_unreachable_then_back_with_its_data(orthanc, orthanc_client, study):
    """Fail fast while Orthanc is down; find the same data after a restart."""
    orthanc.stop(kill=True)  # as if Orthanc had crashed
    try:
        with OrthancClient(orthanc.url, orthanc.username, orthanc.password,
                           timeout=(1, 5), retries=2) as probe:
            started = time.monotonic()
            with pytest.raises(OrthancUnreachable) as caught:
                probe.study(study["id"])
            elapsed = time.monotonic() - started
        assert elapsed < 3
        assert orthanc.url in str(caught.value)
    finally:
        orthanc.start()
    # The long-lived orthanc_client's pooled connection died with the server.
    assert orthanc_client.study(study["id"])["MainDicomTags"]["StudyInstanceUID"] == study["uid"]


def test_stalled_server_is_unreachable_after_the_read_timeout(orthanc, orthanc_client):
    """Give up on a SIGSTOPped Orthanc after one read timeout, not three."""
    with OrthancClient(orthanc.url, orthanc.username, orthanc.password,
                       timeout=(1, 1.0), retries=2) as probe:
        orthanc.pause()
        try:
            started = time.monotonic()
            with pytest.raises(OrthancUnreachable) as caught:
                probe.system()
            elapsed = time.monotonic() - started
        finally:
            orthanc.resume()
    assert 0.9 <= elapsed < 2.5
    assert "did not answer within 1.0 s" in str(caught.value)
    assert orthanc_client.system()["Version"]
