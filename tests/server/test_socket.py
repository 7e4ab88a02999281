"""The service over a real socket on 127.0.0.1 (ephemeral port), driven as an A1111 client drives it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.server import create_app

from .conftest import KEY, serving


@pytest.fixture(scope="module")
def base_url(generator: ImageGenerator) -> Iterator[str]:
    with serving(create_app(generator, api_key=KEY)) as url:
        yield url


def test_a1111_client_sequence(base_url: str) -> None:
    auth = httpx.BasicAuth("user", KEY)  # as webuiapi sends --api-auth credentials
    with httpx.Client(base_url=base_url, auth=auth, timeout=60) as http:
        first = http.get("/sdapi/v1/options")
        assert first.status_code == 200, first.text
        models = http.get("/sdapi/v1/sd-models").json()
        title = next(m["title"] for m in models if m["model_name"] == "demo")
        assert http.post("/sdapi/v1/options", json={"sd_model_checkpoint": title}).status_code == 200
        assert "Euler a" in {s["name"] for s in http.get("/sdapi/v1/samplers").json()}
        body = {"prompt": "a yellow star", "negative_prompt": "blurry", "steps": 3, "seed": 42, "width": 64,
                "height": 64, "cfg_scale": 6, "sampler_name": "Euler a", "scheduler": "Automatic",
                "batch_size": 1, "n_iter": 1, "send_images": True, "save_images": False,
                "override_settings": {}, "alwayson_scripts": {}, "restore_faces": False}  # fmt: skip
        r = http.post("/sdapi/v1/txt2img", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        info = json.loads(out["info"])
        assert info["seed"] == 42 and info["sd_model_name"] == "demo"
        png = base64.b64decode(out["images"][0])
        assert png.startswith(b"\x89PNG")
        r = http.post("/sdapi/v1/png-info", json={"image": out["images"][0]})
        assert r.status_code == 200, r.text
        parsed = r.json()
        assert parsed["info"] == info["infotexts"][0]
        assert parsed["parameters"]["Prompt"] == "a yellow star"
        assert parsed["parameters"]["Negative prompt"] == "blurry"
        assert parsed["parameters"]["Seed"] == "42" and parsed["parameters"]["Steps"] == "3"
        assert http.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0
    assert httpx.get(f"{base_url}/sdapi/v1/options", timeout=10).status_code == 401


def test_serve_is_a_cli_verb() -> None:
    from typer.testing import CliRunner

    from ml_lib.diffusion.cli import build_app

    result = CliRunner().invoke(build_app(), ["serve", "--help"])
    assert result.exit_code == 0
    assert all(option in result.output for option in ("--host", "--port", "--api-key", "--cors-origin"))
