"""The resolve step: a request's names (model, LoRAs, embeddings, adapters, images) → files, checked.

It is the only step between a request and its plan that touches the disk, and it writes nothing: file
hashes are held back by the caller's hash cache and input images by the staging area until the plan
runs. Everything that cannot load is refused here with a typed error, before any pipeline is built.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..catalog.families import Family
from ..catalog.hashing import HashCache
from ..catalog.records import ModelKind
from ..plan import EmbeddingUse, ImageRef, ResolvedControl, ResolvedIPAdapter, ResolvedRequest
from ..prompt.analysis import PromptAnalysis
from ..prompt.syntax import PromptDocument, parse_prompt
from ..request import GenerationRequest
from .adapters import resolve_controlnet, resolve_embeddings, resolve_ip_adapter
from .checkpoint import clip_layers, component_sizes, is_test_model, resolve_model
from .inputs import InputStaging
from .known import KnownModels
from .loras import lora_requests, resolve_lora
from .model import choose_model
from .second_pass import resolve_hires_checkpoint, resolve_refiner, resolve_upscaler

__all__ = ["Resolver"]

_AUTO_KINDS = (ModelKind.CHECKPOINT, ModelKind.LORA)


class Resolver:
    """Turns requests into :class:`ResolvedRequest` records over one catalog view, hash cache and staging."""

    def __init__(self, known: KnownModels, hashes: HashCache, staging: InputStaging) -> None:
        self._known = known
        self._hashes = hashes
        self._staging = staging

    @property
    def known(self) -> KnownModels:
        """The catalog-and-built-ins view names are resolved through."""
        return self._known

    @property
    def hashes(self) -> HashCache:
        """The hash cache (holding new digests until a plan runs)."""
        return self._hashes

    def resolve(
        self, request: GenerationRequest, document: PromptDocument, analysis: PromptAnalysis
    ) -> ResolvedRequest:
        """Resolve ``request`` (``document`` is its parsed prompt, ``analysis`` what the prompt asks for)."""
        candidates = self._known.usable(_AUTO_KINDS) if request.auto else ()
        checkpoints = (
            self._known.usable((ModelKind.CHECKPOINT,)) if request.auto else ()
        )  # cached, unfiltered
        choice = choose_model(request, analysis, checkpoints)
        model = resolve_model(
            choice.reference, config_dir=request.config_dir, hashes=self._hashes, lookup=self._known.named
        )
        family = Family(model.family)
        loras = tuple(
            resolve_lora(r, family, lookup=self._known.named, hashes=self._hashes)
            for r in lora_requests(document, request.loras)
        )
        init, mask = self._init_images(request)
        sizes = component_sizes(model)
        refiner, refiner_decision = resolve_refiner(request, model, self._known, self._hashes)
        upscaler = resolve_upscaler(request, self._known, self._hashes)
        hires_checkpoint = resolve_hires_checkpoint(request, model, self._known, self._hashes)
        return ResolvedRequest(
            model=model,
            model_decision=choice.decision,
            loras=loras,
            embeddings=self._embeddings(document, request.negative_prompt, model.family),
            controls=tuple(self._control(c.model, c.image) for c in request.controls),
            ip_adapters=tuple(
                self._ip_adapter(u.model, u.subfolder, u.weight_name, u.image) for u in request.ip_adapters
            ),
            init_image=init,
            mask=mask,
            candidates=candidates,
            unet_params=sizes.unet,
            text_encoder_params=sizes.text_encoder,
            vae_params=sizes.vae,
            weight_file_bytes=sizes.file_bytes,
            test_model=is_test_model(model),
            clip_layers=clip_layers(model),
            refiner=refiner,
            refiner_decision=refiner_decision,
            upscaler_path=upscaler[0] if upscaler else None,
            upscaler_hash=upscaler[1] if upscaler else None,
            weight_dtype=sizes.weight_dtype,
            hires_checkpoint=hires_checkpoint[0] if hires_checkpoint else None,
            hires_checkpoint_params=hires_checkpoint[1] if hires_checkpoint else None,
        )

    def _init_images(self, request: GenerationRequest) -> tuple[ImageRef | None, ImageRef | None]:
        init = self._staging.image(request.init_image) if request.init_image is not None else None
        if request.mask is None:
            return init, None
        size = (init.width, init.height) if init is not None else None
        return init, self._staging.mask(request.mask, size)

    def _control(self, reference: str, image: object) -> ResolvedControl:
        model, name, config = resolve_controlnet(reference, self._known)
        return ResolvedControl(model, name, self._staging.image(image), config)

    def _ip_adapter(self, reference: str, subfolder: str, weights: str, image: object) -> ResolvedIPAdapter:
        folder, subfolder, weights = resolve_ip_adapter(reference, subfolder, weights, self._known)
        return ResolvedIPAdapter(folder, subfolder, weights, self._staging.image(image))

    def _embeddings(self, document: PromptDocument, negative: str, family: str) -> tuple[EmbeddingUse, ...]:
        records = self._known.usable((ModelKind.EMBEDDING,))
        if not records:
            return ()
        found = resolve_embeddings((document, parse_prompt(negative)), records, family)
        return tuple(
            e if e.hash else dataclasses.replace(e, hash=self._hashes.sha256(Path(e.path))[:12])
            for e in found
        )
