"""OpenAPI document and Swagger UI, served by the app itself (no CDN)."""

from __future__ import annotations

import re


def test_openapi_document_describes_both_endpoints_and_their_errors(client):
    spec = client.get("/openapi.json").get_json()

    post = spec["paths"]["/jobs/"]["post"]
    get = spec["paths"]["/jobs/{event_id}/"]["get"]
    assert {"201", "400", "413", "415", "422"} <= set(post["responses"])
    assert {"200", "404"} <= set(get["responses"])
    assert "Location" in post["responses"]["201"]["headers"]
    schemas = spec["components"]["schemas"]
    assert {"JobCreate", "JobCreated", "Job", "Error"} <= set(schemas)
    assert schemas["JobCreate"]["properties"]["input_text"]["example"]


def test_swagger_ui_loads_only_assets_the_app_serves(client):
    page = client.get("/docs/")
    assert page.status_code == 200

    assets = re.findall(r'(?:src|href)="([^"]+)"', page.get_data(as_text=True))
    assert assets, "the page references no assets"
    for asset in assets:
        assert asset.startswith("/docs/assets/"), f"{asset} would need the internet"
        assert client.get(asset).status_code == 200, asset
