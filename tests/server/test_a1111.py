"""A1111-compatible routes through the ASGI transport, on the embedded demo model."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from .conftest import KEY, Client, decode, png_b64


def test_txt2img_returns_base64_images_and_infotext(client: Client) -> None:
    body = {"prompt": "a red circle", "steps": 4, "seed": 7, "width": 64, "height": 64, "cfg_scale": 5,
            "sampler_name": "Euler a", "batch_size": 2, "some_unknown_field": {"x": 1}}  # fmt: skip
    r = client.post("/sdapi/v1/txt2img", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert len(out["images"]) == 2
    assert decode(out["images"][0]).size == (64, 64)
    assert "parameters" in decode(out["images"][0]).info  # the PNG carries its infotext
    info = json.loads(out["info"])
    assert info["seed"] == 7 and info["all_seeds"][0] == 7 and info["steps"] == 4
    assert info["sampler_name"] == "Euler a" and info["width"] == 64
    assert len(info["infotexts"]) == 2 and "Steps: 4" in info["infotexts"][0]
    assert "Seed: 7" in info["infotexts"][0] and info["infotexts"][0].startswith("a red circle")
    assert out["parameters"]["prompt"] == "a red circle"


def test_same_seed_same_image_and_png_info_round_trip(client: Client) -> None:
    body = {"prompt": "a blue square", "steps": 3, "seed": 11, "width": 64, "height": 64}
    first = client.post("/sdapi/v1/txt2img", json=body).json()
    again = client.post("/sdapi/v1/txt2img", json=body).json()
    assert decode(first["images"][0]).tobytes() == decode(again["images"][0]).tobytes()
    r = client.post("/sdapi/v1/png-info", json={"image": "data:image/png;base64," + first["images"][0]})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["info"] == json.loads(first["info"])["infotexts"][0]
    assert info["parameters"]["Prompt"] == "a blue square" and info["parameters"]["Seed"] == "11"
    assert info["items"]["parameters"] == info["info"]


def test_img2img_and_inpainting(client: Client) -> None:
    body: dict[str, Any] = {"prompt": "a green field", "init_images": [png_b64((80, 48), "green")],
                            "denoising_strength": 0.5, "steps": 4, "seed": 3, "width": 64, "height": 64,
                            "resize_mode": 1}  # fmt: skip
    r = client.post("/sdapi/v1/img2img", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert decode(out["images"][0]).size == (64, 64)
    assert "Denoising strength: 0.5" in json.loads(out["info"])["infotexts"][0]
    assert "init_images" not in out["parameters"]
    mask = png_b64((64, 64), "white", "L")
    r = client.post("/sdapi/v1/img2img", json={**body, "mask": mask, "mask_blur": 2, "inpainting_fill": 1})
    assert r.status_code == 200, r.text
    assert "Mask blur: 2" in json.loads(r.json()["info"])["infotexts"][0]


def test_inpainting_fill_is_honoured_as_a1111(client: Client) -> None:
    painted = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(painted).rectangle((16, 16, 47, 47), fill=255)
    buf = io.BytesIO()
    painted.save(buf, format="PNG")
    mask = base64.b64encode(buf.getvalue()).decode()
    body: dict[str, Any] = {"prompt": "a red circle", "init_images": [png_b64((64, 64), "green")], "mask": mask,
                            "denoising_strength": 0.8, "steps": 3, "seed": 5, "width": 64, "height": 64}  # fmt: skip
    for fill, label in ((0, "fill"), (1, None), (2, "latent noise"), (3, "latent nothing")):
        r = client.post("/sdapi/v1/img2img", json={**body, "inpainting_fill": fill})
        assert r.status_code == 200, r.text
        infotext = json.loads(r.json()["info"])["infotexts"][0]
        assert ("Masked content: " + label in infotext) if label else "Masked content" not in infotext
        assert "Inpaint area: Only masked" in infotext  # A1111 1.10's API default (inpaint_full_res)
    default = client.post("/sdapi/v1/img2img", json=body)  # A1111's API default is 0: fill
    assert "Masked content: fill" in json.loads(default.json()["info"])["infotexts"][0]
    bad = client.post("/sdapi/v1/img2img", json={**body, "inpainting_fill": 7})
    assert bad.status_code == 422 and "inpainting_fill" in bad.json()["detail"]


def test_lora_tag_in_prompt_unknown_lora_is_a_clear_error(client: Client) -> None:
    r = client.post("/sdapi/v1/txt2img", json={"prompt": "a cat <lora:nosuchlora:0.7>", "steps": 2})
    assert r.status_code in (404, 422), r.text
    assert "nosuchlora" in r.json()["detail"]


def test_listing_routes(client: Client) -> None:
    models = client.get("/sdapi/v1/sd-models").json()
    assert any(m["model_name"] == "demo" for m in models)
    samplers = {s["name"] for s in client.get("/sdapi/v1/samplers").json()}
    assert {"Euler a", "DPM++ 2M"} <= samplers
    assert {s["label"] for s in client.get("/sdapi/v1/schedulers").json()} >= {"Automatic", "Karras"}
    assert isinstance(client.get("/sdapi/v1/loras").json(), list)
    assert client.get("/sdapi/v1/embeddings").json()["skipped"] == {}
    assert client.get("/sdapi/v1/memory").json()["ram"]["total"] > 0
    progress = client.get("/sdapi/v1/progress").json()
    assert progress["progress"] == 0 and progress["state"]["job_count"] == 0
    assert client.post("/sdapi/v1/interrupt").status_code == 200
    assert client.post("/sdapi/v1/skip").status_code == 200
    assert client.post("/sdapi/v1/refresh-checkpoints").status_code == 200
    assert client.post("/sdapi/v1/refresh-loras").status_code == 200


def test_options_switch_model(client: Client) -> None:
    r = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "no-such-model", "other": 1})
    assert r.status_code == 404, r.text
    assert "no-such-model" in r.json()["detail"]
    for path in ("/etc/passwd", "../../outside", str(Path(__file__))):
        r = client.post("/sdapi/v1/options", json={"sd_model_checkpoint": path})
        assert r.status_code == 404, (path, r.text)
        body = {"prompt": "x", "steps": 2, "override_settings": {"sd_model_checkpoint": path}}
        assert client.post("/sdapi/v1/txt2img", json=body).status_code == 404
        assert client.post("/api/v1/generate", json={"prompt": "x", "model": path}).status_code == 404
    assert client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "demo"}).status_code == 200
    assert client.get("/sdapi/v1/options").json()["sd_model_checkpoint"] == "demo"
    out = client.post("/sdapi/v1/txt2img", json={"prompt": "a circle", "steps": 2, "width": 64, "height": 64})
    assert json.loads(out.json()["info"])["sd_model_name"] == "demo"


def test_bad_input_is_a_json_4xx(client: Client) -> None:
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/sdapi/v1/txt2img", {"prompt": "x", "width": 100000, "height": 64}, 422, "width"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "width": 1024, "height": 1024}, 422, "pixels"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "steps": 100000}, 422, "steps"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "batch_size": 64, "n_iter": 64}, 422, "batch"),
        ("/sdapi/v1/txt2img", {"prompt": "x" * 30000}, 422, "prompt"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "sampler_name": "Nope Sampler"}, 422, "Nope Sampler"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "steps": "many"}, 422, "steps"),
        ("/sdapi/v1/img2img", {"prompt": "x", "init_images": ["%%%not-base64%%%"]}, 400, "base64"),
        ("/sdapi/v1/img2img", {"prompt": "x", "init_images": ["aGVsbG8="]}, 400, "not an image"),
        ("/sdapi/v1/img2img", {"prompt": "x", "init_images": [png_b64((3000, 3000))]}, 400, "pixels"),
        ("/sdapi/v1/img2img", {"prompt": "x", "init_images": []}, 400, "init_images"),
        ("/sdapi/v1/png-info", {"image": "@@@"}, 400, "base64"),
        ("/sdapi/v1/txt2img", {"prompt": "x <lora:/etc/secret:1>"}, 422, "path"),
        ("/sdapi/v1/txt2img", {"prompt": "x", "negative_prompt": "<lora:../../up:1>"}, 422, "path"),
        ("/api/v1/generate", {"prompt": "x", "loras": [["C:\\w\\x", 1.0]]}, 422, "path"),
    ]
    for url, body, status, words in cases:
        r = client.post(url, json=body)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["detail"], (body, r.json())
    assert client.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0  # nothing was queued


def test_oversized_body_is_413(client: Client) -> None:
    big = b'{"prompt": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = client.post("/sdapi/v1/txt2img", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.json()["detail"]

    async def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: counted while read
        for _ in range(40):
            yield b"x" * 100_000

    r = client.post("/sdapi/v1/txt2img", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_api_key_is_required_on_every_route(client: Client) -> None:
    for method, url in [("GET", "/sdapi/v1/sd-models"), ("POST", "/sdapi/v1/txt2img"), ("GET", "/api/v1/images"),
                        ("GET", "/openapi.json"), ("GET", "/sdapi/v1/progress")]:  # fmt: skip
        for headers in ({"X-API-Key": ""}, {"X-API-Key": KEY + "x"}, {"X-API-Key": "wrong"}):
            r = client.request(method, url, headers=headers, json={"prompt": "x"})
            assert r.status_code == 401, (url, headers)
            assert "API key" in r.json()["detail"]
    assert client.get(
        "/sdapi/v1/samplers", headers={"X-API-Key": "", "Authorization": f"Bearer {KEY}"}
    ).is_success
    basic = base64.b64encode(f"user:{KEY}".encode()).decode()
    for auth, ok in ((f"Basic {basic}", True), ("Basic !!!", False), (f"Basic {basic}x", False)):
        r = client.get("/sdapi/v1/samplers", headers={"X-API-Key": "", "Authorization": auth})
        assert r.is_success is ok, auth


def test_lora_tag_and_controlnet_unit(client: Client) -> None:
    base = {"prompt": "a red circle", "steps": 3, "seed": 9, "width": 64, "height": 64}
    plain = client.post("/sdapi/v1/txt2img", json=base).json()
    with_lora = client.post("/sdapi/v1/txt2img", json={**base, "prompt": "a red circle <lora:dmoutline:0.8>"})
    assert with_lora.status_code == 200, with_lora.text
    infotext = json.loads(with_lora.json()["info"])["infotexts"][0]
    assert "<lora:dmoutline:0.8>" in infotext and "Lora hashes" in infotext
    assert decode(with_lora.json()["images"][0]).tobytes() != decode(plain["images"][0]).tobytes()
    unit = {"enabled": True, "module": "none", "model": "demo-controlnet [abc123]", "weight": 1.0,
            "image": png_b64((64, 64), "white"), "guidance_start": 0.0, "guidance_end": 1.0,
            "control_mode": "Balanced", "pixel_perfect": False}  # fmt: skip
    scripts = {"controlnet": {"args": [unit, {"enabled": False, "model": "None"}]}, "some-other-script": {}}
    r = client.post("/sdapi/v1/txt2img", json={**base, "alwayson_scripts": scripts})
    assert r.status_code == 200, r.text
    assert "ControlNet" in json.loads(r.json()["info"])["infotexts"][0]
    assert decode(r.json()["images"][0]).tobytes() != decode(plain["images"][0]).tobytes()
    missing = {"controlnet": {"args": [{**unit, "model": "no-such-controlnet"}]}}
    r = client.post("/sdapi/v1/txt2img", json={**base, "alwayson_scripts": missing})
    assert r.status_code == 404 and "no-such-controlnet" in r.json()["detail"], r.text
    pathy = {"controlnet": {"args": [{**unit, "model": "/srv/models/cn"}]}}
    r = client.post("/sdapi/v1/txt2img", json={**base, "alwayson_scripts": pathy})
    assert r.status_code == 422 and "path" in r.json()["detail"], r.text
    broken = {"controlnet": {"args": [{**unit, "image": "###"}]}}
    r = client.post("/sdapi/v1/txt2img", json={**base, "alwayson_scripts": broken})
    assert r.status_code == 400 and "base64" in r.json()["detail"]
