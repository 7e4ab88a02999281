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
# One CPU thread, whatever the load: some kernels round differently with another count, and tests compare
# images bit for bit across runs (the thread policy itself is tested with injected loads).
os.environ.setdefault("ML_DIFFUSION_THREADS", "1")
