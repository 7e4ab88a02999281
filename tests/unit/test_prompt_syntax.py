"""A1111 prompt syntax: attention weights, editing/alternation schedules, AND, extra networks, round trip.

Expected values are A1111's own doctests (modules/prompt_parser.py) and results computed by hand with
A1111's rules.
"""

from __future__ import annotations

import random

import pytest

from ml_lib.diffusion.prompt.attention import parse_prompt_attention
from ml_lib.diffusion.prompt.nodes import Alternation, Emphasis, Scheduled, Text, escape, render_nodes
from ml_lib.diffusion.prompt.syntax import EmbeddingRef, parse_prompt


def chunks(text: str) -> list[list[object]]:
    return [[c.text, c.weight] for c in parse_prompt_attention(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # A1111's docstring examples
        ("normal text", [["normal text", 1.0]]),
        ("an (important) word", [["an ", 1.0], ["important", 1.1], [" word", 1.0]]),
        ("(unbalanced", [["unbalanced", 1.1]]),
        ("\\(literal\\]", [["(literal]", 1.0]]),
        ("(unnecessary)(parens)", [["unnecessaryparens", 1.1]]),
        (
            "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            [
                ["a ", 1.0],
                ["house", 1.5730000000000004],
                [" ", 1.1],
                ["on", 1.0],
                [" a ", 1.1],
                ["hill", 0.55],
                [", sun, ", 1.1],
                ["sky", 1.4641000000000006],
                [".", 1.1],
            ],
        ),
    ],
)
def test_attention_matches_a1111_docstring(text: str, expected: list[list[object]]) -> None:
    assert chunks(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[a]", [["a", 1 / 1.1]]),
        ("((a))", [["a", 1.1 * 1.1]]),
        ("(a: 1.5 )", [["a", 1.5]]),
        ("[unclosed", [["unclosed", 1 / 1.1]]),
        ("a) b] c", [["a) b] c", 1.0]]),  # stray closers are text
        ("(a:b)", [["a:b", 1.1]]),  # a weight that is not a number is text
        ("(a:1.2.3)", [["a:1.2.3", 1.1]]),  # A1111 raises here; we degrade to a plain (…)
        ("", [["", 1.0]]),
        ("a BREAK b", [["a", 1.0], ["BREAK", -1.0], ["b", 1.0]]),
        ("(a BREAK b)", [["a", 1.1], ["BREAK", -1.1], ["b", 1.1]]),  # A1111: BREAK in brackets is text
        ("a \\x", [["a x", 1.0]]),  # a backslash escaping nothing disappears
    ],
)
def test_attention_edge_cases(text: str, expected: list[list[object]]) -> None:
    assert _close(chunks(text), expected)


def _close(got: list[list[object]], want: list[list[object]]) -> bool:
    return len(got) == len(want) and all(
        g[0] == w[0] and abs(float(g[1]) - float(w[1])) < 1e-12
        for g, w in zip(got, want, strict=True)  # type: ignore[arg-type]
    )


def test_break_marker() -> None:
    (before, marker, after) = parse_prompt_attention("cat BREAK dog")
    assert marker.is_break and not before.is_break and after.text == "dog"


def schedule(text: str, steps: int = 10, hires: int | None = None) -> list[list[object]]:
    (part,) = parse_prompt(text).subprompts
    return [[e.end_step, e.text] for e in part.schedule(steps, hires_steps=hires)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # A1111's docstring examples of get_learned_conditioning_prompt_schedules(…, 10)
        ("test", [[10, "test"]]),
        ("a [b:3]", [[3, "a "], [10, "a b"]]),
        ("a [b: 3]", [[3, "a "], [10, "a b"]]),
        ("a [[[b]]:2]", [[2, "a "], [10, "a [[b]]"]]),
        ("[(a:2):3]", [[3, ""], [10, "(a:2)"]]),
        ("a [b : c : 1] d", [[1, "a b  d"], [10, "a  c  d"]]),
        ("a[b:[c:d:2]:1]e", [[1, "abe"], [2, "ace"], [10, "ade"]]),
        ("a [unbalanced", [[10, "a [unbalanced"]]),
        ("a [b:.5] c", [[5, "a  c"], [10, "a b c"]]),
        ("((a][:b:c [d:3]", [[3, "((a][:b:c "], [10, "((a][:b:c d"]]),
        ("[a|(b:1.1)]", [[i, "a" if i % 2 else "(b:1.1)"] for i in range(1, 11)]),
        ("[fe|]male", [[i, "female" if i % 2 else "male"] for i in range(1, 11)]),
        ("[fe|||]male", [[i, "female" if i % 4 == 1 else "male"] for i in range(1, 11)]),
        # lark really fails on "|" outside an alternation (A1111's own doctest for this is stale)
        ("a [{b|d{:.5] c", [[10, "a [{b|d{:.5] c"]]),
    ],
)
def test_schedule_matches_a1111(text: str, expected: list[list[object]]) -> None:
    assert schedule(text) == expected


def test_schedule_hires_and_bounds() -> None:
    assert schedule("a [b:.5] c", 10, 10) == [[10, "a b c"]]
    assert schedule("a [b:1.5] c", 10, 10) == [[5, "a  c"], [10, "a b c"]]
    assert schedule("[a:b:0]") == [[10, "b"]]
    assert schedule("[a:b:-3]") == [[10, "b"]]
    assert schedule("[a:b:1e400]") == [[10, "a"]]  # A1111 overflows; we clamp to the last step
    assert schedule("[a:b:25]") == [[10, "a"]]


def test_text_and_chunks_at_step() -> None:
    (part,) = parse_prompt("a (cat:1.2) [in the snow:on grass:0.5]").subprompts
    assert part.text_at(3, 10) == "a (cat:1.2) in the snow"
    assert part.text_at(6, 10) == "a (cat:1.2) on grass"
    assert [(c.text, c.weight) for c in part.chunks_at(6, 10)] == [
        ("a ", 1.0),
        ("cat", 1.2),
        (" on grass", 1.0),
    ]


def test_tree_shape() -> None:
    (part,) = parse_prompt("x (y:1.3) [z] [a:b:4] [c|d]").subprompts
    kinds = [type(n) for n in part.nodes]
    assert kinds == [Text, Emphasis, Text, Emphasis, Text, Scheduled, Text, Alternation]
    assert part.nodes[1].multiplier == 1.3  # type: ignore[union-attr]
    assert part.nodes[3].multiplier == pytest.approx(1 / 1.1)  # type: ignore[union-attr]


def test_and_weights() -> None:
    doc = parse_prompt("a cat :1.2 AND a dog:0.5 AND BRAND new car")
    assert [(p.text, p.weight) for p in doc.subprompts] == [
        ("a cat", 1.2),
        (" a dog", 0.5),
        (" BRAND new car", 1.0),
    ]
    assert doc.is_composable


def test_extra_networks() -> None:
    doc = parse_prompt(
        "a <lora:detail:0.6> cat, <lora:style:0.5:0.8>, <lora:x:te=0.3:unet=0.9:dyn=8> <hypernet:h:1>"
    )
    lora, style, named, hyper = doc.networks
    assert (lora.name, lora.te_weight, lora.unet_weight) == ("detail", 0.6, 0.6)
    assert (style.te_weight, style.unet_weight) == (0.5, 0.8)
    assert (named.te_weight, named.unet_weight, named.dyn_dim) == (0.3, 0.9, 8)
    assert named.arg("te") == "0.3" and named.positional == ("x",)
    assert not hyper.supported and hyper.weight == 1.0
    assert doc.loras == (lora, style, named)
    assert doc.text == "a  cat, ,  "
    assert any("not supported" in p for p in doc.problems)


def test_network_bad_numbers_are_problems_not_errors() -> None:
    doc = parse_prompt("<lora:x:abc> <lyco:y:1:nan>")
    bad, nan = doc.networks
    assert bad.te_weight is None and bad.unet_weight is None
    assert nan.te_weight == 1.0 and nan.unet_weight is None and nan.supported
    assert len(doc.problems) == 2
    assert parse_prompt("<lora:x>").networks[0].te_weight == 1.0


def test_plain_text() -> None:
    doc = parse_prompt(
        r"<lora:x:1> (masterpiece:1.2), a [cat|dog] [in snow:on grass:5] BREAK \(sign\) AND sky"
    )
    assert doc.plain_text == "masterpiece, a cat dog in snow on grass, (sign), sky"


def test_embeddings() -> None:
    doc = parse_prompt(
        "(EasyNegative:1.2), bad-hands-5, embedding:my_style.pt, nobad-hands-5",
        embeddings=["easynegative", "bad-hands-5"],
    )
    assert doc.embeddings == (
        EmbeddingRef("my_style", explicit=True),
        EmbeddingRef("easynegative"),
        EmbeddingRef("bad-hands-5"),
    )


def test_feature_flags() -> None:
    doc = parse_prompt("a [b|c] [d:e:2] (f) BREAK g")
    assert doc.uses_alternation and doc.uses_editing and doc.uses_emphasis and doc.uses_break
    assert not parse_prompt("plain words").uses_emphasis


ROUND_TRIP = [
    "",
    "a cat",
    "masterpiece, (best quality:1.2), [[blurry]], <lora:add_detail:0.8> 1girl AND (sky:0.9) :0.7",
    "a [b:[c:d:2]:1]e BREAK (x [y|z|] w:1.3) \\(escaped\\) <lyco:l:1:te=0.2>",
    "((a][:b:c [d:3]",
    "a | b (unbalanced [x",
    "<<lora:a:1>lora:b:1> trailing \\",
    "  spaces  AND  \n multi\nline :2 ",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text: str) -> None:
    doc = parse_prompt(text)
    assert doc.render() == text
    assert parse_prompt(doc.render()) == doc


def test_fuzz_never_raises_and_round_trips() -> None:
    rng = random.Random(1234)
    alphabet = [*"ab c()[]:|\\,", "1", ".5", " AND ", "BREAK", ":0.5", "\n", "<lora:x:0.5>", "embedding:e"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        doc = parse_prompt(text, embeddings=["e"])
        assert doc.render() == text
        assert parse_prompt(doc.render(), embeddings=["e"]) == doc
        for part in doc.subprompts:
            for entry in part.schedule(8):
                assert entry.chunks
        assert isinstance(doc.plain_text, str)


def test_escape_and_render_built_tree() -> None:
    nodes = (Text(escape("a (b) [c]")), Emphasis((Text("d"),), "(", (Text("1.4"),)))
    assert render_nodes(nodes) == "a \\(b\\) \\[c\\](d:1.4)"
    assert [(c.text, c.weight) for c in parse_prompt_attention(render_nodes(nodes))] == [
        ("a (b) [c]", 1.0),
        ("d", 1.4),
    ]
