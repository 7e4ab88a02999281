"""The resolve step: where a request's names become files (model, LoRAs, embeddings, adapters, images).

Pure Python (no torch). :class:`Resolver` turns a request into a :class:`~ml_lib.diffusion.plan.ResolvedRequest`
over a :class:`KnownModels` view of the catalog and the built-ins, a hash cache and an :class:`InputStaging`
area; it writes nothing, and refuses what cannot load before anything loads.
"""

from __future__ import annotations

from .inputs import InputStaging, plan_images
from .known import KnownModels
from .resolver import Resolver

__all__ = ["InputStaging", "KnownModels", "Resolver", "plan_images"]
