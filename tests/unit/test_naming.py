"""File name templates: tokens, A1111-like prompt words, OS-safe stems, the A1111 counter."""

from __future__ import annotations

import dataclasses
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest

from ml_lib.diffusion.errors import OutputNotWritableError, RequestError
from ml_lib.diffusion.output.naming import (
    DEFAULT_TEMPLATE,
    MAX_STEM_BYTES,
    NameContext,
    next_counter,
    prompt_words,
    render_stem,
    safe_stem,
    template_tokens,
)
from ml_lib.diffusion.plan import GenerationPlan, ModelFormat, ModelRef

CTX = NameContext(
    seed=1234,
    prompt="(masterpiece:1.2), a [red] fox <lora:detail:0.7> in the snow, 85mm",
    model="dreamshaper_8",
    sampler="DPM++ 2M",
    steps=25,
    cfg=7.5,
    width=512,
    height=768,
    counter=7,
    now=datetime(2024, 3, 9, 14, 5, 7),
)


def test_default_template() -> None:
    assert DEFAULT_TEMPLATE == "[counter]-[seed]-[prompt_words]"
    assert render_stem(DEFAULT_TEMPLATE, CTX) == "00007-1234-masterpiece a red fox in the snow 85mm"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("[date]", "2024-03-09"),
        ("[time]", "14-05-07"),
        ("[datetime]", "20240309140507"),
        ("[seed]", "1234"),
        ("[model]", "dreamshaper_8"),
        ("[sampler]", "DPM++ 2M"),
        ("[steps]", "25"),
        ("[cfg]", "7.5"),
        ("[width]x[height]", "512x768"),
        ("[counter]", "00007"),
        ("img_[date]_[seed]", "img_2024-03-09_1234"),
    ],
)
def test_each_token(template: str, expected: str) -> None:
    assert render_stem(template, CTX) == expected


def test_cfg_token_integer_form() -> None:
    assert render_stem("[cfg]", dataclasses.replace(CTX, cfg=7.0)) == "7"


def test_counter_is_five_digits_and_grows_past() -> None:
    assert render_stem("[counter]", dataclasses.replace(CTX, counter=123456)) == "123456"


def test_unknown_token_lists_known_ones() -> None:
    with pytest.raises(RequestError) as info:
        render_stem("[counter]-[prompt]-[hash]", CTX)
    message = str(info.value)
    assert "[prompt]" in message and "[hash]" in message
    assert "[prompt_words]" in message and "[datetime]" in message


def test_template_tokens_in_order() -> None:
    assert template_tokens("[seed]-x-[counter]") == ("seed", "counter")


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("(masterpiece:1.2), best quality", "masterpiece best quality"),
        ("<lora:add_detail:0.5> <hypernet:x:1> a cat", "a cat"),
        ("[from:to:0.5] thing", "from to thing"),
        ("one two three four five six seven eight nine ten", "one two three four five six seven eight"),
        ("a BREAK b AND c", "a b c"),
        ("", "empty"),
        ("((( )))", "empty"),
        ("ünïcode 日本語 ok", "ünïcode 日本語 ok"),
        ("under_score hyphen-word", "under score hyphen word"),
    ],
)
def test_prompt_words(prompt: str, expected: str) -> None:
    assert prompt_words(prompt) == expected


def test_prompt_words_caps_characters_at_word_boundary() -> None:
    words = prompt_words("supercalifragilistic " * 8)
    assert len(words) <= 64
    assert words == " ".join(["supercalifragilistic"] * 3)
    assert prompt_words("x" * 100) == "x" * 64


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('a<b>c:d"e/f\\g|h?i*j', "abcdefghij"),
        ("tab\there\nnewline\x00nul\x7fdel", "tab here newlinenuldel"),
        ("  many    spaces  ", "many spaces"),
        ("trailing dots...", "trailing dots"),
        ("trailing dot and space. .", "trailing dot and space"),
        ("", "image"),
        ("...", "image"),
        ("<>:*?", "image"),
    ],
)
def test_safe_stem_cleans(raw: str, expected: str) -> None:
    assert safe_stem(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("CON", "CON_"),
        ("con", "con_"),
        ("Nul", "Nul_"),
        ("com1", "com1_"),
        ("LPT9", "LPT9_"),
        ("con.txt", "con_.txt"),
        ("aux.tar.gz", "aux_.tar.gz"),
        ("console", "console"),
        ("COM10", "COM10"),
        ("my con", "my con"),
    ],
)
def test_windows_reserved_names_get_a_suffix(raw: str, expected: str) -> None:
    assert safe_stem(raw) == expected


def test_nfc_normalisation() -> None:
    decomposed = unicodedata.normalize("NFD", "café")
    assert decomposed != "café"
    assert safe_stem(decomposed) == "café"


def test_utf8_cap_never_splits_a_character() -> None:
    stem = safe_stem("日" * 100)  # 3 bytes each
    assert len(stem.encode("utf-8")) <= MAX_STEM_BYTES
    assert stem == "日" * (MAX_STEM_BYTES // 3)
    stem = safe_stem("a" + "é" * 200)  # 1 + 2*n bytes: the cap falls inside a character
    data = stem.encode("utf-8")
    assert len(data) <= MAX_STEM_BYTES and data.decode("utf-8") == stem
    assert stem == "a" + "é" * ((MAX_STEM_BYTES - 1) // 2)


def test_rendered_prompt_is_sanitised() -> None:
    ctx = dataclasses.replace(CTX, prompt='what/is: "this"?', model="org/model:v2")
    assert render_stem("[prompt_words]__[model]", ctx) == "what is this__orgmodelv2"


def test_from_plan() -> None:
    plan = GenerationPlan(
        prompt="a cat",
        negative_prompt="",
        model=ModelRef("/m/x.safetensors", ModelFormat.SINGLE_FILE, "sd1", name="x"),
        width=640,
        height=480,
        steps=12,
        cfg_scale=6.0,
        sampler="Euler a",
        schedule="Uniform",
        seed=99,
        batch_size=2,
        clip_skip=1,
        device="cpu",
        dtype="float32",
        output_dir="/o",
        name_template=DEFAULT_TEMPLATE,
    )
    ctx = NameContext.from_plan(plan, seed=100, now=CTX.now)
    assert render_stem("[seed]-[model]-[sampler]-[steps]-[cfg]-[width]x[height]", ctx) == (
        "100-x-Euler a-12-6-640x480"
    )


def test_next_counter(tmp_path: Path) -> None:
    assert next_counter(tmp_path / "missing") == 1
    assert next_counter(tmp_path) == 1
    for name in ("00003-1-a.png", "00010-2-b.jpg", "7.webp", "notes.txt", ".tmp-99999.png", "x00050.png"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "00020-folder").mkdir()
    assert next_counter(tmp_path) == 21


def test_next_counter_through_a_file_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputNotWritableError, match="--out"):
        next_counter(blocker)
