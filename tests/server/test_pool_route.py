"""The service's requests share one model pool: the second generation is a hit, and /api/v1/pool says so."""

from __future__ import annotations

from .conftest import Client


def test_requests_share_the_pool(client: Client) -> None:
    for seed in (1, 2):
        r = client.post("/api/v1/generate", json={"prompt": "a red circle", "steps": 2, "seed": seed})
        assert r.status_code == 200, r.text
    stats = client.get("/api/v1/pool").json()
    assert stats["loads"] == 1 and stats["hits"] >= 1 and stats["pinned"] == 0
    assert stats["ram_bytes"] > 0 and stats["ram_budget"] > stats["ram_bytes"]


def test_serve_refuses_a_bad_pool_budget_in_one_line() -> None:
    from typer.testing import CliRunner

    from ml_lib.diffusion.cli import app

    result = CliRunner().invoke(app, ["serve", "--pool-budget", "lots"])
    assert result.exit_code == 1 and "not a size" in result.output
    assert "Traceback" not in result.output
