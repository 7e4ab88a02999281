"""The service loads the prompt analyzer's models when it starts, on its worker thread, not on the first
request."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from ml_lib.diffusion import facade
from ml_lib.diffusion.facade import ImageGenerator
from ml_lib.diffusion.server import create_app
from ml_lib.diffusion.settings import Settings

pytest.importorskip("fastapi")


def _recording_analyzer(seen: list[str]):  # type: ignore[no-untyped-def]
    def make(name: str):  # type: ignore[no-untyped-def]
        def analyze(prompt: str) -> None:
            seen.append(f"{name}: {prompt}")

        return analyze

    return make


@pytest.mark.parametrize(("analyzer", "expected"), [("use", ["use: a photo"]), ("ollama", [])])
def test_warm_up_analyses_once_with_a_local_analyzer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, analyzer: str, expected: list[str]
) -> None:
    seen: list[str] = []
    monkeypatch.setattr(facade, "make_analyzer", _recording_analyzer(seen))
    with ImageGenerator(Settings(home=tmp_path, model_roots=(), analyzer=analyzer)) as gen:
        gen.warm_up()
        assert seen == expected  # ollama's model lives in its own service: nothing to load here
        gen.analyze("a cat")
    assert seen[-1] == f"{analyzer}: a cat"


def _start_and_stop(app: object, started: threading.Event) -> None:
    """Run the app's startup, wait (bounded) until the warm-up has begun, then shut down."""

    async def run() -> None:
        async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
            assert await asyncio.to_thread(started.wait, 10)

    asyncio.run(run())


def test_server_start_warms_the_analyzer_on_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = threading.Event()
    threads: list[str] = []

    def warm_up() -> None:
        threads.append(threading.current_thread().name)
        ran.set()

    with ImageGenerator(Settings(home=tmp_path, model_roots=())) as gen:
        monkeypatch.setattr(gen, "warm_up", warm_up)
        _start_and_stop(create_app(gen), ran)
    assert threads and threads[0].startswith("ml-diffusion-worker")


def test_a_failed_warm_up_is_logged_and_the_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    began = threading.Event()

    def warm_up() -> None:
        began.set()
        raise OSError("weights unreadable")

    with ImageGenerator(Settings(home=tmp_path, model_roots=())) as gen:
        monkeypatch.setattr(gen, "warm_up", warm_up)
        with caplog.at_level(logging.WARNING, logger="ml_lib.diffusion.server.worker"):
            _start_and_stop(create_app(gen), began)
    assert "warming up the prompt analyzer failed: weights unreadable" in caplog.text
