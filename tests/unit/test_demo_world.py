"""The demo world: deterministic scenes, reachable attributes, faithful captions and masks, disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest
from demo_kit import analysis, world


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
    assert {world.sample_scene(s).background for s in range(300)} == set(world.BACKGROUNDS)


def test_held_out_split_is_disjoint_from_training() -> None:
    train = {(s.shape, s.color, s.position) for s in (world.sample_scene(i, "train") for i in range(2000))}
    held = {(s.shape, s.color, s.position) for s in (world.sample_scene(i, "eval") for i in range(500))}
    assert train and held and not train & held
    assert all(world.is_held_out(*combo) for combo in held)


@pytest.mark.parametrize("seed", range(12))
def test_captions_name_the_attributes(seed: int) -> None:
    scene = world.sample_scene(seed, "any")
    for caption in world.captions(scene):
        assert scene.shape in caption and scene.color in caption and scene.background in caption
        phrases = {"center": ("middle", "center")}.get(scene.position, (scene.position,))
        assert any(p in caption for p in phrases)
    striped = world.captions(
        world.Scene(scene.shape, scene.color, scene.size, scene.position, scene.background, "striped")
    )
    assert all(world.STYLE_TRIGGER in c for c in striped)


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
    right = {"color": 0, "position": 0, "shape": 0}
    n = 60
    for seed in range(n):
        r = world.render(world.sample_scene(seed, "any"))
        found = analysis.analyse(r.image)
        for field in right:
            right[field] += getattr(found, field) == getattr(r.scene, field)
        assert analysis.mask_iou(found.mask, r.mask) > 0.6
    assert right["color"] == n and right["position"] == n and right["shape"] >= 0.9 * n


def test_tokenizer_keeps_every_world_word_whole() -> None:
    pytest.importorskip("transformers")
    from demo_kit.tokenizer import demo_tokenizer

    tokenizer = demo_tokenizer()
    for word in world.vocabulary():
        assert tokenizer.tokenize(word) == [f"{word}</w>"], word
    assert tokenizer.tokenize("a red circle") == ["a</w>", "red</w>", "circle</w>"]


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


def test_the_shipped_word_list_is_the_worlds_vocabulary() -> None:
    from ml_lib.diffusion.demo.words import known_words

    assert known_words() == {*world.vocabulary(), world.OUTLINE_TRIGGER}
