"""Extra-network tags ``<kind:arg:arg…>`` (LoRA, LyCORIS, hypernetworks), read as A1111 reads them.

A1111 removes every ``<(\\w+):([^>]+)>`` from the prompt before anything else and splits its
arguments on ``:``; an argument ``key=value`` is named, the rest are positional. For ``lora`` and
its alias ``lyco``: ``<lora:name:te:unet:dyn>``, with ``te=``, ``unet=``, ``dyn=`` overriding, unet
defaulting to te and te to 1. A number that cannot be read is reported in ``problems``, never raised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .attention import parse_number

__all__ = [
    "SUPPORTED_NETWORKS",
    "NetworkArg",
    "NetworkRef",
    "extract_networks",
    "insert_networks",
    "strip_networks",
]

SUPPORTED_NETWORKS = frozenset({"lora", "lyco"})
_TAG = re.compile(r"<(\w+):([^>]+)>")


@dataclass(frozen=True, slots=True)
class NetworkArg:
    """A named argument ``key=value`` of an extra-network tag."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class NetworkRef:
    """One ``<kind:items…>`` tag; ``offset`` is where it stood in the prompt once the tags before it
    were removed (-1: append at the end when rendering)."""

    kind: str
    items: tuple[str, ...]
    offset: int = -1

    @property
    def source(self) -> str:
        """The tag as written."""
        return f"<{self.kind}:{':'.join(self.items)}>"

    @property
    def positional(self) -> tuple[str, ...]:
        return tuple(item for item in self.items if len(item.split("=", 2)) != 2)

    @property
    def named(self) -> tuple[NetworkArg, ...]:
        pairs = (item.split("=", 2) for item in self.items)
        return tuple(NetworkArg(p[0], p[1]) for p in pairs if len(p) == 2)

    def arg(self, key: str) -> str | None:
        """The last value given as ``key=value``, if any."""
        values = [a.value for a in self.named if a.key == key]
        return values[-1] if values else None

    @property
    def name(self) -> str:
        """The network's name (the first positional argument)."""
        positional = self.positional
        return positional[0] if positional else ""

    @property
    def supported(self) -> bool:
        """True for LoRA/LyCORIS tags; hypernetworks and unknown kinds are parsed but not applied."""
        return self.kind in SUPPORTED_NETWORKS

    def _number(self, index: int, key: str) -> tuple[str | None, float | None]:
        raw = self.arg(key)
        if raw is None and len(self.positional) > index:
            raw = self.positional[index]
        return raw, None if raw is None else parse_number(raw)

    @property
    def weight_texts(self) -> tuple[tuple[str, str], ...]:
        """The weights as written: ``("te", raw)`` and ``("unet", raw)`` for those given."""
        out = []
        for label, index in (("te", 1), ("unet", 2)):
            raw, _ = self._number(index, label)
            if raw is not None:
                out.append((label, raw))
        return tuple(out)

    @property
    def te_weight(self) -> float | None:
        """Text-encoder multiplier (the weight of ``<lora:name:w>``); 1.0 when absent, None if unreadable."""
        raw, value = self._number(1, "te")
        return 1.0 if raw is None else value

    @property
    def unet_weight(self) -> float | None:
        """UNet multiplier, defaulting to the text-encoder one; None if unreadable."""
        raw, value = self._number(2, "unet")
        return self.te_weight if raw is None else value

    @property
    def weight(self) -> float | None:
        """The main multiplier (the text-encoder one)."""
        return self.te_weight

    @property
    def dyn_dim(self) -> int | None:
        """Dynamic rank ``dyn`` when given and an integer."""
        raw, _ = self._number(3, "dyn")
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            return None

    @property
    def problems(self) -> tuple[str, ...]:
        """What A1111 would reject in this tag, in words."""
        out: list[str] = []
        if not self.name:
            out.append(f"{self.source}: no network name")
        for label, (raw, value) in (("te", self._number(1, "te")), ("unet", self._number(2, "unet"))):
            if raw is not None and value is None:
                out.append(f"{self.source}: {label} weight {raw!r} is not a number")
        raw_dyn, _ = self._number(3, "dyn")
        if raw_dyn is not None and self.dyn_dim is None:
            out.append(f"{self.source}: dyn {raw_dyn!r} is not an integer")
        if not self.supported:
            out.append(f"{self.source}: {self.kind!r} networks are not supported; the tag is ignored")
        return tuple(out)


def extract_networks(text: str) -> tuple[NetworkRef, ...]:
    """The extra-network tags of ``text`` in order, each with its offset in :func:`strip_networks`."""
    refs: list[NetworkRef] = []
    removed = 0
    for match in _TAG.finditer(text):
        refs.append(NetworkRef(match.group(1), tuple(match.group(2).split(":")), match.start() - removed))
        removed += match.end() - match.start()
    return tuple(refs)


def strip_networks(text: str) -> str:
    """``text`` without its extra-network tags (what A1111 conditions on)."""
    return _TAG.sub("", text)


def insert_networks(text: str, refs: tuple[NetworkRef, ...]) -> str:
    """Put the tags back at their offsets (tags without one go at the end)."""
    out: list[str] = []
    pos = 0
    placed = sorted((r for r in refs if 0 <= r.offset <= len(text)), key=lambda r: r.offset)
    for ref in placed:
        out.append(text[pos : ref.offset])
        out.append(ref.source)
        pos = ref.offset
    out.append(text[pos:])
    out.extend(ref.source for ref in refs if not 0 <= ref.offset <= len(text))
    return "".join(out)
