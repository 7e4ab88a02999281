"""The service over a real socket on 127.0.0.1 (ephemeral port), driven as an A1111 client drives it."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

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


def test_progress_streams_over_the_socket(base_url: str) -> None:
    """The SSE events arrive while the job runs (not buffered to the end), each step once, with a preview."""
    body = {"prompt": "a blue square", "steps": 10, "seed": 2, "width": 64, "height": 64}
    events: list[tuple[str, dict[str, Any]]] = []
    running_at_first_step = ""
    with (
        httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=120) as http,
        http.stream("POST", "/api/v1/generate/stream", json=body) as response,
    ):
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        name = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line[5:])))
                if name == "progress" and events[-1][1]["step"] == 1:  # is the job still running?
                    running_at_first_step = http.get("/sdapi/v1/progress").json()["state"]["job"]
    assert running_at_first_step == "generate"  # events arrive as it runs, not buffered to the end
    names = [n for n, _ in events]
    assert names[-1] == "done" and "error" not in names
    steps = [d["step"] for n, d in events if n == "progress" and d["step"]]
    assert steps == sorted(set(steps)) and steps[-1] == 10 and steps[0] == 1
    preview = next(d["preview"] for n, d in events if n == "progress" and d["preview"])
    assert preview.startswith("data:image/png;base64,")
    png = base64.b64decode(preview.partition(",")[2])
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (64, 64)
    done = events[-1][1]
    assert len(done["id"]) == 32 and done["seeds"] == [2] and done["plan"]["steps"] == 10
    with httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=30) as http:
        assert http.get(done["images"][0]).content.startswith(b"\x89PNG")


def test_a1111_progress_polling_sees_the_preview(base_url: str) -> None:
    """As an A1111 UI or bot does: poll /progress while txt2img runs; current_image is a base64 PNG."""
    body = {"prompt": "a green circle", "steps": 12, "seed": 4, "width": 64, "height": 64}
    seen: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=120) as http:
        result: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: result.update(r=http.post("/sdapi/v1/txt2img", json=body)))
        worker.start()
        for _ in range(1200):  # bounded: at most ~60 s
            p = http.get("/sdapi/v1/progress").json()
            if p["current_image"]:
                seen.append(p)
            if not worker.is_alive():
                break
            time.sleep(0.05)
        worker.join(timeout=120)
    assert result["r"].status_code == 200, result["r"].text
    assert seen, "no progress with a preview was seen while the job ran"
    assert seen[0]["state"]["job"] == "txt2img" and 0 < seen[0]["progress"] <= 1
    with Image.open(io.BytesIO(base64.b64decode(seen[0]["current_image"]))) as image:
        assert image.format == "PNG" and image.size == (64, 64)
    with httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=30) as http:
        skipped = http.get("/sdapi/v1/progress", params={"skip_current_image": True}).json()
    assert skipped["current_image"] is None


def test_a_stream_client_that_goes_away_cancels_its_job(base_url: str) -> None:
    body = {"prompt": "a long one", "steps": 60, "seed": 9, "width": 64, "height": 64}
    with httpx.Client(base_url=base_url, headers={"X-API-Key": KEY}, timeout=120) as http:
        before = len(http.get("/api/v1/images", params={"limit": 1000}).json())
        with http.stream("POST", "/api/v1/generate/stream", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("step", 0) >= 1:
                    break  # leave after the first step: the connection closes
        state: dict[str, Any] = {}
        for _ in range(600):  # bounded: at most ~30 s
            state = http.get("/sdapi/v1/progress").json()["state"]
            if state["job_count"] == 0:
                break
            time.sleep(0.05)
        assert state["job_count"] == 0
        assert len(http.get("/api/v1/images", params={"limit": 1000}).json()) == before  # nothing recorded
