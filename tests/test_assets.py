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
