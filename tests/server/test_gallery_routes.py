"""What the gallery page needs from the service, through the ASGI transport: the page and its files, image
listing with metadata and filters, tags without a rating, reproduce, the progress stream's refusals."""

from __future__ import annotations

import json

from ml_lib.diffusion.server.page import STATIC

from .conftest import Client


def test_page_and_its_files_are_served(client: Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="static/gallery.js"' in page.text
    for name, kind in (("gallery.js", "javascript"), ("gallery.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert r.content == (STATIC / name).read_bytes()
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/%2e%2e/app.py").status_code == 404


def test_without_the_key_a_browser_is_asked_for_it(client: Client) -> None:
    r = client.get("/", headers={"X-API-Key": "wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")


def test_listing_filters_metadata_tags_and_reproduce(client: Client) -> None:
    made = {}
    for prompt, seed in (("a red circle", 21), ("a blue square", 22)):
        r = client.post("/api/v1/generate", json={"prompt": prompt, "steps": 3, "seed": seed, "width": 64})
        assert r.status_code == 200, r.text
        made[prompt] = r.json()["id"]
    red, blue = made["a red circle"], made["a blue square"]
    listed = {e["id"]: e for e in client.get("/api/v1/images").json()}
    entry = listed[red]
    assert entry["model"] == "demo" and entry["width"] == 64 and entry["steps"] == 3 and entry["seed"] == 21
    assert entry["sampler"] and entry["cfg_scale"] and entry["request"]["prompt"] == "a red circle"

    r = client.post(f"/api/v1/images/{red}/feedback", json={"tags": ["Too Dark"]})  # tags alone: no rating
    assert r.status_code == 200 and r.json()["kind"] == "tags" and r.json()["stars"] is None
    assert client.post(f"/api/v1/images/{blue}/feedback", json={"stars": 5}).status_code == 200
    assert client.post(f"/api/v1/images/{red}/feedback", json={}).status_code == 422  # nothing to record

    def ids(**params: object) -> set[str]:
        r = client.get("/api/v1/images", params=params)
        assert r.status_code == 200, r.text
        return {e["id"] for e in r.json()} & {red, blue}

    assert ids(tag="too dark") == {red}  # case-insensitive
    assert ids(min_stars=5) == {blue}
    assert ids(model="demo") == {red, blue}
    assert ids(model="other") == set()
    assert ids(tag="too dark", min_stars=1) == set()
    assert len(client.get("/api/v1/images", params={"limit": 1}).json()) == 1
    assert client.get("/api/v1/images", params={"tag": "x" * 65}).status_code == 422

    again = client.post(f"/api/v1/images/{red}/reproduce")
    assert again.status_code == 200, again.text
    out = again.json()
    assert out["identical"] is True and out["id"] != red and out["seeds"] == [21]
    assert client.post("/api/v1/images/" + "0" * 32 + "/reproduce").status_code == 404


def test_stream_refuses_bad_requests_before_streaming(client: Client) -> None:
    r = client.post("/api/v1/generate/stream", json={"prompt": "x", "width": 99999})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    assert "width" in r.json()["detail"]
    r = client.post("/api/v1/generate/stream", json={"prompt": "x", "model": "nosuchmodel"})
    assert r.status_code == 404 and "nosuchmodel" in r.json()["detail"]


def test_stream_events_through_asgi(client: Client) -> None:
    r = client.post("/api/v1/generate/stream", json={"prompt": "a dot", "steps": 2, "seed": 1})
    assert r.status_code == 200
    blocks = [b for b in r.text.split("\n\n") if b.startswith("event:")]
    events = [(b.split("\n")[0][6:].strip(), json.loads(b.split("\n")[1][5:])) for b in blocks]
    assert events[-1][0] == "done" and [d["step"] for n, d in events if n == "progress"][-1] == 2
