"""scripts/build_lexicon.py on a tiny WordNet-format directory (no Debian files needed)."""

from __future__ import annotations

from pathlib import Path

import build_lexicon as bl
import pytest

# offset lexfile pos word-count (word lex-id)... pointer-count (symbol offset pos source/target)... | gloss
DATA = """  1 This header line is the licence in the real files.
00000001 03 n 01 entity 0 000 | the root
00000010 03 n 01 food 0 001 @ 00000001 n 0000 | food
00000020 13 n 01 dish 0 001 @ 00000010 n 0000 | a dish
00000030 13 n 02 tiramisu 0 tiramisu_cake 0 001 @ 00000020 n 0000 | a dessert
00000040 05 n 01 animal 0 001 @ 00000001 n 0000 | an animal
00000050 05 n 01 dog 0 001 @ 00000040 n 0000 | a dog
00000060 05 n 01 poodle 0 001 @ 00000050 n 0000 | a poodle
00000070 05 n 02 mouse 0 mice 0 001 @ 00000040 n 0000 | a mouse
00000080 18 n 01 hot_dog 0 001 @ 00000001 n 0000 | a show-off
00000090 13 n 01 hot_dog 0 001 @ 00000020 n 0000 | a frankfurter in a bun
00000100 13 n 01 hot_dog 0 001 @ 00000020 n 0000 | a frankfurter
00000110 06 n 01 teddy_bear 0 001 @ 00000001 n 0000 | a toy
00000120 05 n 01 bear 0 001 @ 00000040 n 0000 | a bear
00000130 06 n 01 toast 0 001 @ 00000001 n 0000 | a drink in someone's honour
00000140 13 n 01 toast 0 001 @ 00000020 n 0000 | browned bread
00000150 15 n 01 Butte 0 001 @i 00000001 n 0000 | a town
00000160 17 n 01 butte 0 001 @ 00000170 n 0000 | a hill
00000170 17 n 01 hill 0 001 @ 00000001 n 0000 | a hill
00000180 05 n 01 pup 0 001 @ 00000050 n 0000 | a young dog
00000190 18 n 01 pup 0 001 @ 00000001 n 0000 | a rude young person
"""
INDEX = """  1 licence header
animal n 1 1 @ 1 0 00000040
bear n 1 1 @ 1 0 00000120
butte n 2 1 @ 2 0 00000150 00000160
dish n 1 1 @ 1 0 00000020
dog n 1 1 @ 1 0 00000050
food n 1 1 @ 1 0 00000010
hill n 1 1 @ 1 0 00000170
hot_dog n 3 1 @ 3 0 00000080 00000090 00000100
mouse n 1 1 @ 1 0 00000070
poodle n 1 1 @ 1 0 00000060
pup n 2 1 @ 2 1 00000180 00000190
teddy_bear n 1 1 @ 1 0 00000110
tiramisu n 1 1 @ 1 0 00000030
toast n 2 1 @ 2 1 00000130 00000140
"""
COUNTS = "toast%1:10:00:: 1 0\ntoast%1:13:00:: 2 5\npup%1:05:00:: 1 3\npup%1:18:00:: 2 4\n"
ROOTS = (
    ("food.n.01", "food"),
    ("animal.n.01", "wild animal"),
    ("dog.n.01", "dog"),
    ("hill.n.01", "landscape"),
)


@pytest.fixture
def wordnet(tmp_path: Path) -> Path:
    (tmp_path / "data.noun").write_text(DATA, encoding="utf-8")
    (tmp_path / "index.noun").write_text(INDEX, encoding="utf-8")
    (tmp_path / "noun.exc").write_text("mice mouse\npoodles poodle\n", encoding="utf-8")
    (tmp_path / "cntlist.rev").write_text(COUNTS, encoding="utf-8")
    return tmp_path


def test_classes_come_from_the_nearest_root(wordnet: Path) -> None:
    built = bl.build(wordnet, ROOTS)
    words = {w: k for k, ws in built["words"].items() for w in ws}  # type: ignore[attr-defined]
    assert words["tiramisu"] == "food" and words["dish"] == "food"
    assert words["poodle"] == "dog"  # dog is nearer than animal
    assert words["bear"] == "wild animal" and words["mouse"] == "wild animal"
    assert "food" not in words and "animal" not in words  # a root's own word is too general
    assert words["butte"] == "landscape"  # the untagged proper sense (the town) does not count
    assert words["toast"] == "food"  # 5 tags for the bread against none for the drink
    assert "pup" not in words  # 3 tags as a dog, 4 as a rude person (no class): "none" wins
    assert built["plurals"] == {"mice": "mouse", "poodles": "poodle"}


def test_multiword_nouns_are_kept_when_they_name_something_else(wordnet: Path) -> None:
    built = bl.build(wordnet, ROOTS)
    assert built["phrases"] == {"-": ["teddy bear"], "food": ["hot dog"]}  # food in two senses of three


def test_lemma_class_needs_a_majority() -> None:
    classes = {"a": "food", "b": None, "c": "dog", "d": "bird"}
    assert bl.lemma_class(["a", "b"], classes) is None  # a tie: the senses disagree
    assert bl.lemma_class(["a", "b"], classes, [3, 0]) == "food"
    assert bl.lemma_class(["c", "d", "b"], classes) == "dog"  # dog and bird are one family (animal)


def test_a_directory_without_wordnet_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bl.main(["--wordnet", str(tmp_path), "--out", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: not a WordNet 3.0 directory") and err.count("\n") == 1
    with pytest.raises(bl.WordNetError, match=r"root nope\.n\.01"):
        bl.resolve_roots({}, [("nope.n.01", "food")])
