"""SQL for the worklist: patients found by name or PatientID, filtered, sorted and paged, from the cache.

Name search goes through cached_patient_words (one row per word of a name),
so "each typed word matches the start of a word of the name" is an index
range per word. Prefix ranges (word >= 'MUL' AND word < 'MUL' + U+10FFFF) need
no LIKE, so %, _ and * in a search are plain characters.

Admins and radiologists read the derived columns of cached_patients. For a
referring doctor those columns would count studies they may not see, so the
page is grouped from their visible studies instead (few, by nature).
"""

from dataclasses import dataclass

from pacs_lite.names import search_key
from pacs_lite.visibility import visible_study_condition

TOP = "\U0010ffff"  # sorts after every character: the upper end of a prefix range

# sort name -> (column of cached_patients, default order)
SORTS = {
    "last_study_date": ("last_study_date", "desc"),
    "name": ("name_key", "asc"),
    "patient_id": ("patient_id_key", "asc"),
}


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


def search_words(text):
    """Split a search into folded words; commas count as spaces ("doe, john")."""
    return search_key(text.replace(",", " ")).split()


def search_condition(text):
    """Return (SQL condition on cached_patients p, params) for a search, or None for no search."""
    words = search_words(text)
    if not words:
        return None
    name_parts, params = [], []
    for word in words:
        name_parts.append(
            "p.orthanc_id IN (SELECT patient_orthanc_id FROM cached_patient_words WHERE word >= ? AND word < ?)"
        )
        params += [word[:64], word[:64] + TOP]
    id_prefix = search_key(text)
    params += [id_prefix, id_prefix + TOP]
    return f"(({' AND '.join(name_parts)}) OR (p.patient_id_key >= ? AND p.patient_id_key < ?))", params


def study_filter_condition(query, alias="s"):
    """Return (SQL condition on cached_studies, params) for the modality and date filters."""
    parts, params = [], []
    if query.date_from:
        parts.append(f"{alias}.study_date >= ?")
        params.append(query.date_from)
    if query.date_to:
        parts.append(f"{alias}.study_date <= ?")
        params.append(query.date_to)
    if query.modality:
        parts.append(
            f"EXISTS (SELECT 1 FROM cached_series se WHERE se.study_orthanc_id = {alias}.orthanc_id AND se.modality = ?)"
        )
        params.append(query.modality)
    return " AND ".join(parts) or "1 = 1", params


def list_patients(db, query, scope):
    """Return (patient rows of the page, total) for a worklist query as the scope sees it."""
    if scope.sees_everything:
        return _list_all_patients(db, query)
    return _list_visible_patients(db, query, scope)


def _list_all_patients(db, query):
    """List patients from their stored derived columns (every study visible)."""
    where, params = ["1 = 1"], []
    search = search_condition(query.search)
    if search:
        where.append(search[0])
        params += search[1]
    if query.has_study_filter:
        condition, filter_params = study_filter_condition(query)
        where.append(f"EXISTS (SELECT 1 FROM cached_studies s WHERE s.patient_orthanc_id = p.orthanc_id AND {condition})")
        params += filter_params
        if query.date_from:
            # Cheap pruning: a patient whose last study is older cannot match.
            where.append("p.last_study_date >= ?")
            params.append(query.date_from)
    where_sql = " AND ".join(where)
    total = db.query_value(f"SELECT COUNT(*) FROM cached_patients p WHERE {where_sql}", params)
    column, _ = SORTS[query.sort]
    direction = "DESC" if query.order == "desc" else "ASC"
    rows = db.query(
        f"""
        SELECT p.orthanc_id, p.patient_id, p.patient_name, p.birth_date, p.sex, p.study_count,
            p.last_study_date, p.modalities
        FROM cached_patients p
        WHERE {where_sql}
        ORDER BY p.{column} {direction}, p.orthanc_id {direction}
        LIMIT ? OFFSET ?
        """,
        [*params, query.per_page, (query.page - 1) * query.per_page],
    )
    return rows, total


def _list_visible_patients(db, query, scope):
    """List patients grouped from the studies the scope may see, with counts of those studies only."""
    visible, params = visible_study_condition(scope)
    where = [visible]
    search = search_condition(query.search)
    if search:
        where.append(search[0])
        params = params + search[1]
    having, having_params = "1 = 1", []
    if query.has_study_filter:
        condition, having_params = study_filter_condition(query)
        having = f"MAX(CASE WHEN {condition} THEN 1 ELSE 0 END) = 1"
    grouped = f"""
        SELECT s.patient_orthanc_id AS orthanc_id, MAX(s.study_date) AS last_study_date,
            MAX(p.name_key) AS name_key, MAX(p.patient_id_key) AS patient_id_key
        FROM cached_studies s
        JOIN cached_patients p ON p.orthanc_id = s.patient_orthanc_id
        WHERE {' AND '.join(where)}
        GROUP BY s.patient_orthanc_id
        HAVING {having}
    """
    all_params = [*params, *having_params]
    total = db.query_value(f"SELECT COUNT(*) FROM ({grouped}) g", all_params)
    column, _ = SORTS[query.sort]
    direction = "DESC" if query.order == "desc" else "ASC"
    page = db.query(
        f"""
        SELECT g.orthanc_id FROM ({grouped}) g
        ORDER BY g.{column} {direction}, g.orthanc_id {direction}
        LIMIT ? OFFSET ?
        """,
        [*all_params, query.per_page, (query.page - 1) * query.per_page],
    )
    ids = [row["orthanc_id"] for row in page]
    rows = {row["orthanc_id"]: row for row in patients_as_seen(db, ids, scope)}
    return [rows[i] for i in ids if i in rows], total


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
