"""Test-wide safety: nothing may reach the network, and nothing writes outside temp folders."""

from __future__ import annotations

import os
import tempfile

# Set before any test module imports huggingface_hub / diffusers (they read these at import time).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="ml-diffusion-hf-"))
os.environ.setdefault("ML_DIFFUSION_HOME", tempfile.mkdtemp(prefix="ml-diffusion-home-"))
