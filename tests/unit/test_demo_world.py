"""The demo world (version 2): deterministic scenes, one palette for objects and backgrounds, captions in
the phrasing people type, faithful masks, disjoint splits, and an analyser that reads it all back."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from demo_kit import analysis, world

FREEFORM = Path(__file__).parents[2] / "benchmarks" / "data" / "demo_freeform.jsonl"


def _shipped_world() -> int:
    from ml_lib.diffusion.demo.assets import demo_folder

    path = demo_folder() / "training.json"
    return int(json.loads(path.read_text()).get("world", 1)) if path.is_file() else 0


def _freeform() -> list[dict[str, str]]:
    return [json.loads(line) for line in FREEFORM.read_text().splitlines() if line.strip()]


def test_same_seed_same_scene_and_pixels() -> None:
    a, b = world.render(world.sample_scene(7)), world.render(world.sample_scene(7))
    assert a.scene == b.scene
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.captions == b.captions
    assert world.sample_scene(7) != world.sample_scene(8)


def test_rendered_arrays_have_the_documented_form() -> None:
    r = world.render(world.sample_scene(3))
    assert r.image.shape == (64, 64, 3) and r.image.dtype == np.uint8
    assert r.mask.shape == (64, 64) and r.mask.dtype == bool


def test_every_attribute_is_reachable_in_both_splits() -> None:
    for split in ("train", "eval"):
        scenes = [world.sample_scene(seed, split) for seed in range(1500)]
        assert {s.shape for s in scenes} == set(world.SHAPES)
        assert {s.color for s in scenes} == set(world.COLORS)
        assert {s.position for s in scenes} == set(world.POSITIONS)
        assert {s.size for s in scenes} == set(world.SIZES)
        assert {s.background for s in scenes} == set(world.BACKGROUNDS)
        assert all(world.allowed(s.color, s.background) for s in scenes)


def test_held_out_split_is_disjoint_from_training() -> None:
    def combos(s: world.Scene) -> set[tuple[str, ...]]:
        return {(s.shape, s.color, s.position), (s.color, "on", s.background)}

    train = [world.sample_scene(i, "train") for i in range(2000)]
    held = [world.sample_scene(i, "eval") for i in range(500)]
    assert not any(world.is_held_out(s.shape, s.color, s.position, s.background) for s in train)
    assert all(world.is_held_out(s.shape, s.color, s.position, s.background) for s in held)
    seen = set().union(*(combos(s) for s in train))
    assert all(combos(s) - seen for s in held)  # each has a combination training never shows
    assert len({(s.color, s.background) for s in held if (s.color, "on", s.background) not in seen}) > 20


def test_one_palette_for_objects_and_backgrounds() -> None:
    named = {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "white", "black", "gray",
             "brown", "beige"}  # fmt: skip
    assert named <= set(world.COLORS) and set(world.COLORS) <= set(world.BACKGROUNDS)
    for a, b in itertools.combinations(world.COLORS, 2):
        assert np.linalg.norm(np.subtract(world.COLORS[a], world.COLORS[b])) >= 65, (a, b)
        assert world.allowed(a, b) and world.allowed(b, a)
    assert not world.allowed("red", "red") and not world.allowed("gray", "white to gray gradient")
    with pytest.raises(ValueError, match="background"):
        world.Scene("circle", "blue", "big", "left", "blue")


def test_every_colour_on_every_other_background_is_read_back() -> None:
    combos = [(c, b) for c, b in itertools.product(world.COLORS, world.BACKGROUNDS) if world.allowed(c, b)]
    assert len(combos) > 300
    for i, (color, background) in enumerate(combos):
        position = tuple(world.POSITIONS)[i % 5]
        scene = world.Scene(world.SHAPES[i % 5], color, ("small", "big")[i % 2], position, background)
        found = analysis.analyse(world.render(scene).image)
        assert (found.color, found.background, found.position) == (color, background, position), scene


def test_outline_ink_is_legible_on_every_background() -> None:
    for color, background in itertools.product(world.COLORS, world.BACKGROUNDS):
        if world.allowed(color, background):
            ink = world.outline_ink(color, background)
            assert ink != color and world.allowed(ink, background), (color, background, ink)


@pytest.mark.parametrize("seed", range(12))
def test_captions_say_what_the_scene_is(seed: int) -> None:
    scene = world.sample_scene(seed, "any")
    texts = world.captions(scene)
    for caption in texts:
        asked = world.parse_caption(caption)
        assert (asked["shape"], asked["color"], asked["position"]) == (
            scene.shape,
            scene.color,
            scene.position,
        )
        assert asked["background"] in (None, scene.background) and asked["size"] in (None, scene.size)
    assert world.parse_caption(texts[0])["background"] == scene.background  # the first one says it all
    for caption in world.captions(scene, position=None):
        assert world.parse_caption(caption)["position"] is None, caption
    striped = world.captions(
        world.Scene(scene.shape, scene.color, scene.size, scene.position, scene.background, "striped")
    )
    assert all(world.STYLE_TRIGGER in c for c in striped)


def test_captions_use_the_phrasing_people_type() -> None:
    texts = {c for s in range(300) for c in world.captions(world.sample_scene(s, "any"))}
    for phrase in ("on white", "over a", "backdrop", "dark background", "in the middle", "near the top",
                   " big ", " small ", " large ", "against a", "an orange"):  # fmt: skip
        assert any(phrase in f" {t} " for t in texts), phrase


def test_free_form_captions_are_read_as_written_by_hand() -> None:
    rows = _freeform()
    assert len(rows) >= 30
    words = set(world.vocabulary())
    fields = ("shape", "color", "background", "position", "size")
    for row in rows:
        caption = row["caption"]
        assert world.parse_caption(caption) == {k: row.get(k) for k in fields}, caption
        assert set(caption.replace(",", " ").split()) <= words, caption
        if row.get("background"):
            assert world.allowed(row["color"], row["background"]), caption


def test_control_scenes_put_the_object_anywhere() -> None:
    scenes = [world.sample_control_scene(s) for s in range(200)]
    centres = np.asarray([s.center for s in scenes])
    assert centres.min() < 14 and centres.max() > 50  # corners too, not only the five positions
    for s in scenes[:20]:
        mask = world.render(s).mask
        assert mask.any() and not mask[0].any() and not mask[-1].any()  # inside the frame


def test_tokenizer_covers_every_caption_word() -> None:
    pytest.importorskip("transformers")
    from demo_kit.tokenizer import demo_tokenizer

    tokenizer = demo_tokenizer()
    for word in world.vocabulary():
        assert tokenizer.tokenize(word) == [f"{word}</w>"], word
    assert tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]
    texts = [r["caption"] for r in _freeform()] + [
        c for s in range(50) for c in world.captions(world.sample_scene(s))
    ]
    for caption in texts:
        assert len(tokenizer.tokenize(caption)) == len(caption.replace(",", " , ").split()), caption


def test_grown_tokenizer_keeps_world_1_ids_and_seeds_new_rows() -> None:
    """World-1 tokens keep their ids, so the shipped text encoder's rows stay valid; new words get rows
    started from related words."""
    pytest.importorskip("transformers")
    import torch
    from demo_kit.tokenizer import WORLD1_WORDS, demo_tokenizer, grow_embeddings

    tokenizer = demo_tokenizer()
    vocab = tokenizer.get_vocab()
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (651, 652, 652)
    assert all(vocab[f"{w}</w>"] < 651 for w in WORLD1_WORDS) and vocab["backdrop</w>"] >= 653
    old = torch.randn(653, 8)
    grown = grow_embeddings({"embeddings.token_embedding.weight": old}, tokenizer)
    rows = grown["embeddings.token_embedding.weight"]
    assert rows.shape == (len(tokenizer), 8) and torch.equal(rows[:653], old)
    assert torch.equal(rows[vocab["backdrop</w>"]], old[vocab["background</w>"]])


def test_mask_matches_the_drawn_object() -> None:
    for seed in range(20):
        r = world.render(world.sample_scene(seed))
        color = np.asarray(world.COLORS[r.scene.color], dtype=np.float32)
        inside = np.linalg.norm(r.image[r.mask].astype(np.float32) - color, axis=1)
        assert np.median(inside) < 30  # the masked pixels carry the object colour
        cx, cy = r.scene.center
        ys, xs = np.nonzero(r.mask)
        assert abs(xs.mean() - cx) < 4 and abs((ys.min() + ys.max()) / 2 - cy) < 4


def test_styles_and_control_maps() -> None:
    scene = world.sample_scene(5)
    plain = world.render(scene)
    striped = world.render(
        world.Scene(**{**{f: getattr(scene, f) for f in scene.__slots__}, "style": "striped"})
    )
    assert np.array_equal(plain.mask, striped.mask) and not np.array_equal(plain.image, striped.image)
    control = np.asarray(world.control_image(plain.mask))
    assert control.shape == (64, 64, 3) and set(np.unique(control)) <= {0, 255}
    edges = world.edge_map(plain.mask)
    assert edges.sum() > 0 and not (edges & ~plain.mask).any()


def test_scene_rejects_unknown_attributes() -> None:
    with pytest.raises(ValueError, match="shape"):
        world.Scene("hexagon", "red", "small", "left", "white")


def test_analysis_reads_the_true_renders() -> None:
    right = {"color": 0, "position": 0, "shape": 0, "background": 0}
    n = 60
    for seed in range(n):
        r = world.render(world.sample_scene(seed, "any"))
        found = analysis.analyse(r.image)
        for field in right:
            right[field] += getattr(found, field) == getattr(r.scene, field)
        assert analysis.mask_iou(found.mask, r.mask) > 0.6
    assert right["color"] == right["position"] == right["background"] == n and right["shape"] >= 0.9 * n


def test_outline_detector_separates_the_styles() -> None:
    plain = [analysis.analyse(world.render(world.sample_scene(s)).image) for s in range(40)]
    outlined = [
        analysis.analyse(world.render(world.sample_scene(s, style="outline")).image) for s in range(40)
    ]
    assert not any(a.outlined for a in plain)
    assert sum(a.outlined for a in outlined) >= 0.7 * len(outlined)


def test_outline_band_is_peeled_before_colour_and_shape_are_read() -> None:
    """The complementary-colour outline is the style's: the object's own colour and shape are read inside it."""
    scenes = [world.sample_scene(s, style="outline") for s in range(60)]
    found = [analysis.analyse(world.render(scene).image) for scene in scenes]
    assert sum(a.color == s.color for a, s in zip(found, scenes, strict=True)) >= 0.9 * len(scenes)
    assert sum(a.shape == s.shape for a, s in zip(found, scenes, strict=True)) >= 0.6 * len(scenes)
    styled = world.render(world.Scene("circle", "yellow", "big", "center", "white", "outline"))
    assert analysis.analyse(styled.image).color == "yellow"  # not its purple outline
    on_purple = world.render(world.Scene("circle", "yellow", "big", "center", "purple", "outline"))
    assert world.outline_ink("yellow", "purple") == "black" and analysis.analyse(on_purple.image).outlined


def test_outside_words_ignores_syntax_and_known_words() -> None:
    from ml_lib.diffusion.demo.words import outside_words

    prompt = "(red:1.3) circle BREAK <lora:dmoutline:0.8> on the left, a cat, cat, light blue background"
    assert outside_words(prompt) == ("cat",)
    assert (
        outside_words("dmoutline, a big yellow star in the middle over a white to gray gradient background")
        == ()
    )


def test_outside_words_names_words_of_any_script() -> None:
    from ml_lib.diffusion.demo.words import outside_words

    assert outside_words("un cercle rouge à gauche, 赤い 円, große Kugel") == (
        "un", "cercle", "rouge", "à", "gauche", "赤い", "円", "große", "kugel",
    )  # fmt: skip


@pytest.mark.skipif(_shipped_world() < world.WORLD_VERSION, reason="the shipped demo is still world 1")
def test_the_shipped_word_list_is_the_worlds_vocabulary() -> None:
    from ml_lib.diffusion.demo.words import known_words

    assert known_words() == {*world.vocabulary(), world.OUTLINE_TRIGGER}
