"""The infotext parser is linear: hostile megabyte-sized text parses fast, and exactly as A1111's regex."""

from __future__ import annotations

import random
import re
import time

import pytest

from ml_lib.diffusion.output.infotext import find_parameters, parse_infotext

#: A1111's pattern (modules/infotext_utils.py): the reference our scanner must agree with.
A1111_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')

_MB = 1 << 20


def _hostile(shape: str, size: int) -> str:
    unit = {
        "long line": "word ",
        "commas": "a,",
        "quotes": 'k: "\\", ',
        "open quotes": 'ab: "x ',
        "nesting": "((((a:1.1), [b]) {c}",
        "keys without values": "Steps 20 Sampler Euler ",
    }[shape]
    return "a prompt\n" + unit * (size // len(unit))


@pytest.mark.parametrize(
    "shape", ["long line", "commas", "quotes", "open quotes", "nesting", "keys without values"]
)
def test_a_megabyte_of_hostile_text_parses_in_well_under_two_seconds(shape: str) -> None:
    text = _hostile(shape, _MB)
    start = time.perf_counter()
    info = parse_infotext(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"{shape}: {elapsed:.2f} s for 1 MB (A1111's regex takes minutes)"
    assert info.prompt  # nothing was lost: the text became prompt or parameters


def test_time_grows_linearly_not_quadratically() -> None:
    small, large = _hostile("long line", 64 << 10), _hostile("long line", 512 << 10)
    timings = []
    for text in (small, large):
        start = time.perf_counter()
        parse_infotext(text)
        timings.append(time.perf_counter() - start)
    assert timings[1] < 8 * timings[0] * 4 + 0.05  # 8x the text: linear ≈ 8x, quadratic ≈ 64x


_ALPHABET = ["a", "b", "c", " ", ":", ",", '"', "\\", "-", "/", "\t", "é", "_", "1"]


def test_the_scanner_finds_exactly_what_a1111s_regex_finds() -> None:
    rng = random.Random(13)
    for _ in range(20000):
        line = "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 30)))
        assert find_parameters(line) == A1111_PARAM.findall(line), repr(line)


@pytest.mark.parametrize(
    "line",
    [
        'Steps: 20, Sampler: "DPM++ 2M, odd", CFG scale: 7',
        'a: "\\"", b: "x"y, c: ""',
        "Size: 512x512,Seed: 3 , Model: x y z",
        'k: "unterminated, v: 2, w: "\\" , z: 1',
        "ab cd\tef: 1, gh:2",
        "",
    ],
)
def test_known_tricky_lines_match_a1111(line: str) -> None:
    assert find_parameters(line) == A1111_PARAM.findall(line)
