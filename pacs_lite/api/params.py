"""Reading and checking API parameters; anything malformed is a 400 with a message."""

import base64
import binascii
import datetime
import json
import re

from flask import abort

from pacs_lite.orthanc import is_orthanc_id
from pacs_lite.worklist import SORTS, WorklistQuery

MAX_PER_PAGE = 200
MAX_PAGE = 100_000
MAX_SEARCH = 200
MAX_CURSOR = 1000
MODALITY = re.compile(r"^[A-Z0-9]{1,16}$")
UID = re.compile(r"^[0-9.]{1,64}$")


def bad_request(message):
    """Stop the request with a 400 and this message."""
    abort(400, description=message)


def whole_number(args, name, default, low, high=None):
    """Read a whole-number parameter within [low, high]."""
    raw = args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 9:
        bad_request(f"{name} must be a whole number from {low}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        bad_request(f"{name} must be a whole number from {low} to {high}")
    return value


def iso_date(args, name):
    """Read an optional YYYY-MM-DD date parameter."""
    raw = args.get(name, "").strip()
    if not raw:
        return ""
    message = f"{name} must be a date written YYYY-MM-DD"
    if len(raw) != 10:  # fromisoformat would also take 20240301
        bad_request(message)
    try:
        return datetime.date.fromisoformat(raw).isoformat()
    except ValueError:
        bad_request(message)


def worklist_query(args, page_size):
    """Build a WorklistQuery from the request's arguments."""
    sort = args.get("sort", "").strip() or "last_study_date"
    if sort not in SORTS:
        bad_request(f"sort must be one of {', '.join(SORTS)}")
    order = args.get("order", "").strip().lower() or SORTS[sort][1]
    if order not in ("asc", "desc"):
        bad_request("order must be asc or desc")
    search = args.get("search", "").strip()
    if len(search) > MAX_SEARCH:
        bad_request(f"search is too long: at most {MAX_SEARCH} characters")
    modality = args.get("modality", "").strip().upper()
    if modality and not MODALITY.match(modality):
        bad_request("modality must be a DICOM modality code such as CT or MR")
    date_from, date_to = iso_date(args, "date_from"), iso_date(args, "date_to")
    if date_from and date_to and date_from > date_to:
        bad_request("date_from is after date_to")
    per_page = min(whole_number(args, "per_page", page_size, 1), MAX_PER_PAGE)
    return WorklistQuery(
        after=page_cursor(args, sort, order),
        search=search,
        sort=sort,
        order=order,
        modality=modality,
        date_from=date_from,
        date_to=date_to,
        page=whole_number(args, "page", 1, 1, MAX_PAGE),
        per_page=per_page,
    )


def encode_cursor(query, row):
    """Return the cursor of the page after a row: an opaque token for the `cursor` parameter."""
    value, orthanc_id = query.cursor_of(row)
    text = json.dumps([query.sort, query.order, value, orthanc_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def page_cursor(args, sort, order):
    """Read the optional `cursor` parameter: return its (sort value, orthanc_id), or () without one."""
    raw = args.get("cursor", "").strip()
    if not raw:
        return ()
    message = "cursor is not one this worklist gave (use the nextCursor of the previous page)"
    if len(raw) > MAX_CURSOR:
        bad_request(message)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        bad_request(message)
    if not (isinstance(decoded, list) and len(decoded) == 4 and all(isinstance(v, str) for v in decoded)
            and is_orthanc_id(decoded[3])):
        bad_request(message)
    if decoded[:2] != [sort, order]:
        bad_request("cursor belongs to another sort order: start again from page 1")
    return decoded[2], decoded[3]


def orthanc_id(args, name):
    """Read a required parameter holding an Orthanc id."""
    value = args.get(name, "").strip()
    if not value:
        bad_request(f"{name} is required")
    if not is_orthanc_id(value):
        bad_request(f"{name} is not an Orthanc id (five groups of 8 hex digits joined by '-')")
    return value


def study_uid(args, name="studyUID"):
    """Read a required StudyInstanceUID parameter."""
    value = args.get(name, "").strip()
    if not value:
        bad_request(f"{name} is required")
    if not UID.match(value):
        bad_request(f"{name} is not a DICOM UID (digits and dots, at most 64)")
    return value
