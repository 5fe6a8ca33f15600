"""Find the files that ship beside the code: templates/, static/, schema.sql.

In a source checkout (and an editable install) they sit at the top of the
repository; a wheel carries them inside the package (see setup.cfg).
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_path(name):
    """Return the path of a shipped file or folder, from the wheel or the checkout."""
    inside = PACKAGE_DIR / name
    if inside.exists():
        return inside
    return PACKAGE_DIR.parent / name
