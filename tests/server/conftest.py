"""One service over the embedded demo model per test module, driven through the ASGI transport."""

from __future__ import annotations

import asyncio
import base64
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from ml_lib.diffusion.facade import ImageGenerator  # noqa: E402
from ml_lib.diffusion.server import create_app  # noqa: E402
from ml_lib.diffusion.server.limits import ServerLimits  # noqa: E402
from ml_lib.diffusion.settings import Limits, Settings  # noqa: E402

KEY = "s3cret-key"


class Client:
    """A synchronous face over ``httpx.AsyncClient`` + ``ASGITransport`` on one event loop."""

    def __init__(self, app: Any, headers: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers)

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def settings_in(home: Path) -> Settings:
    """A home of its own, no model roots (the demo model is chosen), small limits to test against."""
    return Settings(
        home=home, model_roots=(), limits=Limits(max_side=1024, max_pixels=512 * 512, max_steps=60)
    )


@pytest.fixture(scope="module")
def generator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageGenerator]:
    gen = ImageGenerator(settings_in(tmp_path_factory.mktemp("server-home")))
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def client(generator: ImageGenerator) -> Iterator[Client]:
    limits = ServerLimits(max_body=2 * 1024 * 1024, generation=generator.settings.limits)
    app = create_app(generator, api_key=KEY, limits=limits)
    c = Client(app, {"X-API-Key": KEY})
    yield c
    c.close()


def png_b64(size: tuple[int, int] = (64, 64), color: str = "red", mode: str = "RGB") -> str:
    """A base64 PNG of one colour."""
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def decode(b64: str) -> Image.Image:
    """The image in a base64 string."""
    return Image.open(io.BytesIO(base64.b64decode(b64)))


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on 127.0.0.1 (an ephemeral port) in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):  # bounded: at most 10 s
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "the server did not start within 10 s"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive()
