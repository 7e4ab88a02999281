"""The record step of the facade: every executed plan into the history, with what we would have chosen.

The user's overrides are the difference between the plan that ran and the plan the same request gets with
no parameters set and no LoRAs named (planned again here with the same seed and preferences). A history
that cannot be written costs a warning, never the generation.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import HistoryError, RequestError
from .plan import GenerationPlan, ResolvedRequest
from .prompt.analysis import PromptAnalysis
from .request import GenerationRequest
from .result import GenerationResult

if TYPE_CHECKING:
    from .learning.service import History
    from .planning.device import DeviceInfo
    from .planning.preferences import Preferences
    from .settings import Settings

__all__ = ["Planned", "record_generation", "record_outputs"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Planned:
    """What the record step needs of a plan made by the facade: the request as given, what planning saw."""

    request: GenerationRequest
    resolved: ResolvedRequest
    analysis: PromptAnalysis
    prefs: Preferences | None


def _automatic(
    planned: Planned, plan: GenerationPlan, settings: Settings, device: DeviceInfo
) -> GenerationPlan | None:
    from .learning.collector import automatic_request
    from .planning.planner import Planner

    auto = automatic_request(planned.request)
    resolved = dataclasses.replace(planned.resolved, loras=())
    planner = Planner(settings, preferences=planned.prefs, seed_source=lambda: plan.seed)
    try:
        return planner.plan(auto, resolved, planned.analysis, device)
    except RequestError as exc:  # the automatic request may not plan (e.g. a size the model refuses)
        log.info("no automatic plan to compare the overrides with: %s", exc)
        return None


def record_generation(
    history: History,
    settings: Settings,
    device: DeviceInfo,
    result: GenerationResult,
    planned: Planned | None,
    analyze: Callable[[str], PromptAnalysis],
) -> None:
    """Record ``result`` (``planned``: how the facade planned it, None for a plan read from a file)."""
    from .learning.collector import make_record, output_files

    plan = result.plan
    automatic = _automatic(planned, plan, settings, device) if planned is not None else None
    t = result.timings
    record = make_record(
        result.generation_id,
        plan,
        planned.request if planned else None,
        automatic,
        planned.analysis if planned else analyze(plan.prompt),
        outputs=output_files(result.paths),
        timings={
            "load": t.load,
            "encode": t.encode,
            "denoise": t.denoise,
            "decode": t.decode,
            "save": t.save,
        },
        learned=bool(planned and planned.prefs and planned.prefs.contexts),
    )
    try:
        history.record(record)
    except HistoryError as exc:
        log.warning("The generation %s was not recorded in the history: %s", result.generation_id, exc)


def record_outputs(history: History, generation_id: str, paths: tuple[Path, ...]) -> None:
    """Add files written later (``reproduce``) to a recorded generation."""
    from .learning.collector import output_files

    try:
        history.store.add_outputs(generation_id, output_files(paths))
    except HistoryError as exc:
        log.warning("The files of generation %s were not recorded: %s", generation_id, exc)
