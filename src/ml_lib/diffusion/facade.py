"""ImageGenerator: wires the rooms together (analyse → plan → execute → write); no logic of its own."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog.hashing import HashCache
from .catalog.lora_resolve import resolve_lora
from .catalog.records import ModelKind
from .catalog.resolve import resolve_model
from .errors import ConfigError, MetadataError, RequestError
from .input_refs import store_inputs
from .plan import GenerationPlan, ModelRef
from .planning.embeddings import known_embeddings, with_embeddings
from .planning.prompt_loras import merge_lora_requests
from .prompt.analysis import PromptAnalysis
from .request import GenerationRequest
from .result import CancelToken, GenerationResult, PhaseTimings, StepInfo
from .settings import Settings

if TYPE_CHECKING:
    from .catalog.catalog import Catalog
    from .engine.pool import PipelinePool
    from .output.metadata import ImageMetadata
    from .planning.device import DeviceInfo
    from .planning.models import CheckpointChoice

__all__ = ["ImageGenerator"]

log = logging.getLogger(__name__)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"ml-lib v{version('ml-lib')}"
    except PackageNotFoundError:
        return "ml-lib"


class ImageGenerator:
    """The Python entry point: ``ImageGenerator().generate("a red fox in the snow", model=...)``.

    Heavy pieces (torch, the database, pipelines) are created on first use, not in the constructor.
    """

    def __init__(
        self, settings: Settings | None = None, *, device: str | None = None, pool_size: int = 1
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._device_pref = device
        self._pool_size = pool_size
        self._device: DeviceInfo | None = None
        self._pool: PipelinePool | None = None
        self._conn: sqlite3.Connection | None = None
        self._catalog: Catalog | None = None
        self._analyzer: Callable[[str], PromptAnalysis] | None = None

    # -- wiring ---------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            from .db import connect

            self._conn = connect(self.settings.db_path)
        return self._conn

    def device(self) -> DeviceInfo:
        """The compute device (detected once)."""
        if self._device is None:
            from .engine.device import detect_device

            self._device = detect_device(self._device_pref)
        return self._device

    def _pipelines(self) -> PipelinePool:
        if self._pool is None:
            from .engine.pool import PipelinePool

            self._pool = PipelinePool(self._pool_size)
        return self._pool

    def close(self) -> None:
        """Release pipelines and the database connection."""
        if self._pool is not None:
            self._pool.clear()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._catalog = None

    def __enter__(self) -> ImageGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -----------------------------------------------------------------------------
    def resolve_model(self, reference: str, *, config_dir: str | None = None) -> ModelRef:
        """Resolve a model path, catalog name or Hub id to a ModelRef (family, hash, config folder)."""
        return resolve_model(
            reference, config_dir=config_dir, hashes=HashCache(self._db()), catalog=self.catalog()
        )

    def catalog(self) -> Catalog:
        """The model catalog over the settings' model roots (``--model NAME`` resolves through it)."""
        if self._catalog is None:
            from .catalog.catalog import Catalog

            self._catalog = Catalog(self._db(), self.settings.model_roots)
        return self._catalog

    def analyze(self, prompt: str) -> PromptAnalysis:
        """What the prompt asks for: content type, styles, aspect … (by ``settings.analyzer``)."""
        if self._analyzer is None:
            self._analyzer = make_analyzer(self.settings.analyzer)
        return self._analyzer(prompt)

    def plan(self, request: GenerationRequest | str, **overrides: Any) -> GenerationPlan:
        """A fully resolved plan for ``request`` (a prompt string plus overrides also works).

        With ``auto`` (the default) a checkpoint is chosen from the catalog when none is named, and
        catalog LoRAs that fit the prompt are recommended.
        """
        from .planning.auto import auto_checkpoint, catalog_candidates, model_reference
        from .planning.planner import Planner

        req = _as_request(request, overrides)
        analysis = self.analyze(req.prompt)
        candidates = catalog_candidates(self.catalog(), _semantic_similarity()) if req.auto else None
        choice = auto_checkpoint(req, analysis, candidates)
        if not req.model and req.auto and choice is None:
            choice = self._builtin_choice(analysis)
            if choice is not None:  # the built-ins are catalogued now: their LoRA can be recommended too
                candidates = catalog_candidates(self.catalog(), _semantic_similarity())
        reference = model_reference(req, choice)
        if not reference:
            raise RequestError(
                "No model given and no catalogued checkpoint to choose from: pass --model PATH (a diffusers "
                "folder or .safetensors checkpoint), or set ML_DIFFUSION_MODELS and run `ml-diffusion models scan`."
            )
        model = self.resolve_model(reference, config_dir=req.config_dir)
        hashes, catalog = HashCache(self._db()), self.catalog()
        loras = tuple(
            resolve_lora(r.ref, r.weight, r.te_weight, catalog=catalog, hashes=hashes)
            for r in merge_lora_requests(req.prompt, req.loras)
        )
        inputs = store_inputs(req, self.settings.home / "inputs", catalog)
        plan = Planner(self.settings).plan(
            req, model, self.device(), loras, inputs, analysis=analysis, candidates=candidates,
            model_choice=choice,
        )  # fmt: skip
        embeddings = known_embeddings(catalog.find(kind=ModelKind.EMBEDDING))
        return with_embeddings(plan, embeddings, lambda path: hashes.sha256(Path(path)))

    def _builtin_choice(self, analysis: PromptAnalysis) -> CheckpointChoice | None:
        """The built-in demo model, for a request that names no model when the catalog offers none."""
        from .catalog.families import Family
        from .catalog.records import Status
        from .planning.models import choose_checkpoint

        catalog = self.catalog()
        catalog.scan((), builtins=True)  # the built-ins only: three entries, unchanged ones are not probed
        demo = catalog.find(kind=ModelKind.CHECKPOINT, family=Family.DEMO, statuses=(Status.OK,))
        choice = choose_checkpoint(analysis, demo)
        if choice is not None:
            log.info(
                "no checkpoint given or catalogued: using the built-in demo model %s", choice.record.path
            )
        return choice

    def generate(
        self,
        request: GenerationRequest | str,
        *,
        on_step: Callable[[StepInfo], None] | None = None,
        cancel: CancelToken | None = None,
        save: bool = True,
        **overrides: Any,
    ) -> GenerationResult:
        """Plan and execute ``request``; images are saved unless ``save=False``."""
        return self.execute(self.plan(request, **overrides), on_step=on_step, cancel=cancel, save=save)

    def execute(
        self,
        plan: GenerationPlan,
        *,
        on_step: Callable[[StepInfo], None] | None = None,
        cancel: CancelToken | None = None,
        save: bool = True,
    ) -> GenerationResult:
        """Run an existing plan (as from :meth:`plan` or read back from an image)."""
        from .engine.executor import execute

        t0 = time.perf_counter()
        pipe, _ = self._pipelines().get(plan.model, dtype=plan.dtype, device=plan.device)
        load = time.perf_counter() - t0
        out = execute(pipe, plan, on_step=on_step, cancel=cancel)
        t1 = time.perf_counter()
        paths = self._save(plan, out.images, plan.seeds) if save else ()
        timings = PhaseTimings(load, out.encode, out.denoise, out.decode, time.perf_counter() - t1)
        return GenerationResult(out.images, plan.seeds, plan, paths, timings)

    def reproduce(
        self, image: str | Path, *, output_dir: str | Path | None = None, save: bool = True
    ) -> GenerationResult:
        """Regenerate an image from the plan embedded in it (pixel-identical on the same device/versions)."""
        meta = self.info(image)
        if meta.plan is None:
            why = f" ({meta.plan_error})" if meta.plan_error else ""
            raise MetadataError(
                f"{image} carries no ml-diffusion plan{why}; "
                "only images written by ml-diffusion can be reproduced."
            )
        plan = meta.plan
        if output_dir is not None:
            plan = dataclasses.replace(plan, output_dir=str(output_dir))
        # The whole batch is regenerated (batching changes floating-point results); keep this image.
        seed = meta.parsed.seed if meta.parsed is not None and meta.parsed.seed in plan.seeds else plan.seed
        index = plan.seeds.index(seed)
        full = self.execute(plan, save=False)
        t0 = time.perf_counter()
        images = full.images[index : index + 1]
        paths = self._save(plan, images, (seed,)) if save else ()
        timings = dataclasses.replace(full.timings, save=time.perf_counter() - t0)
        return GenerationResult(images, (seed,), plan, paths, timings)

    def info(self, image: str | Path) -> ImageMetadata:
        """Metadata of an image written by us or by an A1111-compatible tool."""
        from .output.metadata import read_metadata

        return read_metadata(Path(image))

    # -- output -----------------------------------------------------------------------------------
    def _save(
        self, plan: GenerationPlan, images: tuple[Any, ...], seeds: tuple[int, ...]
    ) -> tuple[Path, ...]:
        from .output.infotext import format_infotext
        from .output.naming import NameContext
        from .output.writer import save_image

        now = datetime.now()
        plan_json = plan.to_json()
        paths = []
        for image, seed in zip(images, seeds, strict=True):
            text = format_infotext(plan, seed=seed, model_hash=plan.model.hash, version=_version())
            ctx = NameContext.from_plan(plan, seed=seed, now=now)
            paths.append(
                save_image(
                    image, Path(plan.output_dir), plan.name_template, ctx, text, plan_json, plan.image_format
                )
            )
        return tuple(paths)


def make_analyzer(name: str) -> Callable[[str], PromptAnalysis]:
    """The prompt analyzer called ``name``: "rules", "semantic" or "ollama"."""
    if name == "rules":
        from .prompt.analyzer import analyze_prompt

        return analyze_prompt
    if name == "semantic":
        from .prompt.semantic import SemanticAnalyzer

        return SemanticAnalyzer().analyze
    if name == "ollama":
        from .prompt.ollama import OllamaAnalyzer

        return OllamaAnalyzer().analyze
    raise ConfigError(
        f"Unknown prompt analyzer {name!r}; ML_DIFFUSION_ANALYZER is rules, semantic or ollama."
    )


def _semantic_similarity() -> Callable[[str, Any], Any] | None:
    """Sentence-embedding similarity when the ``semantic`` extra is installed (used to score LoRAs)."""
    from .prompt import semantic

    return semantic.similarities if semantic.is_available() else None


def _as_request(request: GenerationRequest | str, overrides: dict[str, Any]) -> GenerationRequest:
    if isinstance(request, str):
        return GenerationRequest(prompt=request, **overrides)
    return dataclasses.replace(request, **overrides) if overrides else request
