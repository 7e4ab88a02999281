"""File names never carry bidi overrides, invisible format characters or line separators."""

from __future__ import annotations

import unicodedata

import pytest

from ml_lib.diffusion.output.naming import prompt_words, safe_stem


@pytest.mark.parametrize(
    "char",
    [
        "\u202e",  # RIGHT-TO-LEFT OVERRIDE: "photo\u202egnp.exe" shows as "photoexe.png"
        "\u202d", "\u202a", "\u202b", "\u202c",  # other embeddings / overrides
        "\u2066", "\u2067", "\u2068", "\u2069",  # isolates
        "\u200e", "\u200f", "\u061c",  # marks
        "\u200b", "\ufeff", "\u00ad",  # zero width space, BOM, soft hyphen
        "\x1b", "\x7f",  # ESC, DEL
    ],
)  # fmt: skip
def test_invisible_and_bidi_characters_are_stripped(char: str) -> None:
    stem = safe_stem(f"cat{char}gnp.exe")
    assert stem == "catgnp.exe"
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in stem)


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\t", "\n"])
def test_line_breaks_of_any_kind_become_one_space(char: str) -> None:
    assert safe_stem(f"cat{char}{char}gnp") == "cat gnp"


def test_prompt_words_with_an_override_give_a_clean_name() -> None:
    assert safe_stem(prompt_words("a \u202ecat\u202c on a mat")) == "a cat on a mat"


def test_ordinary_unicode_survives() -> None:
    assert safe_stem("château 日本 ñ — émoji 🐈") == "château 日本 ñ — émoji 🐈"


def test_only_invisible_characters_give_the_fallback() -> None:
    assert safe_stem("\u202e\u200b\u2066") == "image"
