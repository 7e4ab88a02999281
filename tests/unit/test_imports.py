"""The brain never imports torch: `import ml_lib.diffusion` and every pure room load with torch blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, pkgutil, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "diffusers", "transformers", "peft", "accelerate"}:
                raise ImportError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True
    )


def test_package_import_does_not_import_torch() -> None:
    proc = _run(
        """
        import ml_lib.diffusion as m
        assert "torch" not in sys.modules
        print(sorted(m.__all__))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "ImageGenerator" in proc.stdout


def test_every_pure_module_imports_with_torch_blocked() -> None:
    proc = _run(
        """
        import ml_lib.diffusion as root
        names = []
        for room in ("catalog", "planning", "output", "prompt", "learning", "imaging"):
            try:
                pkg = __import__(f"ml_lib.diffusion.{room}", fromlist=["x"])
            except ModuleNotFoundError:
                continue
            for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                __import__(info.name)
                names.append(info.name)
        for name in ("plan", "request", "result", "samplers", "settings", "errors", "db", "facade", "cli"):
            __import__(f"ml_lib.diffusion.{name}")
            names.append(name)
        print(len(names))
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip()) >= 15


def test_blocker_really_blocks() -> None:
    proc = _run("import torch")
    assert proc.returncode != 0
    assert "blocked import of torch" in proc.stderr
