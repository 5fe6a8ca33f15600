"""The one Orthanc client of pacs_lite.

Every call to Orthanc's REST API goes through `OrthancClient`; no other module
builds Orthanc URLs. The client keeps one `requests.Session` (HTTP basic auth,
pooled connections), puts a (connect, read) timeout on every call, retries
only idempotent GETs, and turns failures into a small exception hierarchy
whose messages tell an admin what to check:

    OrthancError            anything Orthanc refused, with Orthanc's own message
    ├── OrthancUnreachable  refused, timed out, or a proxy's 502/503/504
    ├── OrthancAuthError    401/403: check ORTHANC_USERNAME/ORTHANC_PASSWORD
    └── OrthancNotFound     404: the resource is not (or no longer) there

Ids are checked with `is_orthanc_id` before they go into a URL, so a request
parameter can never steer the client to another Orthanc path.
"""

import re
import threading
import time
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

ORTHANC_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}")
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_BACKOFF = 0.25


class OrthancError(Exception):
    """Orthanc answered with an error, or could not be asked at all."""

    def __init__(self, message, status=None, url=None, details=None):
        """Keep a human message plus the HTTP status, URL and Orthanc's error JSON."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        self.details = details or {}


class OrthancUnreachable(OrthancError):
    """Orthanc did not answer: not running, wrong URL, stalled, or behind a failing proxy."""


class OrthancAuthError(OrthancError):
    """Orthanc refused our credentials (HTTP 401 or 403)."""


class OrthancNotFound(OrthancError):
    """Orthanc has no such resource (HTTP 404)."""


def is_orthanc_id(value):
    """Tell whether value has Orthanc's id form: five 8-lowercase-hex groups."""
    return isinstance(value, str) and ORTHANC_ID.fullmatch(value) is not None


def check_orthanc_id(value, kind="resource"):
    """Return value if it is an Orthanc id, else raise ValueError."""
    if not is_orthanc_id(value):
        raise ValueError(f"not an Orthanc {kind} id: {value!r}")
    return value


def check_count(value, name):
    """Return value if it is a non-negative int, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def without_credentials(url):
    """Return url with any user:password@ removed, for messages and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def error_details(response):
    """Return Orthanc's error JSON from a response, or {} when there is none."""
    try:
        details = response.json()
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def describe_failure(response, details):
    """Return Orthanc's reason for a failed call in one line."""
    reason = f"HTTP {response.status_code} {response.reason or ''}".strip()
    message = details.get("Message") or details.get("OrthancError")
    if message:
        reason += f": {message}"
    if details.get("Details"):
        reason += f" ({details['Details']})"
    return reason


class OrthancClient:
    """Talk to one Orthanc server over its REST API."""

    def __init__(self, base_url, username=None, password=None,
                 timeout=(3.05, 30), retries=2):
        """Prepare a session for base_url, e.g. http://127.0.0.1:8042/ or http://host/orthanc/."""
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"ORTHANC_URL must look like http://127.0.0.1:8042/ (got {base_url!r})"
            )
        # A trailing slash makes urljoin keep a path prefix such as /orthanc/.
        self.base_url = base_url.rstrip("/") + "/"
        self.display_url = without_credentials(self.base_url)
        self.timeout = timeout
        self.retries = retries
        self.session = requests.Session()
        # Orthanc sits on the clinic's own network: no proxy or .netrc from the environment, and no
        # per-request lookup of them (about 1 ms of every image fetch).
        self.session.trust_env = False
        if username:
            self.session.auth = (username, password or "")

    def __enter__(self):
        """Use the client in a `with` block."""
        return self

    def __exit__(self, *exc_info):
        """Close the session at the end of a `with` block."""
        self.close()

    def __repr__(self):
        """Show which Orthanc this client talks to (never the password)."""
        return f"OrthancClient({self.display_url!r})"

    def close(self):
        """Close the pooled connections."""
        self.session.close()

    def _url(self, path):
        """Join a relative API path onto the base URL, keeping its prefix."""
        return urljoin(self.base_url, path.lstrip("/"))

    def _request(self, method, path, *, stream=False, **kwargs):
        """Send one call, retrying a GET that could not connect; return the Response."""
        url = self._url(path)
        attempts = 1 + (self.retries if method == "GET" else 0)
        for attempt in range(attempts):
            last_try = attempt == attempts - 1
            try:
                response = self.session.request(
                    method, url, timeout=self.timeout, stream=stream, **kwargs
                )
            except requests.ConnectionError as error:
                # Includes ConnectTimeout. A read timeout is not retried: the
                # server took the call, and waiting three times as long helps no one.
                if last_try:
                    raise self._unreachable(url, error) from error
            except requests.Timeout as error:
                raise self._unreachable(url, error) from error
            except requests.RequestException as error:
                raise OrthancError(
                    f"Calling Orthanc at {without_credentials(url)} failed: {error}",
                    url=without_credentials(url),
                ) from error
            else:
                if response.status_code not in RETRY_STATUSES or last_try:
                    break
                response.close()
            time.sleep(RETRY_BACKOFF * 2 ** attempt)
        if response.status_code >= 400:
            raise self._failure(response, method)
        return response

    def _unreachable(self, url, error):
        """Build the exception for a call that got no answer at all."""
        if isinstance(error, requests.ReadTimeout):
            read_timeout = self.timeout
            if isinstance(read_timeout, (tuple, list)):
                read_timeout = read_timeout[1]
            what = f"did not answer within {read_timeout} s (stalled or overloaded?)"
        elif isinstance(error, requests.ConnectTimeout):
            what = "could not be connected to in time"
        else:
            what = "refused the connection or could not be reached"
        return OrthancUnreachable(
            f"Orthanc at {self.display_url} {what}; check that Orthanc is running "
            f"and that ORTHANC_URL is right.",
            url=without_credentials(url),
        )

    def _failure(self, response, method):
        """Build the exception for an HTTP error answer, and close the response."""
        details = error_details(response)
        response.close()
        status = response.status_code
        url = without_credentials(response.url)
        reason = describe_failure(response, details)
        where = f"{method} {url}"
        if status == 401:
            return OrthancAuthError(
                f"Orthanc at {self.display_url} refused our credentials ({reason}); "
                f"check ORTHANC_USERNAME and ORTHANC_PASSWORD.",
                status=status, url=url, details=details,
            )
        if status == 403:
            return OrthancAuthError(
                f"Orthanc at {self.display_url} forbade {where} ({reason}); check "
                f"ORTHANC_USERNAME and ORTHANC_PASSWORD, and that Orthanc lets this "
                f"host in (RemoteAccessAllowed).",
                status=status, url=url, details=details,
            )
        if status == 404:
            return OrthancNotFound(f"Not found in Orthanc: {where} ({reason}).",
                                   status=status, url=url, details=details)
        if status in RETRY_STATUSES:
            return OrthancUnreachable(
                f"Orthanc at {self.display_url} is unavailable ({reason}); check that "
                f"Orthanc is running and that ORTHANC_URL is right.",
                status=status, url=url, details=details,
            )
        return OrthancError(f"Orthanc refused {where}: {reason}.",
                            status=status, url=url, details=details)

    def _get_json(self, path, params=None):
        """GET a path and return its parsed JSON answer."""
        response = self._request("GET", path, params=params)
        return self._parse_json(response)

    def _parse_json(self, response):
        """Return the JSON body of an answer, or raise OrthancError if it is not JSON."""
        try:
            return response.json()
        except ValueError as error:
            raise OrthancError(
                f"Orthanc at {self.display_url} sent an answer that is not JSON "
                f"for {without_credentials(response.url)}; is ORTHANC_URL an Orthanc server?",
                status=response.status_code, url=without_credentials(response.url),
            ) from error

    # --- server -----------------------------------------------------------

    def system(self):
        """Return Orthanc's /system dict (Version, ApiVersion, Name...); a health check."""
        return self._get_json("system")

    # --- changes feed -----------------------------------------------------

    def changes(self, since=0, limit=100):
        """Return one page of the changes feed: {"Changes": [...], "Done", "Last"}."""
        params = {"since": check_count(since, "since"), "limit": check_count(limit, "limit")}
        return self._get_json("changes", params)

    def last_change_seq(self):
        """Return the sequence number of the newest change (0 on an empty Orthanc)."""
        return int(self._get_json("changes", {"last": ""})["Last"])

    # --- studies and series -----------------------------------------------

    def study_ids(self):
        """Return the ids of all studies in Orthanc."""
        return self._get_json("studies")

    def studies_page(self, since=0, limit=100):
        """Return up to limit expanded studies, skipping the first since ones."""
        return self._get_json("studies", self._page_params(since, limit))

    def series_page(self, since=0, limit=100):
        """Return up to limit expanded series, skipping the first since ones."""
        return self._get_json("series", self._page_params(since, limit))

    @staticmethod
    def _page_params(since, limit):
        """Return the query of an expanded list page."""
        # Orthanc 1.10 expands on the mere presence of "expand" (even expand=false).
        return {"expand": "", "since": check_count(since, "since"),
                "limit": check_count(limit, "limit")}

    def study(self, study_id):
        """Return one study: MainDicomTags, PatientMainDicomTags, Series ids, ParentPatient."""
        return self._get_json(f"studies/{check_orthanc_id(study_id, 'study')}")

    def study_series(self, study_id):
        """Return the expanded series of one study."""
        return self._get_json(f"studies/{check_orthanc_id(study_id, 'study')}/series")

    def series(self, series_id):
        """Return one series: MainDicomTags, Instances ids, ParentStudy."""
        return self._get_json(f"series/{check_orthanc_id(series_id, 'series')}")

    def instance_study(self, instance_id):
        """Return the study an instance belongs to (one call)."""
        return self._get_json(f"instances/{check_orthanc_id(instance_id, 'instance')}/study")

    def study_instances(self, study_id):
        """Return the expanded instances of one study in one call."""
        return self._get_json(f"studies/{check_orthanc_id(study_id, 'study')}/instances")

    # --- instances --------------------------------------------------------

    def open_instance_file(self, instance_id):
        """Return the streaming Response of an instance's DICOM file; caller closes it.

        Iterate `response.iter_content(chunk_size)` and close the response (or
        use it in a `with` block). Errors while iterating come from requests.
        """
        path = f"instances/{check_orthanc_id(instance_id, 'instance')}/file"
        # Orthanc gzips files when asked, which requests does by default: 28x slower.
        return self._request("GET", path, stream=True,
                            headers={"Accept-Encoding": "identity"})

    def upload(self, dicom_bytes):
        """Store one DICOM Part-10 file; return Orthanc's answer (ID, Parent*, Status)."""
        response = self._request("POST", "instances", data=dicom_bytes,
                                headers={"Content-Type": "application/dicom"})
        return self._parse_json(response)

    def delete_study(self, study_id):
        """Delete a study with its series and instances; return Orthanc's answer."""
        response = self._request("DELETE", f"studies/{check_orthanc_id(study_id, 'study')}")
        return self._parse_json(response)


_thread_clients = threading.local()


def client_for_thread(config):
    """Return this thread's client for the app's Orthanc, reusing its pooled connections."""
    key = (config["ORTHANC_URL"], config["ORTHANC_USERNAME"], config["ORTHANC_PASSWORD"], config["ORTHANC_TIMEOUT"])
    client = getattr(_thread_clients, "by_key", {}).get(key)
    if client is None:
        client = client_from_config(config)
        _thread_clients.__dict__.setdefault("by_key", {})[key] = client
    return client


def forget_thread_clients():
    """Close this thread's Orthanc clients (for tests and shutdown)."""
    for client in getattr(_thread_clients, "by_key", {}).values():
        client.close()
    _thread_clients.__dict__["by_key"] = {}


def client_from_config(config):
    """Return an OrthancClient for the app's ORTHANC_* settings."""
    return OrthancClient(
        config["ORTHANC_URL"],
        config["ORTHANC_USERNAME"] or None,
        config["ORTHANC_PASSWORD"] or None,
        timeout=(3.05, config["ORTHANC_TIMEOUT"]),
    )
