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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._recording import Planned
from .errors import MetadataError, OutOfMemory, PlanError
from .plan import GenerationPlan, ModelRef
from .prompt.analysis import PromptAnalysis
from .prompt.analyzers import make_analyzer, semantic_similarity
from .prompt.syntax import PromptDocument, parse_prompt
from .request import GenerationRequest
from .result import CancelToken, GenerationResult, PhaseTimings, StepInfo
from .settings import Settings

if TYPE_CHECKING:
    from .catalog.catalog import Catalog
    from .catalog.hashing import HashCache
    from .engine.pool import PipelinePool
    from .learning.records import Feedback
    from .learning.service import Entry, History, Target
    from .output.metadata import ImageMetadata
    from .planning.device import DeviceInfo
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
        self, settings: Settings | None = None, *, device: str | None = None, pool_size: int = 1
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._device_pref = device
        self._pool_size = pool_size
        self._device: DeviceInfo | None = None
        self._pool: PipelinePool | None = None
        self._conn: sqlite3.Connection | None = None
        self._catalog: Catalog | None = None
        self._analyzer: Callable[[str | PromptDocument], PromptAnalysis] | None = None
        self._resolver: Resolver | None = None
        self._hashes: HashCache | None = None
        self._staging: InputStaging | None = None
        self._history: History | None = None
        self._planned: dict[GenerationPlan, Planned] = {}  # what the record step needs, by plan
        self._busy: tuple[float, float] | None = None  # (when, cores other processes kept busy)

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

            self._pool = PipelinePool(self._pool_size)
        return self._pool

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

    def plan(self, request: GenerationRequest | str, **overrides: Any) -> GenerationPlan:
        """A fully resolved plan for ``request`` (a prompt string plus overrides also works); writes nothing.

        With ``auto`` (the default) a checkpoint is chosen from the catalog when none is named, and
        catalog LoRAs that fit the prompt are recommended.
        """
        from .planning.planner import Planner

        req = _as_request(request, overrides)
        document = parse_prompt(req.prompt)
        analysis = self.analyze(document)
        resolved = self._resolve_step().resolve(req, document, analysis)
        prefs = self.learning.preferences() if self.settings.learn and req.learn else None
        planner = Planner(self.settings, similarity=semantic_similarity(), preferences=prefs)
        plan = planner.plan(req, resolved, analysis, self._device_now())
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
        from .engine.executor import execute
        from .engine.memory import stronger_strategy
        from .learning.records import new_id
        from .output.writer import check_output_dir
        from .resolve import plan_images

        if save:  # before anything loads: a bad --out must not cost a whole generation
            check_output_dir(Path(plan.output_dir))
        self._resolve_step()
        assert self._staging is not None and self._hashes is not None
        self._staging.commit(plan_images(plan))  # the inputs a dry-run plan only held
        self._hashes.flush()
        t0 = time.perf_counter()
        memory = plan.memory.strategy if plan.memory is not None else "none"
        retries: list[str] = []
        while True:  # bounded: each out-of-memory steps up one strategy, up to aggressive
            loaded = self._pipelines().get(
                plan.model, dtype=plan.dtype, device=plan.device, memory=memory, storage=plan.storage_dtype
            )
            load = time.perf_counter() - t0
            try:
                out = execute(
                    loaded, plan, on_step=on_step, cancel=cancel, annotator_dir=self.settings.annotator_dir
                )
                break
            except OutOfMemory as exc:
                stronger = stronger_strategy(memory)
                if stronger is None:
                    tried = ", ".join([*retries, memory])
                    estimate = plan.memory.estimated_peak_bytes / 1e9 if plan.memory is not None else 0.0
                    raise OutOfMemory(
                        f"{exc} Estimated ~{estimate:.1f} GB; tried {tried}.", exc.phase
                    ) from exc
                log.warning("out of memory at %s with %s: retrying with %s", exc.phase, memory, stronger)
                retries.append(memory)
                self._pipelines().drop(loaded)
                memory = stronger
        t1 = time.perf_counter()
        gid = new_id()
        paths = self._save(plan, out.images, plan.seeds, gid) if save else ()
        timings = PhaseTimings(load, out.encode, out.denoise, out.decode, time.perf_counter() - t1)
        result = GenerationResult(
            out.images,
            plan.seeds,
            plan,
            paths,
            timings,
            gid,
            memory_retries=tuple(f"{m} → out of memory" for m in retries),
        )
        self._record(result)
        return result

    def reproduce(
        self,
        image: str | Path,
        *,
        output_dir: str | Path | None = None,
        save: bool = True,
        allow_hub: bool = False,
    ) -> GenerationResult:
        """Regenerate an image from the plan embedded in it (pixel-identical on the same device/versions).

        The plan is untrusted input: it is checked like a request before anything loads (a Hub model only
        with ``allow_hub``), and the image goes to ``output_dir`` or the settings' output folder, never to
        a folder the file names.
        """
        from .planning.validate import validate_plan

        meta = self.info(image)
        if meta.plan is None:
            why = f" ({meta.plan_error})" if meta.plan_error else ""
            raise MetadataError(
                f"{image} carries no ml-diffusion plan{why}; "
                "only images written by ml-diffusion can be reproduced."
            )
        try:
            validate_plan(meta.plan, self.settings.limits, allow_hub=allow_hub)
        except PlanError as exc:
            raise PlanError(f"{image}: the plan inside it cannot be reproduced. {exc}") from exc
        plan = dataclasses.replace(meta.plan, output_dir=str(output_dir or self.settings.outputs))
        plan = dataclasses.replace(plan, model=self._relocate(plan.model))
        if save:
            from .output.writer import check_output_dir

            check_output_dir(Path(plan.output_dir))
        # The whole batch is regenerated (batching changes floating-point results); keep this image.
        seed = meta.parsed.seed if meta.parsed is not None and meta.parsed.seed in plan.seeds else plan.seed
        index = plan.seeds.index(seed)
        full = self.execute(plan, save=False)
        t0 = time.perf_counter()
        images = full.images[index : index + 1]
        paths = self._save(plan, images, (seed,), full.generation_id) if save else ()
        if paths:
            self._record_outputs(full.generation_id, paths)
        timings = dataclasses.replace(full.timings, save=time.perf_counter() - t0)
        return GenerationResult(images, (seed,), plan, paths, timings, full.generation_id)

    def info(self, image: str | Path) -> ImageMetadata:
        """Metadata of an image written by us or by an A1111-compatible tool."""
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

    # -- output -----------------------------------------------------------------------------------
    def _save(
        self, plan: GenerationPlan, images: tuple[Any, ...], seeds: tuple[int, ...], generation_id: str
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
                    image,
                    Path(plan.output_dir),
                    plan.name_template,
                    ctx,
                    text,
                    plan_json,
                    plan.image_format,
                    generation_id=generation_id,
                )
            )
        return tuple(paths)


def _as_request(request: GenerationRequest | str, overrides: dict[str, Any]) -> GenerationRequest:
    if isinstance(request, str):
        return GenerationRequest(prompt=request, **overrides)
    return dataclasses.replace(request, **overrides) if overrides else request
