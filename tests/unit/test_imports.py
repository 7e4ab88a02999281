"""The brain never imports torch: `import ml_lib.diffusion` and every pure room load with torch blocked.

The rooms (subpackages) and top-level modules of ml_lib.diffusion are listed here exactly: adding, renaming
or removing one fails until these lists are updated (and the new room is placed as pure or not).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import textwrap

import ml_lib.diffusion

#: Every subpackage of ml_lib.diffusion.
ROOMS = frozenset(
    {
        "prompt", "catalog", "resolve", "planning", "learning", "output", "imaging", "engine", "cli",
        "testing", "demo", "server", "batch",
    }
)  # fmt: skip
#: Every top-level module of ml_lib.diffusion.
MODULES = frozenset(
    {
        "_assets",
        "_codec",
        "_files",
        "_executing",
        "_recording",
        "_reproducing",
        "_sqlite",
        "db",
        "errors",
        "facade",
        "plan",
        "plan_parts",
        "prompt_schedule",
        "request",
        "result",
        "samplers",
        "settings",
    }
)
#: Rooms whose every module imports with torch, diffusers and transformers blocked.
PURE_ROOMS = frozenset(
    {
        "prompt",
        "catalog",
        "resolve",
        "planning",
        "learning",
        "output",
        "imaging",
        "demo",
        "cli",
        "server",
        "batch",
    }
)
#: Top-level modules that import with them blocked (all of them).
PURE_MODULES = MODULES

BLOCKER = textwrap.dedent(
    """
    import importlib, importlib.abc, json, pkgutil, sys

    BLOCKED = {"torch", "diffusers", "transformers", "peft", "accelerate"}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Block())
    """
)


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True
    )


def test_rooms_and_modules_are_exactly_the_listed_ones() -> None:
    found = list(pkgutil.iter_modules(ml_lib.diffusion.__path__))
    assert {m.name for m in found if m.ispkg} == ROOMS
    assert {m.name for m in found if not m.ispkg} == MODULES
    assert PURE_ROOMS <= ROOMS
    assert PURE_MODULES <= MODULES


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
        f"""
        import ml_lib.diffusion
        imported = {{}}
        for room in {sorted(PURE_ROOMS)!r}:
            pkg = importlib.import_module(f"ml_lib.diffusion.{{room}}")
            names = [info.name for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
            for name in names:
                importlib.import_module(name)
            imported[room] = names
        for module in {sorted(PURE_MODULES)!r}:
            importlib.import_module(f"ml_lib.diffusion.{{module}}")
            imported[module] = []
        leaked = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
        print(json.dumps({{"imported": imported, "leaked": leaked}}))
        """
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["leaked"] == []
    assert set(out["imported"]) == PURE_ROOMS | PURE_MODULES
    for room in PURE_ROOMS:
        assert out["imported"][room], f"ml_lib.diffusion.{room} has no modules"


def test_blocker_really_blocks() -> None:
    proc = _run("import torch")
    assert proc.returncode != 0
    assert "blocked import of torch" in proc.stderr
