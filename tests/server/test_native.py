"""The native API (/api/v1), interruption, CORS and the OpenAPI document, through the ASGI transport."""

from __future__ import annotations

import asyncio
from typing import Any

from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.server import create_app

from .conftest import Client, decode


def test_analyze_plan_generate_images_feedback(client: Client) -> None:
    analysis = client.post("/api/v1/analyze", json={"prompt": "a portrait of a woman, oil painting"})
    assert analysis.status_code == 200, analysis.text
    plan = client.post("/api/v1/plan", json={"prompt": "a red circle", "steps": 3, "seed": 5})
    assert plan.status_code == 200, plan.text
    decisions = plan.json()["decisions"]
    assert decisions and all("reason" in d and "source" in d for d in decisions)
    assert plan.json()["steps"] == 3
    gen = client.post("/api/v1/generate", json={"prompt": "a red circle", "steps": 3, "seed": 5})
    assert gen.status_code == 200, gen.text
    out = gen.json()
    gid = out["id"]
    assert len(gid) == 32 and out["seeds"] == [5] and len(out["images"]) == 1
    image = client.get(out["images"][0])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert decode_bytes(image.content).size == (64, 64)
    meta = client.get(f"/api/v1/images/{gid}").json()
    assert meta["id"] == gid and meta["prompt"] == "a red circle"
    rated = client.post(f"/api/v1/images/{gid}/feedback", json={"stars": 4, "tags": ["keep"]})
    assert rated.status_code == 200, rated.text
    listed = client.get("/api/v1/images", params={"min_stars": 4}).json()
    assert [e["id"] for e in listed] == [gid] and listed[0]["stars"] == 4 and listed[0]["tags"] == ["keep"]
    bad = client.post(f"/api/v1/images/{gid}/feedback", json={"stars": 9})
    assert bad.status_code == 422 and "9" in bad.json()["detail"]


def decode_bytes(data: bytes) -> Any:
    import base64

    return decode(base64.b64encode(data).decode())


def test_images_refuse_bad_ids_and_indexes(client: Client) -> None:
    for url in (
        "/api/v1/images/..%2F..%2Fetc%2Fpasswd",
        "/api/v1/images/" + "0" * 32,
        "/api/v1/images/abc/0",
    ):
        r = client.get(url)
        assert r.status_code == 404, (url, r.text)
    gid = client.post("/api/v1/generate", json={"prompt": "a dot", "steps": 2}).json()["id"]
    assert client.get(f"/api/v1/images/{gid}/5").status_code == 404
    assert client.get(f"/api/v1/images/{gid}/-1").status_code == 404


def test_native_rejects_unknown_fields_and_limits(client: Client) -> None:
    r = client.post("/api/v1/generate", json={"prompt": "x", "wat": 1})
    assert r.status_code == 422 and "wat" in r.json()["detail"]
    r = client.post("/api/v1/plan", json={"prompt": "x", "width": 99999})
    assert r.status_code == 422 and "width" in r.json()["detail"]


def test_models_and_openapi(client: Client) -> None:
    models = client.get("/api/v1/models", params={"kind": "checkpoint"}).json()
    assert any(m["name"] == "demo" for m in models)
    assert client.post("/api/v1/models/scan").status_code == 200
    doc = client.get("/openapi.json").json()
    assert {"/sdapi/v1/txt2img", "/sdapi/v1/png-info", "/api/v1/generate", "/api/v1/plan"} <= set(
        doc["paths"]
    )


def test_interrupt_stops_a_running_generation(client: Client) -> None:
    async def scenario() -> tuple[Any, list[dict[str, Any]]]:
        body = {"prompt": "a long one", "steps": 60, "seed": 1, "width": 64, "height": 64}
        task = asyncio.ensure_future(client.client.post("/sdapi/v1/txt2img", json=body))
        seen: list[dict[str, Any]] = []
        for _ in range(400):  # bounded: at most ~20 s
            await asyncio.sleep(0.05)
            p = (await client.client.get("/sdapi/v1/progress")).json()
            if p["state"]["sampling_step"] >= 2:
                seen.append(p)
                break
        assert (await client.client.post("/sdapi/v1/interrupt")).json() == {}
        return await asyncio.wait_for(task, 60), seen

    response, seen = client.loop.run_until_complete(scenario())
    assert seen and 0 < seen[0]["progress"] < 1 and seen[0]["state"]["sampling_steps"] == 60
    assert seen[0]["state"]["job"] == "txt2img"
    assert response.status_code == 409, response.text
    after = client.get("/sdapi/v1/progress").json()
    assert after["state"]["job_count"] == 0
    ok = client.post("/sdapi/v1/txt2img", json={"prompt": "after", "steps": 2, "width": 64, "height": 64})
    assert ok.status_code == 200  # the worker keeps serving


def test_cors_only_when_asked(generator: ImageGenerator) -> None:
    preflight = {"Origin": "http://example.org", "Access-Control-Request-Method": "POST"}
    plain = Client(create_app(generator), {})
    try:
        r = plain.request("OPTIONS", "/sdapi/v1/txt2img", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    finally:
        plain.loop.run_until_complete(plain.client.aclose())
        plain.loop.close()
    cors = Client(create_app(generator, cors_origins=("http://example.org",)), {})
    try:
        r = cors.request("OPTIONS", "/sdapi/v1/txt2img", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "http://example.org"
        r = cors.request("OPTIONS", "/sdapi/v1/txt2img", headers={**preflight, "Origin": "http://evil.test"})
        assert "access-control-allow-origin" not in r.headers
    finally:
        cors.loop.run_until_complete(cors.client.aclose())
        cors.loop.close()
