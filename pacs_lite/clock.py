"""Time in UTC: what the database stores and the API prints."""

import datetime


def utc_now():
    """Return the current UTC time as a naive datetime, to the second (as the database keeps it)."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def iso_utc(value):
    """Format a naive UTC datetime as ISO 8601 with a Z, or None."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
