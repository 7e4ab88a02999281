"""The demo world's words (``assets/demo/words.txt``, written with the model), to name what a prompt asks
of the demo model that its world does not have."""

from __future__ import annotations

import re
from functools import cache

from .assets import demo_folder

__all__ = ["known_words", "outside_words"]

_WORD = re.compile(r"[^\W\d_][\w'-]*")  # letters of any script, then letters, digits, ' and -


@cache
def known_words() -> frozenset[str]:
    """Every word of the demo's captions and its LoRA trigger (empty when the demo is not installed)."""
    path = demo_folder() / "words.txt"
    if not path.is_file():
        return frozenset()
    return frozenset(w for w in path.read_text(encoding="utf-8").split() if w)


def outside_words(prompt: str) -> tuple[str, ...]:
    """The words of ``prompt`` the demo world never uses (LoRA tags, weights and punctuation ignored)."""
    known = known_words()
    text = re.sub(r"<[^>]*>", " ", prompt.lower())
    words = _WORD.findall(text)
    return tuple(dict.fromkeys(w for w in words if w not in known and w != "break"))
