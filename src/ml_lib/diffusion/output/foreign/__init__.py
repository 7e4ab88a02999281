"""Other tools' image metadata → :class:`ForeignMetadata` (what a regeneration here honours, and what not).

Read in this order, the first present wins:

- ``parameters`` / EXIF UserComment holding Fooocus JSON (``fooocus_scheme: fooocus``, or none);
- ``parameters`` as A1111 infotext (AUTOMATIC1111, Forge, SD.Next, Fooocus's A1111 scheme, ours);
- ComfyUI's API graph (``prompt``), else its UI ``workflow``;
- InvokeAI's ``invokeai_metadata``, else the legacy ``sd-metadata``.

A1111's infotext wins over a ComfyUI graph when both are present: it is the flat record some ComfyUI
savers add precisely for other tools. Malformed JSON raises :class:`ForeignMetadataError` (one line).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from ...errors import MetadataError
from ...request import GenerationRequest
from ..infotext import Infotext
from ._values import load_json
from .a1111 import read_infotext
from .comfy import read_comfy_prompt, read_comfy_workflow
from .fooocus import read_fooocus
from .invoke import read_invoke, read_sd_metadata
from .records import ForeignLora, ForeignMetadata, Unmapped

__all__ = ["ForeignLora", "ForeignMetadata", "Unmapped", "foreign_request", "read_foreign"]

logger = logging.getLogger(__name__)


def _is_json_object(text: str | None) -> bool:
    return text is not None and text.lstrip().startswith("{")


def read_foreign(
    chunks: Mapping[str, str], infotext: str | None, parsed: Infotext | None
) -> ForeignMetadata | None:
    """The settings another tool recorded in an image, or None when it recorded none we know."""
    scheme = chunks.get("fooocus_scheme")
    if infotext is not None and _is_json_object(infotext) and scheme in (None, "fooocus"):
        return read_fooocus(load_json(infotext, "Fooocus parameters JSON"))
    if parsed is not None and parsed.parameters:
        return read_infotext(parsed)
    if "prompt" in chunks and _is_json_object(chunks["prompt"]):
        return read_comfy_prompt(load_json(chunks["prompt"], "ComfyUI prompt graph"))
    if "workflow" in chunks:
        return read_comfy_workflow(load_json(chunks["workflow"], "ComfyUI workflow"))
    if "invokeai_metadata" in chunks:
        return read_invoke(load_json(chunks["invokeai_metadata"], "InvokeAI metadata"))
    if "sd-metadata" in chunks:
        return read_sd_metadata(load_json(chunks["sd-metadata"], "InvokeAI sd-metadata"))
    if parsed is not None and parsed.prompt:
        return read_infotext(parsed)  # a bare prompt with no parameters line
    return None


def foreign_request(
    image: str | os.PathLike[str], foreign: ForeignMetadata | None, error: str | None, *, model: str | None
) -> GenerationRequest:
    """The request that regenerates another tool's image, each unmapped setting logged as a warning;
    MetadataError (one line) when the metadata is malformed, has no prompt, or names no model and
    ``model`` is None."""
    if foreign is None:
        raise MetadataError(f"{image}: {error or 'no generation metadata'}")
    if not foreign.prompt.strip():
        raise MetadataError(f"{image}: the {foreign.tool} metadata records no prompt; nothing to regenerate.")
    if model is None and foreign.model is None:
        raise MetadataError(f"{image}: the {foreign.tool} metadata names no model; give one with --model.")
    for item in foreign.unmapped:
        logger.warning("%s: not reproduced: %s", foreign.tool, item)
    return foreign.to_request(model=model)
