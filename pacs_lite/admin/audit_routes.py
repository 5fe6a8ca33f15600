"""Admin pages for the audit log: study views and auth events, filtered and paged, and their CSV export."""

import csv
import datetime
import io

from flask import Response, abort, render_template, request, stream_with_context

from pacs_lite import audit_log, users
from pacs_lite.accounts import normalize_username
from pacs_lite.admin import bp
from pacs_lite.auth.current_user import roles_required
from pacs_lite.clock import utc_now
from pacs_lite.db import get_db

PAGE_SIZE = 50
MAX_PAGE = 100_000
MAX_PATIENT_TEXT = 324
SUMMARY_DAYS = 7
FILTER_ARGS = ("user", "patient", "event", "date_from", "date_to")
CSV_HEADER = ("Time (UTC)", "Event", "User", "By", "Patient ID", "Patient name", "Study UID", "Detail", "IP",
              "User agent")
# A spreadsheet runs a cell that starts with one of these as a formula; the log holds typed text (failed logins).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class BadFilter(ValueError):
    """A filter of the audit query is malformed; the message says which and how."""


def read_date(args, name):
    """Read an optional YYYY-MM-DD date argument."""
    raw = args.get(name, "").strip()
    if not raw:
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise BadFilter(f"the date {raw!r} is not a date written YYYY-MM-DD") from None


def read_filters(args):
    """Build the audit filters from the request's arguments."""
    event_type = args.get("event", "").strip()
    if event_type and event_type not in audit_log.EVENT_TYPES:
        raise BadFilter(f"unknown event type {event_type!r}")
    patient = args.get("patient", "").strip()
    if len(patient) > MAX_PATIENT_TEXT:
        raise BadFilter(f"the patient or study text is too long: at most {MAX_PATIENT_TEXT} characters")
    date_from, date_to = read_date(args, "date_from"), read_date(args, "date_to")
    if date_from and date_to and date_from > date_to:
        raise BadFilter("the first date is after the last")
    return audit_log.AuditFilters(
        username=normalize_username(args.get("user", ""))[:64],
        patient=patient,
        event_type=event_type,
        date_from=date_from,
        date_to=date_to,
    )


def read_page(args):
    """Read the page number, from 1."""
    raw = args.get("page", "").strip() or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise BadFilter(f"the page must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def filter_args(args):
    """Return the filter arguments the request carried (for links to other pages and the CSV)."""
    return {name: args[name] for name in FILTER_ARGS if args.get(name, "").strip()}


@bp.get("/audit")
@roles_required("admin")
def audit():
    """Show the audit log, filtered and paged, with the last days' most active users."""
    db, now = get_db(), utc_now()
    since = now - datetime.timedelta(days=SUMMARY_DAYS)
    page_data = {
        "args": filter_args(request.args),
        "event_groups": {"Studies": audit_log.STUDY_EVENTS, "Logins and accounts": audit_log.AUTH_EVENTS},
        "event_labels": audit_log.EVENT_TYPES,
        "usernames": users.list_usernames(db),
        "active_users": audit_log.most_active_users(db, since),
        "break_glass_count": audit_log.count_auth_events_since(db, "break_glass", since),
        "summary_days": SUMMARY_DAYS,
    }
    try:
        filters, page = read_filters(request.args), read_page(request.args)
    except BadFilter as e:
        return render_template("admin_audit.html", error=f"Cannot filter: {e}.", rows=[], total=0, page=1,
                               pages=1, **page_data), 400
    total = audit_log.count_events(db, filters)
    rows = audit_log.list_events(db, filters, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("admin_audit.html", error="", rows=rows, total=total, page=page, pages=pages,
                           first_row=(page - 1) * PAGE_SIZE + 1, **page_data)


@bp.get("/audit.csv")
@roles_required("admin")
def audit_csv():
    """Stream every audit row the filters match as CSV (UTF-8 with a BOM, for Excel), header first."""
    try:
        filters = read_filters(request.args)
    except BadFilter as e:
        abort(400, description=f"Cannot export: {e}.")
    db = get_db()
    filename = f"pacs_lite-audit-{utc_now():%Y%m%d-%H%M%S}.csv"
    return Response(
        stream_with_context(csv_lines(audit_log.iter_events(db, filters))),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


def csv_lines(rows):
    """Yield the CSV text: a BOM and the header, then one line per audit row."""
    yield "\ufeff" + csv_line(CSV_HEADER)
    for row in rows:
        yield csv_line((
            row["at"].strftime("%Y-%m-%d %H:%M:%S"), row["event_type"], row["username"], row["actor"],
            row["patient_id"], row["patient_name"], row["study_uid"], row["detail"], row["ip"], row["user_agent"],
        ))


def csv_line(values):
    """Return one CSV line (quoted where needed, CRLF-ended), each cell safe to open in a spreadsheet."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow([spreadsheet_safe(value) for value in values])
    return buffer.getvalue()


def spreadsheet_safe(value):
    """Put an apostrophe before text a spreadsheet would run as a formula."""
    text = str(value or "")
    return "'" + text if text.startswith(FORMULA_STARTS) else text
