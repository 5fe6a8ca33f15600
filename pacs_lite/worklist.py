"""SQL for the worklist: patients found by name or PatientID, filtered, sorted and paged, from the cache.

Name search goes through cached_patient_words (one row per word of a name),
so "each typed word matches the start of a word of the name" is an index
range per word. Prefix ranges (word >= 'MUL' AND word < 'MUL' + U+10FFFF) need
no LIKE, so %, _ and * in a search are plain characters.

The query shape follows what is asked, so that an index serves every case:
- nothing to match: the unfiltered total is kept in sync_state, and the page
  is read in index order (a deep page finds its first row on the index alone);
- a search or filter: the matching patient ids are collected through indexes;
  few are then read by primary key and sorted, many are counted and the page
  found by walking the sort index and testing each patient (they come quickly).
Admins and radiologists read the derived columns of cached_patients. For a
referring doctor those columns would count studies they may not see, so their
patients are grouped from their visible studies instead (few, by nature) and
sorted in Python.
"""

from dataclasses import dataclass

from pacs_lite.cache import patient_count
from pacs_lite.names import search_key
from pacs_lite.visibility import visible_studies, visible_study_condition

TOP = "\U0010ffff"  # sorts after every character: the upper end of a prefix range
FEW_MATCHES = 2000  # up to this many: read them and sort; more: walk the sort index
DEEP_OFFSET = 1000  # from this offset on, find the page's first row on the index alone

# sort name -> (column of cached_patients, default order); each has an index ending in orthanc_id
SORTS = {
    "last_study_date": ("last_study_date", "desc"),
    "name": ("name_key", "asc"),
    "patient_id": ("patient_id_key", "asc"),
}
PATIENT_FIELDS = """p.orthanc_id, p.patient_id, p.patient_name, p.birth_date, p.sex, p.study_count,
    p.last_study_date, p.modalities"""


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

    @property
    def has_study_filter(self):
        """Tell whether the query filters on study modality or date."""
        return bool(self.modality or self.date_from or self.date_to)

    @property
    def offset(self):
        """Return how many rows come before the page."""
        return (self.page - 1) * self.per_page

    def order_by(self, alias="p"):
        """Return the ORDER BY clause of the query's sort."""
        column, _ = SORTS[self.sort]
        direction = "DESC" if self.order == "desc" else "ASC"
        return f"ORDER BY {alias}.{column} {direction}, {alias}.orthanc_id {direction}"


def search_words(text):
    """Split a search into folded words; commas count as spaces ("doe, john")."""
    return search_key(text.replace(",", " ")).split()


def prefix_range(text):
    """Return the bounds of the strings starting with text."""
    return [text, text + TOP]


def search_matches(text):
    """Return (SQL selecting `id`, params): patients whose name words start with every typed word, or whose
    PatientID starts with the text; None for no search."""
    words = sorted(search_words(text), key=len, reverse=True)  # the longest word is likely the rarest
    if not words:
        return None
    first, *others = words
    sql = "SELECT w0.patient_orthanc_id AS id FROM cached_patient_words w0 WHERE w0.word >= ? AND w0.word < ?"
    params = prefix_range(first[:64])
    for n, word in enumerate(others, 1):
        sql += (f" AND EXISTS (SELECT 1 FROM cached_patient_words w{n} WHERE w{n}.patient_orthanc_id = "
                f"w0.patient_orthanc_id AND w{n}.word >= ? AND w{n}.word < ?)")
        params += prefix_range(word[:64])
    sql += " UNION SELECT orthanc_id FROM cached_patients WHERE patient_id_key >= ? AND patient_id_key < ?"
    return sql, params + prefix_range(search_key(text))


def search_condition(text, alias="p"):
    """Return (SQL condition on one patient, params) for a search; None for no search."""
    words = search_words(text)
    if not words:
        return None
    parts, params = [], []
    for word in words:
        # A scalar subquery, not EXISTS: MariaDB turns EXISTS into a materialised IN of every matching word.
        parts.append(f"(SELECT 1 FROM cached_patient_words w WHERE w.patient_orthanc_id = {alias}.orthanc_id "
                     "AND w.word >= ? AND w.word < ? LIMIT 1) IS NOT NULL")
        params += prefix_range(word[:64])
    condition = f"(({' AND '.join(parts)}) OR ({alias}.patient_id_key >= ? AND {alias}.patient_id_key < ?))"
    return condition, params + prefix_range(search_key(text))


def study_filter_condition(query, alias="s"):
    """Return (SQL condition on one study, params) for the modality and date filters."""
    parts, params = [], []
    if query.date_from:
        parts.append(f"{alias}.study_date >= ?")
        params.append(query.date_from)
    if query.date_to:
        parts.append(f"{alias}.study_date <= ?")
        params.append(query.date_to)
    if query.modality:
        # modalities is "CT,MR"; the modality was checked to be [A-Z0-9]+, so it holds no LIKE wildcards.
        column = f"{alias}.modalities"
        parts.append(f"({column} = ? OR {column} LIKE ? OR {column} LIKE ? OR {column} LIKE ?)")
        params += [query.modality, f"{query.modality},%", f"%,{query.modality}", f"%,{query.modality},%"]
    return " AND ".join(parts) or "1 = 1", params


def matching_patients(query):
    """Return (SQL selecting `id`, params) of the patients a search and filters keep; None when nothing filters."""
    search = search_matches(query.search)
    if not query.has_study_filter:
        return search
    condition, params = study_filter_condition(query)
    if search is None:
        return f"SELECT DISTINCT s.patient_orthanc_id AS id FROM cached_studies s WHERE {condition}", params
    return (
        f"SELECT m.id FROM ({search[0]}) m WHERE EXISTS "
        f"(SELECT 1 FROM cached_studies s WHERE s.patient_orthanc_id = m.id AND {condition})",
        [*search[1], *params],
    )


def list_patients(db, query, scope):
    """Return (patient rows of the page, total) for a worklist query as the scope sees it."""
    if not scope.sees_everything:
        return _list_visible_patients(db, query, scope)
    matches = matching_patients(query)
    if matches is None:
        return _page_in_index_order(db, query), patient_count(db)
    sql, params = matches
    ids = [] if many_name_matches(db, query) else [
        row["id"] for row in db.query(f"{sql} LIMIT ?", [*params, FEW_MATCHES + 1])]
    if ids and len(ids) <= FEW_MATCHES:
        marks = ", ".join("?" for _ in ids)
        rows = db.query(
            f"SELECT {PATIENT_FIELDS} FROM cached_patients p WHERE p.orthanc_id IN ({marks}) "
            f"{query.order_by()} LIMIT ? OFFSET ?",
            [*ids, query.per_page, query.offset],
        )
        return rows, len(ids)
    total = db.query_value(f"SELECT COUNT(*) FROM ({sql}) m", params)
    if total == 0:
        return [], 0
    # Many matches: walk the sort index and test each patient; the page fills within a few rows.
    condition, condition_params = patient_condition(query)
    rows = db.query(
        f"SELECT {PATIENT_FIELDS} FROM cached_patients p WHERE {condition} {query.order_by()} LIMIT ? OFFSET ?",
        [*condition_params, query.per_page, query.offset],
    )
    return rows, total


def many_name_matches(db, query):
    """Tell cheaply whether every word of a search starts more than FEW_MATCHES name words.

    Collecting the ids of a broad search would sort and deduplicate them all first; one rare word
    is enough to keep the matches few.
    """
    words = search_words(query.search)
    for word in words:
        found = db.query_value(
            "SELECT COUNT(*) FROM (SELECT 1 FROM cached_patient_words WHERE word >= ? AND word < ? LIMIT ?) c",
            [*prefix_range(word[:64]), FEW_MATCHES + 1],
        )
        if found <= FEW_MATCHES:
            return False
    return bool(words)


def patient_condition(query, alias="p"):
    """Return (SQL condition on one patient, params) for the search and the filters."""
    parts, params = [], []
    search = search_condition(query.search, alias)
    if search:
        parts.append(search[0])
        params += search[1]
    if query.has_study_filter:
        condition, filter_params = study_filter_condition(query)
        parts.append(f"EXISTS (SELECT 1 FROM cached_studies s WHERE s.patient_orthanc_id = {alias}.orthanc_id "
                     f"AND {condition})")
        params += filter_params
    return " AND ".join(parts) or "1 = 1", params


def _page_in_index_order(db, query):
    """Read a page of all patients along the sort index."""
    if query.offset < DEEP_OFFSET:
        return db.query(
            f"SELECT {PATIENT_FIELDS} FROM cached_patients p {query.order_by()} LIMIT ? OFFSET ?",
            [query.per_page, query.offset],
        )
    column, _ = SORTS[query.sort]
    # The page's first row, found on the (covering) index alone, then the page from there.
    first = db.query_one(
        f"SELECT p.{column} AS sort_value, p.orthanc_id FROM cached_patients p {query.order_by()} LIMIT 1 OFFSET ?",
        [query.offset],
    )
    if first is None:
        return []
    before = "<" if query.order == "desc" else ">"
    return db.query(
        f"""
        SELECT {PATIENT_FIELDS}
        FROM cached_patients p
        WHERE p.{column} {before}= ? AND (p.{column} {before} ? OR p.orthanc_id {before}= ?)
        {query.order_by()}
        LIMIT ?
        """,
        [first["sort_value"], first["sort_value"], first["orthanc_id"], query.per_page],
    )


def _list_visible_patients(db, query, scope):
    """List patients grouped from the studies the scope may see, with counts of those studies only."""
    source, params = visible_studies(scope)
    where, where_params = "1 = 1", []
    search = search_condition(query.search)
    if search:
        where, where_params = search
    having, having_params = "1 = 1", []
    if query.has_study_filter:
        condition, having_params = study_filter_condition(query, alias="v")
        having = f"MAX(CASE WHEN {condition} THEN 1 ELSE 0 END) = 1"
    grouped = f"""
        SELECT v.patient_orthanc_id AS orthanc_id, MAX(v.study_date) AS last_study_date,
            MAX(p.name_key) AS name_key, MAX(p.patient_id_key) AS patient_id_key
        FROM {source} v
        JOIN cached_patients p ON p.orthanc_id = v.patient_orthanc_id
        WHERE {where}
        GROUP BY v.patient_orthanc_id
        HAVING {having}
    """
    found = db.query(grouped, [*params, *where_params, *having_params])
    # One read, sorted here: code-point order, as the binary collations of both databases sort.
    column, _ = SORTS[query.sort]
    found.sort(key=lambda row: (row[column], row["orthanc_id"]), reverse=query.order == "desc")
    ids = [row["orthanc_id"] for row in found[query.offset:query.offset + query.per_page]]
    rows = {row["orthanc_id"]: row for row in patients_as_seen(db, ids, scope)}
    return [rows[i] for i in ids if i in rows], len(found)


def patients_as_seen(db, patient_ids, scope):
    """Return patient rows whose counts, dates and modalities come from the studies the scope may see."""
    if not patient_ids:
        return []
    visible, params = visible_study_condition(scope)
    marks = ", ".join("?" for _ in patient_ids)
    studies = db.query(
        f"""
        SELECT s.patient_orthanc_id, s.study_date, s.modalities
        FROM cached_studies s
        WHERE s.patient_orthanc_id IN ({marks})
        AND {visible}
        """,
        [*patient_ids, *params],
    )
    patients = db.query(
        f"""
        SELECT orthanc_id, patient_id, patient_name, birth_date, sex
        FROM cached_patients
        WHERE orthanc_id IN ({marks})
        """,
        list(patient_ids),
    )
    seen = []
    for patient in patients:
        own = [s for s in studies if s["patient_orthanc_id"] == patient["orthanc_id"]]
        if not own:
            continue
        modalities = sorted({m for s in own for m in s["modalities"].split(",") if m})
        seen.append({
            **patient,
            "study_count": len(own),
            "last_study_date": max(s["study_date"] for s in own),
            "modalities": ",".join(modalities),
        })
    return seen


def patients_with_new_studies(db, patient_ids, scope, since):
    """Return the ids of the patients having a visible study that arrived after since."""
    if not patient_ids or since is None:
        return set()
    visible, params = visible_study_condition(scope)
    marks = ", ".join("?" for _ in patient_ids)
    rows = db.query(
        f"""
        SELECT DISTINCT s.patient_orthanc_id
        FROM cached_studies s
        WHERE s.patient_orthanc_id IN ({marks})
        AND s.first_seen_at > ?
        AND {visible}
        """,
        [*patient_ids, since, *params],
    )
    return {row["patient_orthanc_id"] for row in rows}
