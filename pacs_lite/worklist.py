"""SQL for the worklist: patients found by name or PatientID, filtered, sorted and paged, from the cache.

Name search goes through cached_patient_words (one row per word of a name,
carrying the whole name, and the patient's last study date and modalities):
the rarest typed word is an index range there, and the other words are
tested on the name of each row found. Prefix ranges (word >= 'MUL' AND
word < 'MUL' + U+10FFFF) and INSTR need no LIKE, so %, _ and * in a search
are plain characters.

The query shape follows what is asked, so that an index serves every case:
- nothing to match: the unfiltered total is kept in sync_state, and the page
  is read in index order (a deep page from the page anchor before it: the
  cursor of every hundredth row of the sort, found once per change of the
  cached patients);
- a modality or a first date alone, or a whole year or month (with a
  modality or not), newest first: the page is read along the filter's own
  index (cached_patient_modalities, the last-study index: a date range
  reaching past the newest study is open at its end, or
  cached_period_patients) and the total from kept counts
  (cached_modality_counts, cached_last_study_dates, cached_period_counts);
- a range of whole years or months: its total is a sum of kept counts
  (cached_period_counts, by the period before each patient's first one in
  it);
- another date range: its patients are the rows of cached_patient_dates (or
  cached_modality_dates, with a modality) in it whose date before is not,
  one each: counted and read from one index range, without grouping;
- a search of one word of up to four characters, newest first, alone or
  with a modality or a first date: its page is read along its prefix's rows
  of cached_name_prefix_patients (each patient under each prefix of their
  name words, newest first), and its total is the prefix's kept count (see
  _page_along_name_prefix); with a date range, its many matches are walked
  along the same rows;
- a search of one such word with a date range and no modality: its
  patients are its prefix's rows of cached_name_prefix_dates (each patient's
  dates under each prefix of their name words) in the range whose date
  before is not, one each: counted and read from one index range;
- a search or filter: the typed words are bounded by the patient counts of
  their prefixes (cached_name_prefixes, up to four characters) and the
  PatientIDs counted, in one statement, and the filters' patients from their
  index (see filtered_patients); with both, the side that costs less (see
  filter_rows_per_match) is read first and the other tested on each of its
  rows (name words carry their patient's modalities and last study date,
  and date rows the name and PatientID). Up to FEW_MATCHES matches are
  counted, sorted on their sort column and their page read in one statement
  (only sorted, when their total is known already: see kept_total, which
  reads a short word's, with or without a modality, from kept counts; and a
  date range alone, counted first); more are counted (or their total is
  known) and the page is found by walking the sort index and testing each
  patient (they come quickly), or, far down, by sorting them all;
- a cursor (the last row of the previous page) starts the page with an index
  seek instead of an offset.
Admins and radiologists read the derived columns of cached_patients. For a
referring doctor those columns would count studies they may not see, so they
read cached_referrals, which holds each patient as each referring physician
sees them (a modality alone or a first date alone is tested on its rows, a
date range on the physician's studies in it); with a live break-glass grant,
their patients are grouped from their visible studies instead (few, by
nature).
"""

import threading
from dataclasses import dataclass, replace

from pacs_lite.cache import PREFIX_LENGTHS, modality_set, period_range
from pacs_lite.db import aggregated_datetime
from pacs_lite.names import search_key
from pacs_lite.sync import study_summary
from pacs_lite.visibility import break_glass_patients, visible_studies, visible_study_condition

TOP = "\U0010ffff"  # sorts after every character: the upper end of a prefix range
FEW_MATCHES = 2000  # up to this many: read them and sort; more: walk the sort index
EARLIEST_DATE = "0001-01-01"  # a date range with no first date starts here: it keeps no study of unknown date ('')
MAX_WALK_PER_MATCH = 1  # a walk testing more patients than this many per match: sort the matches instead
ROWS_PER_SEEK = 6  # a date range's rows read in the time of one seek on a patient's dates (see bench/README.md)
ANCHOR_EVERY = 100  # a page anchor every this many patients: no page walks further than this from one

# sort name -> (column of cached_patients, default order); each has an index ending in orthanc_id
SORTS = {
    "last_study_date": ("last_study_date", "desc"),
    "name": ("name_key", "asc"),
    "patient_id": ("patient_id_key", "asc"),
}
# The kept count of the patients with a name prefix and a modality.
PREFIX_MODALITY_COUNT = "SELECT patient_count FROM cached_name_prefix_modalities WHERE prefix = ? AND modality = ?"
# (sort, order) -> (patients_version, {number: page anchor}): see page_anchor
_kept_anchors = {}
_anchors_lock = threading.Lock()

# What the worklist shows of a patient (and the default sort's key); the other sorts add their key.
PATIENT_FIELDS = """p.orthanc_id, p.patient_id, p.patient_name, p.birth_date, p.sex, p.study_count, p.last_study_date,
    p.modalities, p.last_arrival_at"""


@dataclass(frozen=True)
class WorklistQuery:
    """A checked worklist request."""

    search: str = ""
    sort: str = "last_study_date"
    order: str = "desc"
    modality: str = ""
    date_from: str = ""
    date_to: str = ""
    page: int = 1
    per_page: int = 50
    after: tuple = ()  # (sort value, orthanc_id) of the row before the page: read from there, not by offset

    @property
    def has_study_filter(self):
        """Tell whether the query filters on study modality or date."""
        return bool(self.modality or self.date_from or self.date_to)

    @property
    def first_date(self):
        """Return the first date of the date filters: date_from, or the earliest date when only date_to is given."""
        return self.date_from or EARLIEST_DATE

    @property
    def offset(self):
        """Return how many rows to skip before the page: none after a cursor."""
        return 0 if self.after else (self.page - 1) * self.per_page

    @property
    def patient_fields(self):
        """Return the columns of the page's patient rows: PATIENT_FIELDS, and the sort's key for the cursor."""
        column, _ = SORTS[self.sort]
        return PATIENT_FIELDS if column == "last_study_date" else f"{PATIENT_FIELDS}, p.{column}"

    def order_by(self, alias="p"):
        """Return the ORDER BY clause of the query's sort."""
        column, _ = SORTS[self.sort]
        direction = "DESC" if self.order == "desc" else "ASC"
        return f"ORDER BY {alias}.{column} {direction}, {alias}.orthanc_id {direction}"

    def after_condition(self, alias="p"):
        """Return (SQL condition, params) keeping the rows after the cursor in the sort; always true without one."""
        if not self.after:
            return "1 = 1", []
        column, _ = SORTS[self.sort]
        value, orthanc_id = self.after
        later = "<" if self.order == "desc" else ">"
        # The first part alone is a range the sort index seeks to.
        return (f"{alias}.{column} {later}= ? AND ({alias}.{column} {later} ? OR {alias}.orthanc_id {later} ?)",
                [value, value, orthanc_id])

    def cursor_of(self, row):
        """Return the (sort value, orthanc_id) of a row: the cursor of the page after it."""
        column, _ = SORTS[self.sort]
        return row[column], row["orthanc_id"]


def search_words(text):
    """Split a search into folded words; commas count as spaces ("doe, john")."""
    return search_key(text.replace(",", " ")).split()


def prefix_range(text):
    """Return the bounds of the strings starting with text."""
    return [text, text + TOP]


def name_condition(words, column):
    """Return (SQL condition, params): every word starts a word of the name in column (a name_key, whose
    words are joined by single spaces)."""
    parts, params = [], []
    for word in words:
        parts.append(f"({column} >= ? AND {column} < ? OR INSTR({column}, ?) > 0)")
        params += [*prefix_range(word), " " + word]
    return " AND ".join(parts) or "1 = 1", params


def search_matches(text, words, by_patient_id):
    """Return (SQL selecting `orthanc_id`, `last_study_date` and `modalities`, params): the name words that start
    with every one of words (the search's, rarest first), and the patients whose PatientID starts with the text;
    None for no search. A patient may come more than once (see matching_patients).

    The rarest word is an index range of cached_patient_words; the others are
    tested on the name that each of its rows carries (with the patient's last
    study date and modalities, so that the default sort and the filters need
    no join). The PatientIDs are read only when some start with the text
    (by_patient_id: how many, counted by search_counts; a patient whose
    PatientID a sync adds between that count and this statement shows from
    the next request on).
    """
    if not words:
        return None
    first, *others = words
    condition, params = name_condition(others, "w.name_key")
    by_name = (f"SELECT w.patient_orthanc_id AS orthanc_id, w.last_study_date, w.modalities "
               f"FROM cached_patient_words w WHERE w.word >= ? AND w.word < ? AND {condition}")
    params = [*prefix_range(first[:64]), *params]
    if not by_patient_id:
        return by_name, params
    return (f"{by_name} UNION ALL SELECT orthanc_id, last_study_date, modalities FROM cached_patients "
            "WHERE patient_id_key >= ? AND patient_id_key < ?",
            [*params, *prefix_range(search_key(text))])


def search_condition(text, alias="p"):
    """Return (SQL condition on one patient, params) for a search; None for no search."""
    words = search_words(text)
    if not words:
        return None
    condition, params = name_condition(words, f"{alias}.name_key")
    return (f"(({condition}) OR ({alias}.patient_id_key >= ? AND {alias}.patient_id_key < ?))",
            [*params, *prefix_range(search_key(text))])


def date_condition(query, alias):
    """Return (SQL condition on the study_date column of a table alias, params) for the date filters: a study of
    unknown date ('') matches none."""
    parts, params = [], []
    if query.date_from or query.date_to:
        parts.append(f"{alias}.study_date >= ?")
        params.append(query.first_date)
    if query.date_to:
        parts.append(f"{alias}.study_date <= ?")
        params.append(query.date_to)
    return " AND ".join(parts) or "1 = 1", params


def study_filter_condition(query, alias="s"):
    """Return (SQL condition on one study, params) for the modality and date filters."""
    condition, params = date_condition(query, alias)
    if not query.modality:
        return condition, params
    modality, modality_params = modality_condition(query, f"{alias}.modalities")
    return f"{condition} AND {modality}", [*params, *modality_params]


def modality_condition(query, column):
    """Return (SQL condition, params) keeping the rows whose modalities column ("CT,MR") holds the modality."""
    # The modality was checked to be [A-Z0-9]+, so it holds no LIKE wildcards. INSTR first: the rows without the
    # letters at all (most) skip the LIKEs.
    return (f"INSTR({column}, ?) > 0 AND ({column} = ? OR {column} LIKE ? OR {column} LIKE ? OR {column} LIKE ?)",
            [query.modality, query.modality, f"{query.modality},%", f"%,{query.modality}", f"%,{query.modality},%"])


def matching_patients(query, words, by_patient_id, filter_first=False):
    """Return (SQL selecting `orthanc_id` and `last_study_date`, params) of the patients a search (its words rarest
    first, and how many PatientIDs start with it) and filters keep; None when nothing filters.

    With both, the search's patients are tested against the filters, or, when
    filter_first (the filters' rows cost less to read), the filters' patients
    against the search.
    """
    search = search_matches(query.search, words, by_patient_id)
    filtered = filtered_patients(query)
    if search is None:
        return filtered
    if filtered is not None and filter_first:
        return filtered_patients_found(query)
    # The filters test a patient's orthanc_id, last study date and modalities, which the search's rows carry;
    # DISTINCT after them keeps each patient once.
    source, params = search
    condition, condition_params = filter_condition(query, "m") if filtered is not None else ("1 = 1", [])
    return (f"SELECT DISTINCT m.orthanc_id, m.last_study_date FROM ({source}) m WHERE {condition}",
            [*params, *condition_params])


def filtered_patients(query):
    """Return (SQL selecting `orthanc_id` and `last_study_date`, params) of the patients with a study that the
    modality and date filters keep, from one index; None without filters."""
    if not query.has_study_filter:
        return None
    if modality_only(query):
        return ("SELECT m.orthanc_id, m.last_study_date FROM cached_patient_modalities m WHERE m.modality = ?",
                [query.modality])
    if since_only(query):
        return ("SELECT p.orthanc_id, p.last_study_date FROM cached_patients p WHERE p.last_study_date >= ?",
                [query.date_from])
    rows, params = first_dates_in_range(query)
    return (f"SELECT d.patient_orthanc_id AS orthanc_id, d.patient_last_study_date AS last_study_date FROM {rows}",
            params)


def filtered_patients_found(query):
    """Return (SQL selecting `orthanc_id` and `last_study_date`, params) of the patients the filters keep (see
    filtered_patients) whose name or PatientID the search matches.

    The search is tested on the filter's own rows: patients, and date rows,
    carry the name and the PatientID; a modality alone joins the patients.
    """
    if modality_only(query):
        condition, params = search_condition(query.search, "p")
        return ("SELECT m.orthanc_id, m.last_study_date FROM cached_patient_modalities m "
                f"JOIN cached_patients p ON p.orthanc_id = m.orthanc_id WHERE m.modality = ? AND {condition}",
                [query.modality, *params])
    if since_only(query):
        condition, params = search_condition(query.search, "p")
        return (f"SELECT p.orthanc_id, p.last_study_date FROM cached_patients p WHERE p.last_study_date >= ? "
                f"AND {condition}", [query.date_from, *params])
    rows, params = first_dates_in_range(query)
    condition, condition_params = search_condition(query.search, "d")
    return (f"SELECT d.patient_orthanc_id AS orthanc_id, d.patient_last_study_date AS last_study_date FROM {rows} "
            f"AND {condition}", [*params, *condition_params])


def dated_rows(query):
    """Return (FROM clause with its WHERE, params) of the rows `d` of cached_modality_dates (with a modality) or
    cached_patient_dates (without) whose date is in the date range."""
    dates, params = date_condition(query, "d")
    if query.modality:
        return f"cached_modality_dates d WHERE d.modality = ? AND {dates}", [query.modality, *params]
    return f"cached_patient_dates d WHERE {dates}", params


def first_dates_in_range(query):
    """Return (FROM clause with its WHERE, params) of each patient's first row of dated_rows: the one whose date
    before (see cache.save_study_dates) is not in the range."""
    rows, params = dated_rows(query)
    return f"{rows} AND d.previous_date < ?", [*params, query.first_date]


def filter_condition(query, alias="p"):
    """Return (SQL condition on one patient, params) for the modality and date filters."""
    if since_only(query):
        return f"{alias}.last_study_date >= ?", [query.date_from]
    if modality_only(query):
        return modality_condition(query, f"{alias}.modalities")  # the modalities of all their studies
    # The patient's latest date up to the end of the range is in it: one seek on the patient index. (With an
    # EXISTS, MariaDB reads every row of the range first.)
    table, parts, params = "cached_patient_dates", [f"d.patient_orthanc_id = {alias}.orthanc_id"], []
    if query.modality:
        table = "cached_modality_dates"
        parts.append("d.modality = ?")
        params.append(query.modality)
    if query.date_to:
        parts.append("d.study_date <= ?")
        params.append(query.date_to)
    return (f"(SELECT MAX(d.study_date) FROM {table} d WHERE {' AND '.join(parts)}) >= ?",
            [*params, query.first_date])


def filter_rows_per_match(query):
    """Return how many of the filters' own rows are read in the time that testing one of a search's matches
    against them takes: a modality or a first date is tested on the match's row itself, a date range with a seek
    on the patient's dates (see filter_condition). The side that costs less is read first."""
    return 1 if modality_only(query) or since_only(query) else ROWS_PER_SEEK


def modality_only(query):
    """Tell whether a query's only study filter is its modality (no dates)."""
    return bool(query.modality and not query.date_from and not query.date_to)


def since_only(query):
    """Tell whether a query's only study filter is a first date: it keeps the patients whose last study is on or
    after it."""
    return bool(query.date_from and not query.date_to and not query.modality)


def list_patients(db, query, scope, sync_state):
    """Return (patient rows of the page, total) for a worklist query as the scope sees it.

    sync_state is the cache's sync_state row: the unfiltered list takes its
    total from patient_count, and keeps its page anchors under patients_version;
    a date range reaching past newest_study_date is open at its end.
    """
    newest = sync_state["newest_study_date"]
    if query.date_to and newest and query.date_to >= newest:
        query = replace(query, date_from=query.first_date, date_to="")  # no study is later: open at its end
    if not scope.sees_everything:
        return _list_visible_patients(db, query, scope)
    counted, by_patient_id = search_counts(db, query.search)
    prefix = short_word_prefix(query, counted, by_patient_id)
    if prefix is not None and (not query.has_study_filter or modality_only(query) or since_only(query)):
        return _page_along_name_prefix(db, query, prefix, counted[0][1])
    search_bound = counted[0][1] + by_patient_id if counted else None  # the rarest word's, and the PatientIDs
    dated = dated_word_prefix(query, counted, by_patient_id)
    if dated is not None:
        matches, filter_bound = name_prefix_dates(query, dated), None
    else:
        filter_bound = filtered_patients_bound(db, query) if counted and query.has_study_filter else None
        filter_first = filter_bound is not None and filter_bound < search_bound * filter_rows_per_match(query)
        matches = matching_patients(query, [word for word, _ in counted], by_patient_id, filter_first)
    if matches is None:
        return _page_in_index_order(db, query, sync_state["patients_version"]), sync_state["patient_count"]
    if not counted and query.sort == "last_study_date" and (
            modality_only(query) or since_only(query) or whole_period(query)):
        return _page_along_filter_index(db, query)
    sql, params = matches
    kept = kept_total(db, query, counted, by_patient_id)
    if kept is None and not counted:
        kept = range_total(db, query)
    if kept is not None and kept <= FEW_MATCHES:
        # Counted already: sorted as a set, without counting them again.
        return _page_of_sorted_matches(db, query, *sort_keys_of(query, sql, params)), kept
    bounds = [bound for bound in (kept, search_bound, filter_bound) if bound is not None]
    if not bounds or min(bounds) <= FEW_MATCHES:
        few = _page_of_few_matches(db, query, *few_matches_source(query, sql, params))
        if few is not None:
            return few
    total = kept
    if total is None:
        total = db.query_value(f"SELECT COUNT(*) FROM ({sql}) m", params)
    if total == 0:
        return [], 0
    # Many matches: walk the sort index and test each patient (or the rows of a short word's prefix, newest first,
    # testing the date range); the page fills within a few rows. A page so far down that the walk would test too
    # many is read from the matches, sorted.
    walked = counted[0][1] if prefix is not None else sync_state["patient_count"]
    tested = (query.offset + query.per_page) * walked / total  # about, before the page fills
    if not query.after and tested > total * MAX_WALK_PER_MATCH:
        return _page_of_sorted_matches(db, query, *sort_keys_of(query, sql, params)), total
    if prefix is not None:
        return _read_along_name_prefix(db, query, prefix), total
    condition, condition_params = patient_condition(query)
    after, after_params = query.after_condition()
    rows = db.query(
        f"SELECT {query.patient_fields} FROM cached_patients p WHERE {condition} AND {after} {query.order_by()} "
        "LIMIT ? OFFSET ?",
        [*condition_params, *after_params, query.per_page, query.offset],
    )
    return rows, total


def _page_along_filter_index(db, query):
    """Return (page, total) of a modality alone, a first date alone, or a whole year or month (with a modality or
    not), sorted by last study date.

    Every row of the filter's index matches (the last-study index of
    cached_patients for a first date, cached_patient_modalities for a
    modality, cached_period_patients for a year or month): the page is read
    along it, and its total from the kept counts (see kept_count), in one
    statement. Read along another table's index, the page's keys come first,
    so that a deep page skips index entries only, and its patients are joined
    after.
    """
    total, total_params = kept_count(query)
    if since_only(query):
        params = [query.date_from]
        after, after_params = query.after_condition()
        sql = (f"SELECT {query.patient_fields}, ({total}) AS total FROM cached_patients p "
               f"WHERE p.last_study_date >= ? AND {after} {query.order_by()} LIMIT ? OFFSET ?")
    else:
        if modality_only(query):
            keys, params = "cached_patient_modalities k WHERE k.modality = ?", [query.modality]
        else:
            keys = "cached_period_patients k WHERE k.modality = ? AND k.period = ?"
            params = [query.modality, whole_period(query)]
        after, after_params = query.after_condition("k")
        sql = (f"SELECT {query.patient_fields}, ({total}) AS total FROM (SELECT k.orthanc_id, k.last_study_date "
               f"FROM {keys} AND {after} {query.order_by('k')} LIMIT ? OFFSET ?) page "
               f"JOIN cached_patients p ON p.orthanc_id = page.orthanc_id {query.order_by()}")
    page = db.query(sql, [*total_params, *params, *after_params, query.per_page, query.offset])
    return page_with_total(db, page, total, total_params)


def _page_along_name_prefix(db, query, prefix, prefix_total):
    """Return (page, total) of a search of one short word (see short_word_prefix), alone or with a modality or a
    first date, sorted by last study date.

    The page is read along the prefix's rows (see _read_along_name_prefix).
    Alone, its total is the prefix's count (prefix_total); with a modality,
    the kept count of both (cached_name_prefix_modalities); with a first
    date, counted on the same rows. Either is read in the page's statement.
    """
    if not query.has_study_filter:
        return _read_along_name_prefix(db, query, prefix), prefix_total
    if modality_only(query):
        total, total_params = PREFIX_MODALITY_COUNT, [prefix, query.modality]
    else:
        rows, params = name_prefix_rows(query, prefix)
        total, total_params = f"SELECT COUNT(*) FROM {rows}", params
    page = _read_along_name_prefix(db, query, prefix, (total, total_params))
    return page_with_total(db, page, total, total_params)


def page_with_total(db, page, total, params):
    """Return (page, total) of page rows that carry their total as `total` (total: the SQL reading or counting it,
    with params; a kept SUM is a DECIMAL on MySQL, and None when nothing was counted); past the last page, which
    says nothing of it, read it alone."""
    if not page:
        return [], int(db.query_value(total, params) or 0)
    return [{key: v for key, v in row.items() if key != "total"} for row in page], int(page[0]["total"] or 0)


def _read_along_name_prefix(db, query, prefix, total=None):
    """Read the page of a search of one short word newest first, along its prefix's rows (see name_prefix_rows);
    total: (SQL, params) of a value each row carries as `total`, or None."""
    rows, params = name_prefix_rows(query, prefix)
    total_column, total_params = (f", ({total[0]}) AS total", total[1]) if total else ("", [])
    after, after_params = query.after_condition("x")
    return db.query(
        f"SELECT {query.patient_fields}{total_column} FROM (SELECT x.orthanc_id, x.last_study_date FROM {rows} "
        f"AND {after} {query.order_by('x')} LIMIT ? OFFSET ?) page "
        f"JOIN cached_patients p ON p.orthanc_id = page.orthanc_id {query.order_by()}",
        [*total_params, *params, *after_params, query.per_page, query.offset],
    )


def name_prefix_rows(query, prefix):
    """Return (FROM clause with its WHERE, params) of the rows `x` of cached_name_prefix_patients under a prefix
    that the query's filters keep."""
    condition, params = filter_condition(query, "x") if query.has_study_filter else ("1 = 1", [])
    return f"cached_name_prefix_patients x WHERE x.prefix = ? AND {condition}", [prefix, *params]


def _page_of_few_matches(db, query, source, params):
    """Return (page, total) of a few matches, counted, sorted and read in one statement; None when they are
    more than FEW_MATCHES.

    source (see few_matches_source) selects at most FEW_MATCHES + 1 of them,
    with their orthanc_id and sort column: the sort reads only those, and the
    page's rows are joined after it.
    """
    after, after_params = query.after_condition()
    page = db.query(
        f"SELECT {query.patient_fields}, page.total FROM ("
        f"SELECT * FROM (SELECT m.*, COUNT(*) OVER () AS total FROM ({source}) m) p "
        f"WHERE {after} {query.order_by()} LIMIT ? OFFSET ?"
        f") page JOIN cached_patients p ON p.orthanc_id = page.orthanc_id {query.order_by()}",
        [*params, *after_params, query.per_page, query.offset],
    )
    total = page_total(db, query, page, f"SELECT COUNT(*) FROM ({source}) m", params)
    if total > FEW_MATCHES:
        return None
    return [{key: value for key, value in row.items() if key != "total"} for row in page], total


def page_total(db, query, page, count, params):
    """Return the total that a page's rows carry as `total`; past the last page, which says nothing of it, count
    it (count: SQL, with params); 0 for an empty first page."""
    if page:
        return page[0]["total"]
    if query.offset or query.after:
        return db.query_value(count, params)
    return 0


def _page_of_sorted_matches(db, query, source, params):
    """Return the page of matches that source (see sort_keys_of) selects, all of them sorted: the sort reads
    only their sort keys, and the page's rows are joined after it."""
    after, after_params = query.after_condition()
    return db.query(
        f"SELECT {query.patient_fields} FROM (SELECT * FROM ({source}) p WHERE {after} {query.order_by()} "
        f"LIMIT ? OFFSET ?) page JOIN cached_patients p ON p.orthanc_id = page.orthanc_id {query.order_by()}",
        [*params, *after_params, query.per_page, query.offset],
    )


def few_matches_source(query, sql, params):
    """Return (SQL, params) selecting up to FEW_MATCHES + 1 of the patients that sql (see matching_patients)
    selects, with their orthanc_id and sort column (see sort_keys_of)."""
    return sort_keys_of(query, f"{sql} LIMIT ?", [*params, FEW_MATCHES + 1])


def sort_keys_of(query, sql, params):
    """Return (SQL, params) selecting the orthanc_id and sort column of the patients that sql (see
    matching_patients) selects.

    Every source of matches carries the patient's last study date, so the
    default sort reads it there; the other sorts join cached_patients.
    """
    if query.sort == "last_study_date":
        return f"SELECT m.orthanc_id, m.last_study_date FROM ({sql}) m", params
    column, _ = SORTS[query.sort]
    return (f"SELECT p.{column}, p.orthanc_id FROM ({sql}) m JOIN cached_patients p ON p.orthanc_id = m.orthanc_id",
            params)


def search_counts(db, search):
    """Return ([(word, at most how many patients it matches)] rarest first, how many PatientIDs start with the
    search); ([], 0) for no search.

    Each word is first bounded by the patients of its prefix (up to four
    characters, kept in cached_name_prefixes: exact for a word that short),
    and the PatientIDs are counted up to FEW_MATCHES + 1, in one statement.
    Only when every word's prefix is common are the longer words' own name
    words counted (up to FEW_MATCHES + 1), as one of them may still be rare.
    """
    words = search_words(search)
    if not words:
        return [], 0
    longest_prefix = max(PREFIX_LENGTHS)
    counts = ["(SELECT patient_count FROM cached_name_prefixes WHERE prefix = ?)" for _ in words]
    params = [word[:longest_prefix] for word in words]
    counts.append("(SELECT COUNT(*) FROM "
                  "(SELECT 1 FROM cached_patients WHERE patient_id_key >= ? AND patient_id_key < ? LIMIT ?) c)")
    params += [*prefix_range(search_key(search)), FEW_MATCHES + 1]
    *bounds, by_patient_id = _read_counts(db, counts, params)
    longer = [word for word in words if len(word) > longest_prefix]
    if min(bounds) > FEW_MATCHES and longer:
        counts = ["(SELECT COUNT(*) FROM (SELECT 1 FROM cached_patient_words WHERE word >= ? AND word < ? LIMIT ?) c)"
                  for _ in longer]
        params = [value for word in longer for value in (*prefix_range(word[:64]), FEW_MATCHES + 1)]
        counted_words = dict(zip(longer, _read_counts(db, counts, params)))
        bounds = [counted_words.get(word, bound) for word, bound in zip(words, bounds)]
    return sorted(zip(words, bounds), key=lambda item: item[1]), by_patient_id


def _read_counts(db, counts, params):
    """Run scalar count subqueries in one SELECT; return their values (0 for none)."""
    row = db.query_one("SELECT " + ", ".join(f"{count} AS n{i}" for i, count in enumerate(counts)), params)
    return [row[f"n{i}"] or 0 for i in range(len(counts))]


def kept_total(db, query, counted, by_patient_id):
    """Return the exact total of a query from the counts the cache keeps, without counting matches; None when
    they do not give it.

    That is a search of one short word (see total_from_prefix_counts), with
    or without a modality filter (see total_from_prefix_modality_counts), a
    modality filter alone (cached_modality_counts), a first date alone
    (cached_last_study_dates: the patients whose last study is on or after
    it), and a range of whole years or months, with a modality or not
    (cached_period_counts).
    """
    if counted and modality_only(query):
        return total_from_prefix_modality_counts(db, query, counted, by_patient_id)
    if counted:
        return total_from_prefix_counts(query, counted, by_patient_id)
    return kept_filter_total(db, query)


def short_word(counted, by_patient_id):
    """Return the word of a search of one word of at most four characters (counted: its search_counts) that
    starts no PatientID: a name prefix whose patients the cache keeps; None for any other search."""
    if len(counted) != 1 or by_patient_id or len(counted[0][0]) > max(PREFIX_LENGTHS):
        return None
    return counted[0][0]


def short_word_prefix(query, counted, by_patient_id):
    """Return the prefix under which cached_name_prefix_patients holds a search's matches newest first (the
    default sort, and a short_word); None when it does not hold them all in the query's order."""
    return short_word(counted, by_patient_id) if query.sort == "last_study_date" else None


def dated_word_prefix(query, counted, by_patient_id):
    """Return the prefix under which cached_name_prefix_dates holds a search's matches (a short_word, with a date
    range and no modality filter: see name_prefix_dates); None for any other query."""
    return short_word(counted, by_patient_id) if query.date_to and not query.modality else None


def name_prefix_dates(query, prefix):
    """Return (SQL selecting `orthanc_id` and `last_study_date`, params) of the patients under a name prefix with
    a study in the query's date range: each one's row of cached_name_prefix_dates whose date is in the range and
    whose date before is not."""
    return ("SELECT n.patient_orthanc_id AS orthanc_id, n.patient_last_study_date AS last_study_date "
            "FROM cached_name_prefix_dates n WHERE n.prefix = ? AND n.study_date >= ? AND n.study_date <= ? "
            "AND n.previous_date < ?", [prefix, query.first_date, query.date_to, query.first_date])


def total_from_prefix_modality_counts(db, query, counted, by_patient_id):
    """Return the exact total of a search of one short word (a kept prefix) with a modality filter alone, when no
    PatientID starts with the search: the kept count of the patients with both (cached_name_prefix_modalities).
    None for any other query."""
    word = short_word(counted, by_patient_id)
    if word is None:
        return None
    count = db.query_value(PREFIX_MODALITY_COUNT, [word, query.modality])
    return int(count or 0)


def range_total(db, query):
    """Return how many patients a date range (and maybe a modality) keeps: their first dates in it, counted (see
    first_dates_in_range)."""
    rows, params = first_dates_in_range(query)
    return db.query_value(f"SELECT COUNT(*) FROM {rows}", params)


def kept_filter_total(db, query):
    """Return the kept total of a modality alone, a first date alone, or a range of whole years or months (see
    kept_count); None for other queries."""
    count = kept_count(query)
    return None if count is None else int(db.query_value(*count) or 0)


def filtered_patients_bound(db, query):
    """Return how many patients the modality and date filters keep: exact from the kept counts, or counted up to
    FEW_MATCHES + 1."""
    kept = kept_filter_total(db, query)
    if kept is not None:
        return kept
    sql, params = filtered_patients(query)
    return db.query_value(f"SELECT COUNT(*) FROM ({sql} LIMIT ?) c", [*params, FEW_MATCHES + 1])


def kept_count(query):
    """Return (SQL, params) reading the kept total of a modality alone, a first date alone, or a range of whole
    years or months (with a modality or not); None for any other query. Its value is None when nothing was
    counted, and a DECIMAL on MySQL (a SUM)."""
    if modality_only(query):
        return "SELECT patient_count FROM cached_modality_counts WHERE modality = ?", [query.modality]
    if since_only(query):
        return "SELECT SUM(patient_count) FROM cached_last_study_dates WHERE last_study_date >= ?", [query.date_from]
    periods = whole_periods(query)
    if periods:
        # Each patient once: in the period of their first study in the range, whose period before is not in it.
        span, first, last = periods
        return ("SELECT SUM(patient_count) FROM cached_period_counts WHERE modality = ? AND span = ? "
                "AND period >= ? AND period <= ? AND previous_period < ?",
                [query.modality, span, first, last, first])
    return None


def whole_periods(query):
    """Return (span, first period, last period) of the whole years ('year', '2018', '2022') or else months
    ('month', '2024-03', '2024-05') that a query's date range is exactly; None for any other range."""
    if not query.date_to:
        return None
    for span, length in (("year", 4), ("month", 7)):
        first, last = query.first_date[:length], query.date_to[:length]
        if (period_range(first)[0], period_range(last)[1]) == (query.first_date, query.date_to):
            return span, first, last
    return None


def whole_period(query):
    """Return the year ('2024') or the month ('2024-03') that a query's date range is exactly; None for any other
    range."""
    periods = whole_periods(query)
    if not query.date_from or not periods or periods[1] != periods[2]:
        return None
    return periods[1]


def total_from_prefix_counts(query, counted, by_patient_id):
    """Return the exact total of a search of one short word (a kept prefix) that nothing else filters.

    counted and by_patient_id are the search_counts of the search. The total
    is the patients of the prefix plus those whose PatientID starts with the
    text. None for any other query, when the PatientIDs were too many to count
    exactly, and when both are found: a patient may then match both ways, and
    only a count of the union is exact.
    """
    if query.has_study_filter or len(counted) != 1 or len(counted[0][0]) > max(PREFIX_LENGTHS):
        return None
    by_name = counted[0][1]
    if by_patient_id > FEW_MATCHES or (by_name and by_patient_id):
        return None
    return by_name + by_patient_id


def patient_condition(query, alias="p"):
    """Return (SQL condition on one patient, params) for the search and the filters."""
    parts, params = [], []
    search = search_condition(query.search, alias)
    if search:
        parts.append(search[0])
        params += search[1]
    if query.has_study_filter:
        condition, filter_params = filter_condition(query, alias)
        parts.append(condition)
        params += filter_params
    return " AND ".join(parts) or "1 = 1", params


def _page_in_index_order(db, query, patients_version):
    """Read a page of all patients along the sort index; a deep page starts from the page anchor before it."""
    after, params = query.after_condition()
    offset = query.offset
    if offset >= ANCHOR_EVERY:
        number = offset // ANCHOR_EVERY
        anchor = page_anchor(db, query, patients_version, number)
        if anchor is None:
            return []
        after, params = replace(query, after=anchor).after_condition()
        offset -= number * ANCHOR_EVERY
    return db.query(
        f"SELECT {query.patient_fields} FROM cached_patients p WHERE {after} {query.order_by()} LIMIT ? OFFSET ?",
        [*params, query.per_page, offset],
    )


def page_anchor(db, query, patients_version, number):
    """Return the cursor of row number * ANCHOR_EVERY - 1 of all patients in the query's sort; None past the end.

    Anchors are kept per sort for the patients_version they were found at. A
    new one is found on the sort index alone, walking from the nearest anchor
    before it: each stretch of the index is walked once per version.
    """
    key = (query.sort, query.order)
    with _anchors_lock:
        version, anchors = _kept_anchors.get(key, (None, {}))
        if version != patients_version:
            version, anchors = patients_version, {}
            _kept_anchors[key] = (version, anchors)
        if number in anchors:
            return anchors[number]
        start = max((n for n in anchors if n < number), default=0)
    after, params = replace(query, after=anchors[start]).after_condition() if start else ("1 = 1", [])
    column, _ = SORTS[query.sort]
    row = db.query_one(
        f"SELECT p.{column}, p.orthanc_id FROM cached_patients p WHERE {after} {query.order_by()} LIMIT 1 OFFSET ?",
        [*params, (number - start) * ANCHOR_EVERY - 1],
    )
    if row is None:
        return None
    with _anchors_lock:
        anchors[number] = query.cursor_of(row)
    return anchors[number]


def _list_visible_patients(db, query, scope):
    """List a referring doctor's patients, with counts of the studies they may see only."""
    listed = _list_referred_patients(db, query, scope)
    if listed is not None:
        return listed
    return _list_patients_of_visible_studies(db, query, scope, break_glass_patients(db, scope))


def _list_referred_patients(db, query, scope):
    """Read a referring doctor's patients from cached_referrals, along its index for the sort; None when they
    hold a live break-glass grant (their list is then grouped from their visible studies).

    The filters are tested as the doctor sees each patient (see
    referred_filter_condition). The page's statement also counts the patients
    and the live grants (each subquery runs once); with a date range, which
    keeps few patients, it counts them in a window instead.
    """
    condition, params = "p.referring_physician_key = ?", [scope.referring_key]
    search = search_condition(query.search)
    if search:
        condition, params = f"{condition} AND {search[0]}", [*params, *search[1]]
    if query.has_study_filter:
        kept, kept_params = referred_filter_condition(query, scope)
        condition, params = f"{condition} AND {kept}", [*params, *kept_params]
    count = f"SELECT COUNT(*) FROM cached_referrals p WHERE {condition}"
    grants = "SELECT COUNT(*) FROM break_glass_grants WHERE user_id = ? AND expires_at > ?"
    after, after_params = query.after_condition()
    if query.date_to:
        # A date range keeps few of the doctor's patients: counted in a window, its test is run once.
        rows = db.query(
            f"SELECT p.*, ({grants}) AS grants FROM (SELECT {query.patient_fields}, COUNT(*) OVER () AS total "
            f"FROM cached_referrals p WHERE {condition}) p WHERE {after} {query.order_by()} LIMIT ? OFFSET ?",
            [scope.user_id, scope.now, *params, *after_params, query.per_page, query.offset],
        )
    else:
        rows = db.query(
            f"SELECT {query.patient_fields}, ({count}) AS total, ({grants}) AS grants "
            f"FROM cached_referrals p WHERE {condition} AND {after} {query.order_by()} LIMIT ? OFFSET ?",
            [*params, scope.user_id, scope.now, *params, *after_params, query.per_page, query.offset],
        )
    if not rows:
        # Past the last page: the page says nothing of the total or the grants.
        if break_glass_patients(db, scope):
            return None
        return [], db.query_value(count, params)
    if rows[0]["grants"]:
        return None
    page = [{key: value for key, value in row.items() if key not in ("total", "grants")} for row in rows]
    return page, rows[0]["total"]


def referred_filter_condition(query, scope):
    """Return (SQL condition on a row `p` of cached_referrals, params) for the modality and date filters, on the
    referring doctor's own studies of the patient: a modality alone or a first date alone on the modalities and
    last study date the row holds, and a date range (with a modality or not) on the doctor's studies in it, which
    one index holds (cached_studies_referring_patient)."""
    if modality_only(query) or since_only(query):
        return filter_condition(query)
    condition, params = study_filter_condition(query, "s")
    return (f"p.orthanc_id IN (SELECT s.patient_orthanc_id FROM cached_studies s "
            f"WHERE s.referring_physician_key = ? AND {condition})", [scope.referring_key, *params])


def _list_patients_of_visible_studies(db, query, scope, granted):
    """List patients grouped from the studies the scope may see (granted: its break_glass_patients), with their
    total, in one statement: the groups are counted in a window, and the page's patients joined after."""
    source, source_params = visible_studies(scope, granted)
    column, _ = SORTS[query.sort]
    search = search_condition(query.search)
    # The patient rows are joined to the studies only when the search or the sort needs them.
    join, where, where_params = "", "1 = 1", []
    if search or column != "last_study_date":
        join = "JOIN cached_patients p ON p.orthanc_id = v.patient_orthanc_id"
    if search:
        where, where_params = search
    sort_value = "" if column == "last_study_date" else f", MAX(p.{column}) AS {column}"
    having, having_params = "1 = 1", []
    if query.has_study_filter:
        condition, having_params = study_filter_condition(query, alias="v")
        having = f"MAX(CASE WHEN {condition} THEN 1 ELSE 0 END) = 1"
    grouped = f"""
        SELECT v.patient_orthanc_id AS orthanc_id, MAX(v.study_date) AS last_study_date, COUNT(*) AS study_count,
            MAX(v.first_seen_at) AS last_arrival_at, GROUP_CONCAT(v.modalities) AS study_modalities {sort_value}
        FROM {source} v
        {join}
        WHERE {where}
        GROUP BY v.patient_orthanc_id
        HAVING {having}
    """
    params = [*source_params, *where_params, *having_params]
    after, after_params = query.after_condition(alias="g")
    rows = db.query(
        f"""SELECT p.orthanc_id, p.patient_id, p.patient_name, p.name_key, p.patient_id_key, p.birth_date, p.sex,
            g.last_study_date, g.study_count, g.last_arrival_at, g.study_modalities, g.total
        FROM (SELECT * FROM (SELECT g.*, COUNT(*) OVER () AS total FROM ({grouped}) g) g
            WHERE {after} {query.order_by('g')} LIMIT ? OFFSET ?) g
        JOIN cached_patients p ON p.orthanc_id = g.orthanc_id
        {query.order_by('g')}""",
        [*params, *after_params, query.per_page, query.offset],
    )
    total = page_total(db, query, rows, f"SELECT COUNT(*) FROM ({grouped}) g", params)
    patients = [{key: value for key, value in row.items() if key not in ("study_modalities", "total")}
                for row in rows]
    # The studies' modalities come joined by commas ("CT,MR,CT"): the patient's are the distinct ones, sorted.
    return [seen_patient(patient, {**patient, "modalities": ",".join(sorted(modality_set(row["study_modalities"])))})
            for patient, row in zip(patients, rows)], total


def patient_details(db, patient_ids):
    """Return the cached rows of some patients: who they are, without what is derived from their studies."""
    if not patient_ids:
        return []
    marks = ", ".join("?" for _ in patient_ids)
    return db.query(
        f"""
        SELECT orthanc_id, patient_id, patient_name, name_key, patient_id_key, birth_date, sex
        FROM cached_patients
        WHERE orthanc_id IN ({marks})
        """,
        list(patient_ids),
    )


def seen_patient(patient, summary):
    """Return a patient row whose counts, dates and modalities are those of a summary of the studies seen."""
    return {
        **patient,
        "study_count": summary["study_count"],
        "last_study_date": summary["last_study_date"],
        "modalities": summary["modalities"],
        "last_arrival_at": aggregated_datetime(summary["last_arrival_at"]),
    }


def patients_as_seen(db, patient_ids, scope):
    """Return patient rows whose counts, dates and modalities come from the studies the scope may see."""
    if not patient_ids:
        return []
    visible, params = visible_study_condition(scope)
    marks = ", ".join("?" for _ in patient_ids)
    studies = db.query(
        f"""
        SELECT s.patient_orthanc_id, s.study_date, s.modalities, s.first_seen_at
        FROM cached_studies s
        WHERE s.patient_orthanc_id IN ({marks})
        AND {visible}
        """,
        [*patient_ids, *params],
    )
    by_patient = {}
    for study in studies:
        by_patient.setdefault(study["patient_orthanc_id"], []).append(study)
    return [seen_patient(patient, study_summary(by_patient[patient["orthanc_id"]]))
            for patient in patient_details(db, patient_ids) if patient["orthanc_id"] in by_patient]


def has_new_studies(row, since):
    """Tell whether a patient row's newest visible study arrived after since (None: nothing is new)."""
    return bool(since and row["last_arrival_at"] and row["last_arrival_at"] > since)
