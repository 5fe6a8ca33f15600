"""Static files: versioned URLs cached for a year, the rest revalidated, the right types on every OS."""

import re

import pytest

from pacs_lite import create_app


@pytest.fixture
def web(tmp_path):
    """A test client of an app over a throwaway SQLite file."""
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}, instance_path=str(tmp_path / "i"))
    return app.test_client()


def test_pages_link_versioned_assets_that_browsers_keep_for_a_year(web):
    page = web.get("/auth/login").get_data(as_text=True)
    css = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{12})"', page).group(1)
    response = web.get(css)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000"
    response.close()


def test_static_files_do_not_vary_with_the_cookie_but_pages_do(web):
    page = web.get("/auth/login")  # sets the CSRF cookie, as before any login
    assert "Cookie" in page.headers.get("Vary", "")
    response = web.get("/static/css/app.css")
    response.close()
    assert response.status_code == 200 and "Cookie" not in response.headers.get("Vary", "")


def test_unversioned_assets_are_revalidated(web):
    response = web.get("/static/css/app.css")
    assert "max-age=0" in response.headers["Cache-Control"] and response.headers["ETag"]
    again = web.get("/static/css/app.css", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    response.close()
    again.close()


def test_the_version_changes_with_the_content(web, tmp_path):
    from pacs_lite.assets import content_hash

    first = tmp_path / "a.js"
    first.write_text("one")
    before = content_hash(str(first))
    first.write_text("two!")
    assert content_hash(str(first)) != before


def test_scripts_and_wasm_get_the_types_browsers_require(web):
    response = web.get("/static/js/api.js")
    assert response.headers["Content-Type"].startswith("text/javascript")
    response.close()
    import mimetypes

    assert mimetypes.guess_type("codec.wasm")[0] == "application/wasm"


def test_a_precompressed_file_goes_to_browsers_that_accept_gzip(web):
    import gzip

    from pacs_lite.resources import resource_path

    plain = resource_path("static") / "css" / "_gzip_test.css"
    plain.write_text("body { color: black; }\n" * 50)
    (plain.parent / "_gzip_test.css.gz").write_bytes(gzip.compress(plain.read_bytes()))
    try:
        zipped = web.get("/static/css/_gzip_test.css", headers={"Accept-Encoding": "gzip, deflate"})
        assert zipped.headers["Content-Encoding"] == "gzip"
        assert zipped.headers["Content-Type"].startswith("text/css")
        assert "Accept-Encoding" in zipped.headers["Vary"]
        assert gzip.decompress(zipped.data) == plain.read_bytes()
        raw = web.get("/static/css/_gzip_test.css", headers={"Accept-Encoding": "identity"})
        assert "Content-Encoding" not in raw.headers and raw.data == plain.read_bytes()
        zipped.close()
        raw.close()
    finally:
        plain.unlink()
        (plain.parent / "_gzip_test.css.gz").unlink()


def test_unknown_static_files_are_404(web):
    assert web.get("/static/nothing.js").status_code == 404
    assert web.get("/static/../pacs_lite/db.py").status_code == 404


def test_chunks_named_by_their_content_are_kept_for_a_year_other_files_revalidated(web):
    from pacs_lite.resources import resource_path

    folder = resource_path("static") / "css"
    chunk = folder / "chunk-ABCD2345.js"
    other = folder / "chunk-of-something.js"
    for path in (chunk, other):
        path.write_text("export const x = 1;\n")
    try:
        kept = web.get("/static/css/chunk-ABCD2345.js")
        assert kept.status_code == 200 and kept.headers["Cache-Control"] == "public, max-age=31536000"
        asked = web.get("/static/css/chunk-of-something.js")
        assert "max-age=0" in asked.headers["Cache-Control"]
        kept.close()
        asked.close()
    finally:
        chunk.unlink()
        other.unlink()
