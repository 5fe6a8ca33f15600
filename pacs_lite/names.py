"""DICOM person names (PN): the display form and the keys used to search and match them."""

import unicodedata


def fold(text):
    """Upper-case text with accents removed: "Müller" -> "MULLER"."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare).upper()


def search_key(text):
    """Fold text for searching: upper case, no accents, ^ and runs of spaces as one space."""
    return " ".join(fold(text).replace("^", " ").replace("=", " ").split())


def person_name_key(name):
    """Key a PN for matching: folded, ^ and spaces alike, empty trailing components and groups dropped.

    "house^gregory^^" and "HOUSE GREGORY" have the same key.
    """
    groups = [" ".join(group.replace("^", " ").split()) for group in (name or "").split("=")]
    while groups and not groups[-1]:
        groups.pop()
    return fold("=".join(groups))


def display_name(name):
    """Show a PN as people write it: "DOE^JOHN^A" -> "DOE, JOHN A"; other groups are dropped."""
    first_group = (name or "").split("=")[0]
    parts = [part.strip() for part in first_group.split("^")]
    family = parts[0] if parts else ""
    given = " ".join(p for p in parts[1:3] if p)
    prefix = parts[3] if len(parts) > 3 else ""
    suffix = parts[4] if len(parts) > 4 else ""
    shown = f"{family}, {given}" if family and given else family or given
    shown = " ".join(p for p in (prefix, shown, suffix) if p)
    if shown:
        return shown
    # A name written only in ideographic or phonetic characters.
    other_groups = [g for g in (name or "").split("=")[1:] if g.strip("^ ")]
    return display_name(other_groups[0]) if other_groups else ""
