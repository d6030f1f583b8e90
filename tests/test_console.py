"""The console at / without a browser: served by the app, nothing from other hosts."""

from __future__ import annotations

import re

from tests.conftest import fresh_app


def test_the_console_is_served_at_the_root_and_links_to_the_other_pages(client):
    response = client.get("/")

    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for link in ("/docs/", "/rq/", "/admin/"):
        assert f'href="{link}"' in page


def test_the_console_loads_only_what_the_app_serves(client):
    page = client.get("/").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="([^"#]+)"', page)

    assert assets and all(asset.startswith("/") and not asset.startswith("//") for asset in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code in {200, 302, 401, 403}, asset
        if asset.startswith("/static/"):
            assert not re.search(r"https?://", response.get_data(as_text=True)), asset


def test_the_page_asks_for_an_api_key_only_when_the_server_enforces_them(client, stack_env, tmp_path):
    locked = fresh_app({**stack_env, "DATABASE_URL": f"sqlite:///{tmp_path}/k.sqlite3", "API_KEYS": "k1"})

    assert 'data-needs-key="false"' in client.get("/").get_data(as_text=True)
    assert 'data-needs-key="true"' in locked.test_client().get("/").get_data(as_text=True)
