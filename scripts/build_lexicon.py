"""Build ``vocab/wordnet_kinds.json``: the analyzer's class of each English noun in WordNet 3.0.

Run: ``python scripts/build_lexicon.py [--wordnet /usr/share/wordnet] [--out src/.../vocab/wordnet_kinds.json]``
(Debian's ``wordnet-base`` package installs the database at ``/usr/share/wordnet``).

Each noun lemma (one word, or several: "hot dog", "zebra crossing") gets the class of its senses: a sense's
class is that of the nearest root synset (``ROOTS``) on its hypernym paths (instance-of links count, but not
for people: "Monet" is no person in a prompt; a stop root such as "meal" gives no class). A lemma takes the
class whose family (animals, vehicles, or the class itself) holds more than half of the weight of its
senses, a sense weighing its SemCor tag count (``cntlist.rev``) plus one half (a proper-noun sense beside
common ones, such as the town "Butte", its tags alone), and a sense without a class counting for "none":
"car" is a car (71 tags) though two of its five senses are compartments, "hot dog" (no tags) is food in two
senses of three, "fox" an animal; "table" (a table of data first) has none, and a lemma whose senses
disagree with no majority is dropped ("smoothie": a drink and a smooth talker; "sage": a wise man, a plant
and an herb). Words used more as adjectives than as nouns are dropped ("white"), and so are the root
synsets' own words ("beast", "creature": too general to say what a prompt shows). Single words are kept when
they have a class; a multiword noun is kept when its class differs from one of its words' own class, which
is what lets it shadow that word ("hot dog" is food, not a dog; "teddy bear" is no animal): it is then
stored with its class or with "-".
The file is read by ``ml_lib.diffusion.prompt.noun_kinds``; the database files are parsed directly (no nltk).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

#: (root synset as "lemma.n.SENSE", class). The nearest root on a sense's hypernym paths gives its class.
ROOTS: tuple[tuple[str, str | None], ...] = (
    ("meal.n.01", None),  # "dinner", "lunch": an occasion more than a dish ("a family having dinner")
    ("food.n.01", "food"),
    ("food.n.02", "food"),
    ("beverage.n.01", "food"),
    ("dish.n.02", "food"),
    ("foodstuff.n.02", "food"),
    ("edible_fruit.n.01", "food"),
    ("vegetable.n.01", "food"),
    ("room.n.01", "interior"),
    ("furniture.n.01", "interior"),
    ("home_appliance.n.01", "interior"),
    ("floor.n.02", "interior"),
    ("corridor.n.01", "interior"),
    ("building.n.01", "architecture"),
    ("tower.n.01", "architecture"),
    ("bridge.n.01", "architecture"),
    ("shelter.n.01", "architecture"),
    ("monument.n.01", "architecture"),
    ("fortification.n.01", "architecture"),
    ("geological_formation.n.01", "landscape"),
    ("body_of_water.n.01", "landscape"),
    ("forest.n.01", "landscape"),
    ("grassland.n.01", "landscape"),
    ("desert.n.01", "landscape"),
    ("island.n.01", "landscape"),
    ("jungle.n.03", "landscape"),
    ("wetland.n.01", "landscape"),
    ("bird.n.01", "bird"),
    ("insect.n.01", "insect"),
    ("arachnid.n.01", "insect"),
    ("fish.n.01", "sea creature"),
    ("aquatic_mammal.n.01", "sea creature"),
    ("cephalopod.n.01", "sea creature"),
    ("dog.n.01", "dog"),
    ("cat.n.01", "cat"),
    ("equine.n.01", "horse"),
    ("animal.n.01", "wild animal"),
    ("aircraft.n.01", "aircraft"),
    ("vessel.n.02", "ship"),
    ("boat.n.01", "ship"),
    ("motorcycle.n.01", "motorcycle"),
    ("bicycle.n.01", "motorcycle"),
    ("motor_vehicle.n.01", "car"),
    ("vehicle.n.01", "vehicle"),
    ("craft.n.02", "vehicle"),
    ("person.n.01", "person"),
)
#: Kinds that are one content family: senses of one family add up ("gondola": a rail car, a boat, a cabin).
FAMILIES: dict[str, str] = {
    **{kind: "animal" for kind in ("bird", "insect", "sea creature", "dog", "cat", "horse", "wild animal")},
    **{kind: "vehicle" for kind in ("aircraft", "ship", "motorcycle", "car", "vehicle")},
}
#: Classes given through instance-of links ("Mount Everest" is a mountain; "Monet" stays out).
INSTANCE_CLASSES = frozenset({"landscape", "architecture"})
NONE = "-"


class WordNetError(ValueError):
    """The WordNet directory is missing a file or a line does not parse."""


def parse_data(lines: Iterable[str]) -> dict[str, tuple[list[str], list[str]]]:
    """``data.noun`` lines → offset → (hypernym offsets, instance-hypernym offsets)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for line in lines:
        if not line or line.startswith(" "):
            continue  # the licence header
        fields = line.split(" | ", 1)[0].split()
        try:
            offset, words = fields[0], int(fields[3], 16)
            at = 4 + 2 * words
            pointers = int(fields[at])
            hypernyms: list[str] = []
            instances: list[str] = []
            for k in range(pointers):
                symbol, target, pos = fields[at + 1 + 4 * k : at + 4 + 4 * k]
                if pos == "n" and symbol in ("@", "@i"):
                    (hypernyms if symbol == "@" else instances).append(target)
        except (IndexError, ValueError) as exc:
            raise WordNetError(f"data.noun: cannot parse line {line[:60]!r}") from exc
        out[offset] = (hypernyms, instances)
    return out


def proper_senses(lines: Iterable[str]) -> set[tuple[str, str]]:
    """``data.noun`` lines → (lower-case lemma, offset) of the words written with a capital (proper nouns:
    "Butte" the town, "Hero" of Alexandria), which a lower-case prompt word does not mean."""
    out: set[tuple[str, str]] = set()
    for line in lines:
        if not line or line.startswith(" "):
            continue
        fields = line.split(" | ", 1)[0].split()
        words = int(fields[3], 16)
        for word in fields[4 : 4 + 2 * words : 2]:
            form = word.split("(", 1)[0]  # "beautiful(a)" markers are adjectives' only
            if form != form.lower():
                out.add((form.lower().replace("_", " "), fields[0]))
    return out


def parse_index(lines: Iterable[str]) -> dict[str, list[str]]:
    """``index.noun`` lines → lemma (spaces for ``_``) → synset offsets, most frequent sense first."""
    out: dict[str, list[str]] = {}
    for line in lines:
        if not line or line.startswith(" "):
            continue
        fields = line.split()
        try:
            senses = int(fields[2])
            out[fields[0].replace("_", " ")] = fields[len(fields) - senses :]
        except (IndexError, ValueError) as exc:
            raise WordNetError(f"index.noun: cannot parse line {line[:60]!r}") from exc
    return out


def synset_classes(
    data: Mapping[str, tuple[list[str], list[str]]], roots: Mapping[str, str | None]
) -> dict[str, str | None]:
    """Each synset's class: that of the nearest root (breadth-first up the hypernym links), or None (also
    when the nearest root is a stop, class None). A root synset itself has no class: its words ("beast",
    "creature", "food") are too general to say what a prompt shows."""
    memo: dict[str, str | None] = {}

    def nearest(offset: str) -> str | None:
        frontier, seen = [(offset, False)], {offset}
        while frontier:
            following: list[tuple[str, bool]] = []
            for node, via_instance in frontier:
                if node in roots and node != offset:
                    label = roots[node]
                    if label is None or not via_instance or label in INSTANCE_CLASSES:
                        return label
                hypernyms, instances = data.get(node, ([], []))
                for target, instance in [(h, via_instance) for h in hypernyms] + [
                    (i, True) for i in instances
                ]:
                    if target not in seen:
                        seen.add(target)
                        following.append((target, instance))
            frontier = following
        return None

    for offset in data:
        memo[offset] = nearest(offset)
    return memo


def parse_counts(lines: Iterable[str]) -> tuple[dict[tuple[str, int], int], Counter[str]]:
    """``cntlist.rev`` lines → (noun lemma, sense number) → SemCor tag count, and adjective → its tags."""
    nouns: dict[tuple[str, int], int] = {}
    adjectives: Counter[str] = Counter()
    for line in lines:
        fields = line.split()
        if len(fields) != 3 or "%" not in fields[0]:
            continue
        lemma, _, key = fields[0].partition("%")
        lemma = lemma.replace("_", " ")
        if key.startswith("1:"):
            nouns[(lemma, int(fields[1]))] = int(fields[2])
        elif key.startswith(("3:", "5:")):
            adjectives[lemma] += int(fields[2])
    return nouns, adjectives


def lemma_class(
    senses: list[str],
    classes: Mapping[str, str | None],
    counts: list[int] | None = None,
    proper: list[bool] | None = None,
) -> str | None:
    """The class of the family (``FAMILIES``; "none" counts as one) holding more than half of the weight,
    the family's first sense giving the class; None when "none" wins or no family holds most ("smoothie": a
    drink and a smooth talker; "sage": a wise man, a plant and an herb). A sense weighs its tag count plus
    one half, a ``proper``-noun sense beside common ones its tag count alone ("heron": a bird, not Hero)."""
    labels = [classes.get(offset) or NONE for offset in senses]
    families = [FAMILIES.get(label, label) for label in labels]
    weights: Counter[str] = Counter()
    for k, family in enumerate(families):
        base = 0.0 if proper and proper[k] and not all(proper) else 0.5
        weights[family] += (counts[k] if counts and k < len(counts) else 0) + base
    best = max(weights.values())
    if best == 0 or best * 2 <= sum(weights.values()):
        return None  # no family holds most of the weight: the senses disagree
    chosen = next(label for label, family in zip(labels, families, strict=True) if weights[family] == best)
    return None if chosen == NONE else chosen


def build_kinds(
    index: Mapping[str, list[str]],
    classes: Mapping[str, str | None],
    exceptions: Mapping[str, str],
    counts: Mapping[tuple[str, int], int] | None = None,
    adjectives: Mapping[str, int] | None = None,
    proper: set[tuple[str, str]] | None = None,
) -> dict[str, object]:
    """The file's content: ``words`` (class → sorted single words), ``phrases`` (class or "-" → sorted
    multiword nouns) and ``plurals`` (irregular plural → singular, for classed singulars only). A single
    word used more as an adjective than as a noun (``adjectives``: tag counts) is left out ("white"); the
    ``proper`` senses weigh only their tags ("butte" is a hill, not the town; "manhattan" stays out)."""
    tags = counts or {}
    adjective_tags = adjectives or {}
    capitals = proper or set()
    labels: dict[str, str | None] = {}
    for lemma, senses in index.items():
        if not lemma.isascii() or not any(ch.isalpha() for ch in lemma):
            continue
        labels[lemma] = lemma_class(
            senses,
            classes,
            [tags.get((lemma, k + 1), 0) for k in range(len(senses))],
            [(lemma, offset) in capitals for offset in senses],
        )
    single = {
        lemma: label
        for lemma, label in labels.items()
        if " " not in lemma
        and label is not None
        and adjective_tags.get(lemma, 0) <= sum(tags.get((lemma, k + 1), 0) for k in range(len(index[lemma])))
    }
    phrases: dict[str, str] = {}
    for lemma, label in labels.items():
        if " " not in lemma:
            continue
        parts = {single.get(word) for word in lemma.split()}
        if parts != {label}:  # it names something its words alone would not
            phrases[lemma] = label or NONE
    plurals = {p: s for p, s in exceptions.items() if s in single and " " not in p and p != s}
    return {
        "words": _grouped(single),
        "phrases": _grouped(phrases),
        "plurals": dict(sorted(plurals.items())),
    }


def _grouped(mapping: Mapping[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for lemma, label in sorted(mapping.items()):
        out.setdefault(label, []).append(lemma)
    return dict(sorted(out.items()))


def resolve_roots(
    index: Mapping[str, list[str]], roots: Iterable[tuple[str, str | None]]
) -> dict[str, str | None]:
    """``"lemma.n.SENSE"`` names → synset offset → class (an unknown name is an error)."""
    out: dict[str, str | None] = {}
    for name, label in roots:
        lemma, _, sense = name.rsplit(".", 2)
        offsets = index.get(lemma.replace("_", " "), [])
        if not 1 <= int(sense) <= len(offsets):
            raise WordNetError(f"root {name} is not in index.noun")
        out[offsets[int(sense) - 1]] = label
    return out


def build(wordnet: Path, roots: Iterable[tuple[str, str | None]] = ROOTS) -> dict[str, object]:
    """The file's content from ``index.noun``, ``data.noun``, ``noun.exc`` and ``cntlist.rev`` in ``wordnet``."""
    files = {name: wordnet / name for name in ("index.noun", "data.noun", "noun.exc", "cntlist.rev")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise WordNetError(f"not a WordNet 3.0 directory (missing {', '.join(missing)})")
    index = parse_index(files["index.noun"].read_text(encoding="utf-8").splitlines())
    data = parse_data(files["data.noun"].read_text(encoding="utf-8").splitlines())
    exceptions = {}
    for line in files["noun.exc"].read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 2:
            exceptions[fields[0].replace("_", " ")] = fields[1].replace("_", " ")
    counts, adjectives = parse_counts(files["cntlist.rev"].read_text(encoding="utf-8").splitlines())
    proper = proper_senses(files["data.noun"].read_text(encoding="utf-8").splitlines())
    classes = synset_classes(data, resolve_roots(index, roots))
    return {
        "_doc": "Generated by scripts/build_lexicon.py from WordNet 3.0 (see WORDNET_LICENSE); do not edit.",
        **build_kinds(index, classes, exceptions, counts, adjectives, proper),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    default_out = Path(__file__).resolve().parents[1] / "src/ml_lib/diffusion/prompt/vocab/wordnet_kinds.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args(argv)
    try:
        content = build(args.wordnet)
    except (WordNetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    words = content["words"]
    phrases = content["phrases"]
    assert isinstance(words, dict) and isinstance(phrases, dict)
    print(
        f"{args.out}: {sum(map(len, words.values()))} words, {sum(map(len, phrases.values()))} phrases, "
        f"{len(text) / 1024:.0f} KiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
