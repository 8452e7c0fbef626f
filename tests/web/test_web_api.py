"""The routes behind the page: GET /, /static/..., GET /v1/me."""

from __future__ import annotations

from tests.conftest import Api


def test_the_page_and_its_assets_are_served_with_a_strict_policy(api: Api) -> None:
    r = api.client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["referrer-policy"] == "no-referrer"
    assert '<script type="module" src="/static/app.js">' in r.text
    for name, kind in [("app.js", "text/javascript"), ("style.css", "text/css"),
                       ("sw.js", "text/javascript")]:
        r = api.client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(kind)
    assert api.client.get("/static/sw.js").headers["service-worker-allowed"] == "/"


def test_static_paths_cannot_leave_the_folder(api: Api) -> None:
    for path in ("/static/../../api/web.py", "/static/%2e%2e/%2e%2e/api/web.py",
                 "/static/..%2f..%2fsettings.py", "/static/nope.js", "/static/"):
        r = api.client.get(path)
        assert r.status_code == 404, path
        assert r.json()["error"]["code"] == "not_found"


def test_me_names_the_user_of_a_token(api: Api) -> None:
    api.user("bob")
    token = api.req("POST", "/v1/users/bob/tokens").json()["token"]
    assert api.req("GET", "/v1/me", token=token).json() == {"user_id": "bob"}
    r = api.req("GET", "/v1/me")  # the API key is not a user
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert api.client.get("/v1/me").status_code == 401
    assert api.req("GET", "/v1/me", token="nope").status_code == 401
