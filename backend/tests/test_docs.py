"""/docs and /redoc work offline: every asset they load is served by the service itself."""

import re

import pytest
from fastapi.testclient import TestClient

from app.core.config import get_settings

ASSET_URL = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]?([^'"\s)>]+)""")
CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets_and_the_service_serves_them(
    client: TestClient, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html
    assert "https://" not in html
    assert f"{get_settings().API_V1_STR}/openapi.json" in html
    assets = [url for url in ASSET_URL.findall(html) if url.endswith(tuple(CONTENT_TYPES))]
    scripts = [url for url in assets if url.endswith(".js")]
    assert scripts, html
    for url in assets:
        assert url.startswith("/static-docs/"), url
        served = client.get(url)
        assert served.status_code == 200, url
        content_type = served.headers["content-type"].split(";")[0]
        assert content_type in CONTENT_TYPES[url[url.rindex(".") :]], (url, content_type)
        assert len(served.content) > 100, url
    if page == "/docs":
        assert {url.rsplit("/", 1)[1] for url in assets} >= {
            "swagger-ui-bundle.js",
            "swagger-ui.css",
        }
        assert "/docs/oauth2-redirect" in html
    else:
        assert [url.rsplit("/", 1)[1] for url in scripts] == ["redoc.standalone.js"]


def test_swagger_oauth2_redirect_page_is_served(client: TestClient) -> None:
    response = client.get("/docs/oauth2-redirect")
    assert response.status_code == 200
    assert "oauth2" in response.text.lower()
    assert "https://" not in response.text


def test_openapi_declares_the_password_flow_at_the_login_route(client: TestClient) -> None:
    prefix = get_settings().API_V1_STR
    schemes = client.get(f"{prefix}/openapi.json").json()["components"]["securitySchemes"]
    [scheme] = schemes.values()
    assert scheme["flows"]["password"]["tokenUrl"] == f"{prefix}/auth/login"


def test_every_bearer_route_declares_its_security_in_openapi(client: TestClient) -> None:
    """GET /users/me reads the caller without FastAPI's dependency (api/v1/users.py): it still
    declares the bearer scheme, so Swagger's Authorize sends the token to it like the others."""
    paths = client.get(f"{get_settings().API_V1_STR}/openapi.json").json()["paths"]
    me = paths[f"{get_settings().API_V1_STR}/users/me"]
    assert me["get"]["security"] == me["patch"]["security"] == [{"OAuth2PasswordBearer": []}]
