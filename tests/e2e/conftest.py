"""End-to-end fixtures: one tiny seeded model written once per test run (tests/conftest.py keeps the network off)."""

from __future__ import annotations

import pytest

from ml_lib.diffusion.testing.tiny import TinyModelFiles, write_tiny_model


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFiles:
    """Tiny SD1 model as a diffusers folder, an A1111 single file and its ``.config/`` folder."""
    return write_tiny_model("sd1", tmp_path_factory.mktemp("tiny-sd1"))
