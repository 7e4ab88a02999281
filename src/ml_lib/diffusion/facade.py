"""ImageGenerator: wires the rooms together and holds no logic of its own.

analyse → resolve → plan → execute → write → record. ``plan()`` is a dry run: it writes nothing (input
images and file hashes are held until a plan runs). Plans use what was learned from the history unless
``settings.learn`` or ``request.learn`` is off; every executed plan is recorded in the history
(``learning/``) under a generation id that the images carry too.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._recording import Planned
from .plan import GenerationPlan, ModelRef
from .prompt.analysis import PromptAnalysis
from .prompt.analyzers import make_analyzer, release_encoders, semantic_similarity
from .prompt.syntax import PromptDocument, parse_prompt
from .request import GenerationRequest
from .result import CancelToken, GenerationResult, Retry, StepInfo
from .settings import Settings

if TYPE_CHECKING:
    from .batch import BatchEvent, BatchItem, BatchReport, RayOptions
    from .catalog.catalog import Catalog
    from .catalog.hashing import HashCache
    from .engine.pool import LoadedPipeline, PipelinePool, PoolStats
    from .learning.records import Feedback
    from .learning.service import Entry, History, Target
    from .output.metadata import ImageMetadata
    from .planning.device import DeviceInfo
    from .planning.lora_cache import IndexCache
    from .resolve import InputStaging, Resolver

__all__ = ["ImageGenerator"]

_BUSY_FRESH_SECONDS = 2.0  # plans in a burst reuse one load measurement

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
        self,
        settings: Settings | None = None,
        *,
        device: str | None = None,
        pool_size: int | None = None,
        pool_budget: str | int | None = None,
        record: bool = True,
    ) -> None:
        from .planning.pool_budget import parse_budget

        self.settings = settings or Settings.from_env()
        self._recording = record  # False: a batch worker, whose driver records what it returns
        self._device_pref = device
        self._pool_size = pool_size
        self._pool_budget = pool_budget if pool_budget is not None else self.settings.pool_budget
        parse_budget(self._pool_budget)  # a bad budget is a ConfigError now, not at the first generation
        self._device: DeviceInfo | None = None
        self._pool: PipelinePool | None = None
        self._refiner_pool: PipelinePool | None = None
        self._conn: sqlite3.Connection | None = None
        self._catalog: Catalog | None = None
        self._analyzer: Callable[[str | PromptDocument], PromptAnalysis] | None = None
        self._resolver: Resolver | None = None
        self._hashes: HashCache | None = None
        self._staging: InputStaging | None = None
        self._history: History | None = None
        self._planned: dict[GenerationPlan, Planned] = {}  # what the record step needs, by plan
        self._busy: tuple[float, float] | None = None  # (when, cores other processes kept busy)
        self._lora_cache: IndexCache | None = None  # the LoRA index, rebuilt only when the catalog changes

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

    def _device_now(self) -> DeviceInfo:
        """The device, with how busy other processes keep the CPU right now (for the thread policy)."""
        device = self.device()
        if device.kind != "cpu" or self.settings.threads is not None:
            return device
        from .engine.threads import busy_cores

        now = time.monotonic()
        if self._busy is None or now - self._busy[0] > _BUSY_FRESH_SECONDS:  # one 30 ms sample, reused
            self._busy = (now, busy_cores())
        return dataclasses.replace(device, busy_cores=self._busy[1])

    def _pipelines(self) -> PipelinePool:
        if self._pool is None:
            from .engine.pool import PipelinePool
            from .planning.pool_budget import default_budget, parse_budget

            kind = self.device().kind
            budget = default_budget(self.device(), parse_budget(self._pool_budget, kind))
            self._pool = PipelinePool(self._pool_size, budget=budget)
        return self._pool

    def _expected(self, plan: GenerationPlan, memory: str) -> tuple[int, int] | None:
        """(RAM, VRAM) bytes the plan's model will hold with the ``memory`` strategy, from the planning
        estimate (None: sizes unknown)."""
        from .planning.pool_budget import expected_bytes

        planned = self._planned.get(plan)
        r = planned.resolved if planned is not None else None
        if r is None or r.unet_params is None:
            return None
        params = (r.unet_params, r.text_encoder_params or 0, r.vae_params or 0)
        stored = plan.storage_dtype or plan.dtype  # the CPU policy keeps fp16 weights
        return expected_bytes(plan.model.family, params, dtype=stored, device=plan.device, strategy=memory)

    def pool_stats(self) -> PoolStats:
        """The model pool's hits, misses, loads, evictions and bytes held (RAM and VRAM) against its budget."""
        return self._pipelines().stats()

    def _resolve_step(self) -> Resolver:
        if self._resolver is None:
            from .catalog.hashing import HashCache
            from .imaging.store import InputStore
            from .resolve import InputStaging, KnownModels, Resolver

            self._hashes = HashCache(self._db())
            self._hashes.hold()  # written when a plan runs: planning is a dry run
            store = InputStore(self.settings.home / "inputs")
            self._staging = InputStaging(store, max_pixels=self.settings.limits.max_pixels)
            self._resolver = Resolver(KnownModels(self.catalog()), self._hashes, self._staging)
        return self._resolver

    def close(self) -> None:
        """Release pipelines and the database connection."""
        if self._pool is not None:
            self._pool.clear()
        if self._refiner_pool is not None:
            self._refiner_pool.clear()
        if self._history is not None:
            self._history.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._catalog = None
            self._resolver = self._hashes = self._staging = None

    def __enter__(self) -> ImageGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API -----------------------------------------------------------------------------
    def resolve_model(self, reference: str, *, config_dir: str | None = None) -> ModelRef:
        """Resolve a model path, catalog name or Hub id to a ModelRef (family, hash, config folder)."""
        from .resolve.checkpoint import resolve_model

        step = self._resolve_step()
        return resolve_model(reference, config_dir=config_dir, hashes=step.hashes, lookup=step.known.named)

    def _relocate(self, model: ModelRef) -> ModelRef:
        from .resolve.relocate import relocate_model

        step = self._resolve_step()
        return relocate_model(model, step.known, step.hashes)

    def catalog(self) -> Catalog:
        """The model catalog over the settings' model roots (``--model NAME`` resolves through it)."""
        if self._catalog is None:
            from .catalog.catalog import Catalog

            self._catalog = Catalog(self._db(), self.settings.model_roots)
        return self._catalog

    def analyze(self, prompt: str | PromptDocument) -> PromptAnalysis:
        """What the prompt asks for: content type, styles, aspect … (by ``settings.analyzer``)."""
        if self._analyzer is None:
            self._analyzer = make_analyzer(self.settings.analyzer)
        return self._analyzer(prompt)

    def warm_up(self) -> None:
        """Load the prompt analyzer's models now (USE-multilingual's encoder: ~1 s once per process) rather
        than on the first prompt; a no-op for "ollama", whose model lives in another service."""
        if self.settings.analyzer != "ollama":
            self.analyze("a photo")

    def release_analyzer(self) -> None:
        """Free the prompt analyzer's models (~125 MB for USE-multilingual) until the next prompt: for a process
        that plans once and then loads a model, as ``ml-diffusion generate`` does."""
        release_encoders()

    def plan(
        self, request: GenerationRequest | str, *, hardware: DeviceInfo | None = None, **overrides: Any
    ) -> GenerationPlan:
        """A fully resolved plan for ``request`` (a prompt string plus overrides also works); writes nothing.

        With ``auto`` (the default) a checkpoint is chosen from the catalog when none is named, and
        catalog LoRAs that fit the prompt are recommended. ``hardware`` plans as if on another machine
        (``planning.whatif.hypothetical_device``): nothing is detected or loaded, and :meth:`execute`
        refuses the plan when that device is not here.
        """
        from .planning.lora_cache import IndexCache
        from .planning.planner import Planner

        if self._lora_cache is None:
            self._lora_cache = IndexCache()
        req = _as_request(request, overrides)
        document = parse_prompt(req.prompt)
        analysis = self.analyze(document)
        resolved = self._resolve_step().resolve(req, document, analysis)
        prefs = self.learning.preferences() if self.settings.learn and req.learn else None
        # LoRAs are compared in meaning only with the semantic analyzer chosen (not merely installed)
        similarity = semantic_similarity() if self.settings.analyzer == "semantic" else None
        planner = Planner(
            self.settings, similarity=similarity, preferences=prefs, lora_cache=self._lora_cache
        )
        plan = planner.plan(req, resolved, analysis, hardware or self._device_now())
        self._planned[plan] = Planned(req, resolved, analysis, prefs)
        while len(self._planned) > 32:
            del self._planned[next(iter(self._planned))]
        return plan

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
        from ._executing import execute_plan

        return execute_plan(self, plan, on_step=on_step, cancel=cancel, save=save)

    def keep(self, result: GenerationResult) -> GenerationResult:
        """Save and record a result executed elsewhere with ``save=False`` (a batch worker's)."""
        from .learning.records import new_id

        gid = result.generation_id or new_id()
        t0 = time.perf_counter()
        paths = self._save(result.plan, result.images, result.seeds, gid, retries=result.retries)
        timings = dataclasses.replace(result.timings, save=time.perf_counter() - t0)
        kept = dataclasses.replace(result, paths=paths, generation_id=gid, timings=timings)
        self._record(kept)
        return kept

    def batch(
        self,
        job: str | Path | list[BatchItem],
        out_dir: str | Path,
        *,
        repeat: int = 1,
        seed_start: int | None = None,
        ray: RayOptions | None = None,
        on_event: Callable[[BatchEvent], None] | None = None,
        stop: CancelToken | None = None,
    ) -> BatchReport:
        """Run a JSONL job (a path, or items from :func:`~ml_lib.diffusion.batch.parse_job`) into
        ``out_dir`` with its manifest: a re-run resumes; on Ray when ``ray`` is given."""
        from .batch.runner import run_batch

        return run_batch(self, job, Path(out_dir), repeat, seed_start, ray, on_event, stop)

    def reproduce(
        self,
        image: str | Path,
        *,
        output_dir: str | Path | None = None,
        save: bool = True,
        allow_hub: bool = False,
        model: str | None = None,
    ) -> GenerationResult:
        """Regenerate an image from the plan embedded in it (pixel-identical on the same device/versions).

        The plan is untrusted input: it is checked like a request before anything loads (a Hub model only
        with ``allow_hub``), and the image goes to ``output_dir`` or the settings' output folder, never to
        a folder the file names. An image of another tool (A1111, Forge, SD.Next, ComfyUI, InvokeAI,
        Fooocus) is planned from the settings it records, with ``model`` (a path or catalog name) in place
        of the model it names; what cannot be honoured is logged as a warning.
        """
        from ._reproducing import reproduce_image

        return reproduce_image(
            self, image, output_dir=output_dir, save=save, allow_hub=allow_hub, model=model
        )

    def info(self, image: str | Path) -> ImageMetadata:
        """Metadata of an image written by us or by A1111, Forge, SD.Next, ComfyUI, InvokeAI or Fooocus."""
        from .output.metadata import read_metadata

        return read_metadata(Path(image))

    # -- history and feedback --------------------------------------------------------------------
    @property
    def learning(self) -> History:
        """The history of generations and feedback (``settings.history_path``), opened on first write."""
        if self._history is None:
            from .learning.service import History

            self._history = History(self.settings.history_path)
        return self._history

    def rate(
        self, target: Target, stars: int | str, tags: tuple[str, ...] = (), note: str | None = None
    ) -> Feedback:
        """Rate a generation 1-5 (or "up" / "down"): ``target`` is its id, an image path or the result."""
        return self.learning.rate(target, stars, tags, note)

    def history(self, limit: int | None = 20, *, content_type: str | None = None) -> list[Entry]:
        """Recorded generations, newest first, with their ratings, tags and edits."""
        return self.learning.entries(limit=limit, content_type=content_type)

    def _record(self, result: GenerationResult) -> None:
        from ._recording import record_generation

        planned = self._planned.pop(result.plan, None)
        record_generation(self.learning, self.settings, self.device(), result, planned, self.analyze)

    def _record_outputs(self, generation_id: str, paths: tuple[Path, ...]) -> None:
        from ._recording import record_outputs

        record_outputs(self.learning, generation_id, paths)

    def _refiner(self, plan: GenerationPlan, memory: str) -> LoadedPipeline | None:
        """The loaded SDXL refiner of ``plan`` (None without one), from a pool of its own so the base stays."""
        if plan.refiner is None:
            return None
        if self._refiner_pool is None:
            from .engine.pool import PipelinePool

            self._refiner_pool = PipelinePool(1)
        return self._refiner_pool.get(plan.refiner.model, dtype=plan.dtype, device=plan.device, memory=memory)

    # -- output -----------------------------------------------------------------------------------
    def _save(
        self,
        plan: GenerationPlan,
        images: tuple[Any, ...],
        seeds: tuple[int, ...],
        generation_id: str,
        *,
        first: int = 0,
        retries: tuple[Retry, ...] = (),
    ) -> tuple[Path, ...]:
        from .output.saving import save_plan_images

        return save_plan_images(plan, images, seeds, generation_id, _version(), first=first, retries=retries)


def _as_request(request: GenerationRequest | str, overrides: dict[str, Any]) -> GenerationRequest:
    if isinstance(request, str):
        return GenerationRequest(prompt=request, **overrides)
    return dataclasses.replace(request, **overrides) if overrides else request
