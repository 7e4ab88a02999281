"""Ollama analysis against a fake Ollama server on 127.0.0.1: good answers merge, failures fall back."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ml_lib.diffusion.errors import ConfigError
from ml_lib.diffusion.prompt.ollama import OllamaAnalyzer

needs_ollama = pytest.mark.skipif(
    importlib.util.find_spec("ollama") is None, reason='pip install "ml-lib[ollama]"'
)

GOOD = {
    "content_type": "concept_art",
    "confidence": 0.9,
    "aspect": "wide",
    "subjects": [{"label": "Dragon", "count": 2}],
    "styles": ["epic fantasy"],
    "moods": ["ominous"],
    "lighting": ["rim light"],
    "nsfw": False,
    "language": "en",
}


@dataclass
class FakeOllama:
    """What the fake server answers: ``content`` (the model's text), a raw ``body``, a ``delay`` or a ``status``."""

    content: str = json.dumps(GOOD)
    body: bytes | None = None
    delay: float = 0.0
    status: int = 200
    requests: list[dict] = field(default_factory=list)


@pytest.fixture
def fake() -> Iterator[tuple[FakeOllama, str]]:
    state = FakeOllama()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            state.requests.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            if state.delay:
                time.sleep(state.delay)
            body = state.body
            if body is None:
                message = {"role": "assistant", "content": state.content}
                body = json.dumps(
                    {"model": "fake", "created_at": "2026-01-01T00:00:00Z", "message": message, "done": True}
                ).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the client gave up (timeout test)
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


PROMPT = "two dragons over a burning castle, epic"


@needs_ollama
def test_good_answer_is_merged_over_the_rules(fake: tuple[FakeOllama, str]) -> None:
    state, host = fake
    analysis = OllamaAnalyzer("fake-model", host=host, timeout=5).analyze(PROMPT)
    assert analysis.source == "ollama"
    assert (analysis.content_type, analysis.content_confidence) == ("concept_art", 0.9)
    assert (analysis.aspect.orientation, analysis.aspect.source) == ("wide", "model")
    assert [(s.label, s.count) for s in analysis.subjects] == [("dragon", 2)]
    assert "epic fantasy" in {c.label for c in analysis.styles}
    assert "ominous" in {c.label for c in analysis.moods}
    request = state.requests[0]
    assert request["path"] == "/api/chat"
    assert request["body"]["model"] == "fake-model" and request["body"]["stream"] is False
    assert request["body"]["format"]["properties"]["content_type"]["enum"][0] == "photo"
    assert request["body"]["messages"][-1]["content"] == PROMPT


@needs_ollama
def test_explicit_ratio_beats_the_model(fake: tuple[FakeOllama, str]) -> None:
    _, host = fake
    analysis = OllamaAnalyzer(host=host, timeout=5).analyze(PROMPT + " --ar 9:16")
    assert (analysis.aspect.orientation, analysis.aspect.source) == ("tall", "ratio")


@needs_ollama
@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (dict(content="this is not json"), "not JSON"),
        (dict(content=json.dumps({**GOOD, "content_type": "hologram"})), "breaks the schema at content_type"),
        (dict(content=json.dumps({**GOOD, "confidence": 3})), "breaks the schema at confidence"),
        (dict(content=json.dumps([1, 2])), "breaks the schema"),
        (dict(body=b"<html>oops</html>"), "malformed response"),
        (dict(status=500, body=b'{"error": "model crashed"}'), "model crashed"),
        (dict(status=404, body=b'{"error": "model not found"}'), "model not found"),
        (dict(delay=1.5), "no answer within 0.5 s"),
    ],
)
def test_failures_fall_back_to_the_rules_with_a_logged_reason(
    fake: tuple[FakeOllama, str], setup: dict, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    state, host = fake
    for key, value in setup.items():
        setattr(state, key, value)
    with caplog.at_level(logging.WARNING, logger="ml_lib.diffusion.prompt.ollama"):
        analysis = OllamaAnalyzer(host=host, timeout=0.5).analyze(PROMPT)
    assert analysis.source == "rules"
    assert analysis.content_type != "concept_art" or analysis.content_confidence != 0.9
    assert any(reason in note for note in analysis.notes), analysis.notes
    assert any(reason in record.getMessage() for record in caplog.records)


@needs_ollama
def test_no_server_falls_back() -> None:
    import socket

    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    analysis = OllamaAnalyzer(host=f"http://127.0.0.1:{port}", timeout=2).analyze("a cat")
    assert analysis.source == "rules" and analysis.content_type == "animal"
    assert "request failed" in analysis.notes[-1]


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ollama", None)  # import ollama → ImportError
    with pytest.raises(ConfigError, match=r'pip install "ml-lib\[ollama\]"'):
        OllamaAnalyzer().analyze("a cat")
