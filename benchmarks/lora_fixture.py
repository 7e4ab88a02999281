"""Deterministic LoRA fixture: a library of realistic LoRA records and prompts with the LoRAs a person
would pick, written to ``benchmarks/data/lora_library.jsonl`` and ``benchmarks/data/lora_eval.jsonl``.

Run: ``python benchmarks/lora_fixture.py`` (rewrites both files; same output every run). Also builds
the large generated library used for latency (:func:`big_library`).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ml_lib.diffusion.catalog.families import Family
from ml_lib.diffusion.catalog.records import ModelRecord, SpeedHint
from ml_lib.diffusion.testing.records import lora_record

DATA = Path(__file__).parent / "data"
LIBRARY = DATA / "lora_library.jsonl"
EVAL = DATA / "lora_eval.jsonl"

# key | trigger | training tags | Civitai tags | description
_THEME_TABLE = """
pixel | pixel art | pixel art, 8bit, sprite, retro game | style, pixel art | Pixel art style
watercolor | wtrclr | watercolor, painting, soft colors, paper texture | style, watercolor | Watercolor painting style
cyberpunk | cyberpunk | neon lights, city, futuristic, rain | style, sci-fi | Cyberpunk city aesthetic
filmgrain | film grain | analog, 35mm, kodak, film grain | photography, film | Analog film grain look
ghibli | ghibli style | anime, landscape, clouds, studio ghibli | anime, style | Studio Ghibli inspired scenery
steampunk | steampunk | gears, brass, victorian, goggles | style, steampunk | Steampunk machines and fashion
ukiyoe | ukiyo-e | woodblock print, japanese, wave, edo period | style, traditional art | Japanese woodblock prints
lineart | lineart | line art, monochrome, sketch, ink | style, line art | Clean line art
chibi | chibi | cute, big head, small body, sd character | anime, character | Chibi characters
lowpoly | low poly | 3d, polygon, geometric, flat shading | 3d, style | Low poly 3D renders
clay | claymation | clay, stop motion, plasticine, handmade | style, 3d | Claymation figures
papercut | papercut | paper art, layered paper, shadow box | style, craft | Layered paper cut art
isometric | isometric | diorama, game asset, room, miniature scene | style, game | Isometric dioramas
vaporwave | vaporwave | synthwave, retro, pink, purple, 80s | style, retro | Vaporwave aesthetic
stainedglass | stained glass | church window, colorful glass, lead lines | style, glass | Stained glass windows
origami | origami | folded paper, paper crane, paper | style, craft | Origami figures
tattoo | tattoo design | flash tattoo, ink, traditional tattoo, bold lines | tattoo, design | Tattoo flash designs
knolling | knolling | flat lay, organized, top-down, objects | photography, product | Knolling flat lays
food | food photo | dish, plate, restaurant, delicious | food, photography | Appetising food photography
archsketch | archsketch | architecture, building, blueprint, sketch | architecture, drawing | Architectural sketches
gothic | gothic | dark, cathedral, horror, candles | style, dark | Gothic dark fantasy
mecha | mecha | robot, gundam, armor, mechanical | robot, sci-fi | Giant mecha robots
dragon | dragon | scales, wings, fantasy creature, fire | creature, fantasy | Dragons of all kinds
catears | cat ears | animal ears, kemonomimi, 1girl, tail | anime, concept | Cat ears concept
polaroid | polaroid | instant photo, white border, vintage, faded | photography, vintage | Polaroid instant photos
doubleexp | double exposure | silhouette, overlay, forest, portrait | photography, effect | Double exposure effect
tiltshift | tilt shift | miniature, toy town, blur | photography, effect | Tilt-shift miniature look
neonsign | neon sign | glowing text, bar, night, neon | concept, sign | Neon signs
impasto | impasto | oil painting, thick paint, brush strokes, canvas | style, painting | Impasto oil painting
comic | comic style | halftone, comic book, speech bubble, bold outlines | style, comic | Comic book style
artnouveau | art nouveau | mucha, ornate, floral, poster | style, art nouveau | Art nouveau posters
logo | logo | vector, flat design, minimalist, icon | design, logo | Minimalist logos
sticker | sticker | die cut, white outline, cute | design, sticker | Die-cut stickers
charcoal | charcoal drawing | charcoal, graphite, drawing, sketch | style, drawing | Charcoal drawings
underwater | underwater | ocean, coral, fish, bubbles | concept, scenery | Underwater scenes
cinematic | cinematic still | movie still, dramatic lighting, anamorphic, film | photography, cinematic | Movie stills
armor | fantasy armor | knight, plate armor, ornate armor, helmet | clothing, fantasy | Ornate fantasy armor
cozy | cozy room | interior, warm light, bedroom, plants | interior, scenery | Cozy interiors
anime90s | 90s anime | retro anime, cel shading, vhs, 1990s | anime, retro | 1990s anime look
bokeh | bokeh | shallow depth of field, blurry background, lights | photography, effect | Creamy bokeh
"""


def _themes() -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]]:
    out = {}
    for line in _THEME_TABLE.strip().splitlines():
        key, trigger, tags, civitai, description = (part.strip() for part in line.split("|"))
        out[key] = (trigger, tuple(tags.split(", ")), tuple(civitai.split(", ")), description)
    return out


THEMES = _themes()

# Themes added for the second LoRA set: siblings (armour, dragons, mecha), material / art-form styles that a
# product prompt may only mention, specific car models, characters whose training tags are mostly booru
# quality/count tags, and themes that exist in one family only (the no-fit cases).
# key | families | trigger | training tags (count) | Civitai tags | description
_EXTRA_TABLE = """
samuraiarmor | sd1 sdxl | samurai armor | samurai:110, japanese armor:95, kabuto:60, katana:40, lacquered plates:30 | clothing, armor | Samurai armour (o-yoroi) and helmets. Not western plate armour.
scifiarmor | sd1 sdxl | power armor | power armor:120, sci-fi armor:100, futuristic:50, helmet:45, mechanical:30 | clothing, sci-fi | Futuristic power armour suits
leather | sd1 sdxl | leathercraft style | leather:120, tooled leather:90, stitching:70, texture:30 | style, material | Everything rendered as hand-tooled leather. Not for photos of leather goods.
woodcarving | sd1 sdxl | wood carving | carved wood:110, wood:80, relief:60, chisel marks:35 | style, material | Subjects carved from wood, relief carving style
ceramic | sd1 sdxl | porcelain style | porcelain:100, ceramic:90, glaze:70, cracked glaze:20 | style, material | Figures rendered as glazed porcelain
marble | sdxl | marble statue | marble:110, statue:100, sculpture:80, greek:30 | style, material | Classical marble sculpture look
porsche911 | sd1 sdxl | 911 carrera | porsche:120, sports car:110, round headlights:90, wheels:70, spoiler:40 | vehicle, car | Porsche 911 Carrera (a specific car model)
mustang | sdxl | mustang gt | ford mustang:115, muscle car:100, grille:60, wheels:55 | vehicle, car | Ford Mustang GT
miku | sd1 sdxl | hatsune miku | 1girl:200, solo:190, masterpiece:180, best quality:180, twintails:150, aqua hair:140, looking at viewer:90 | character, anime | Hatsune Miku (character)
asuka | sd1 sdxl | asuka langley | 1girl:160, solo:150, masterpiece:150, highres:120, red hair:110, plugsuit:100, blue eyes:60 | character, anime | Asuka Langley Soryu (character)
inkwash | flux | sumi-e | ink wash painting:100, sumi-e:90, brush:50, bamboo:40, monochrome:40 | style, traditional art | Ink wash (sumi-e) painting
embroidery | sd1 | embroidery style | embroidery:110, thread:70, stitched:60, fabric:50 | style, craft | Embroidered patch look
graffiti | sdxl | graffiti style | graffiti:120, spray paint:80, street art:70, wall:40 | style, street art | Graffiti street art
crochet | flux | crochet style | crochet:100, yarn:90, knitted:60, amigurumi:50 | style, craft | Crocheted yarn figures
mechamusume | sdxl | mecha musume | mecha girl:100, 1girl:90, mechanical parts:70, armor:40 | character, mecha | Girls wearing mecha parts
dragongirl | sd1 sdxl | dragon girl | dragon horns:110, dragon tail:100, 1girl:90, scales:40 | character, fantasy | Girls with dragon horns and tails
"""  # noqa: E501


def _extra_themes() -> dict[
    str, tuple[tuple[str, ...], str, tuple[tuple[str, int], ...], tuple[str, ...], str]
]:
    out = {}
    for line in _EXTRA_TABLE.strip().splitlines():
        key, families, trigger, tags, civitai, description = (part.strip() for part in line.split("|"))
        counted = tuple((t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in tags.split(", "))
        out[key] = (tuple(families.split()), trigger, counted, tuple(civitai.split(", ")), description)
    return out


EXTRA_THEMES = _extra_themes()

_NAME_FORMATS = {
    Family.SD1: ("{k}_sd15_v{n}", "{K}_v{n}", "{k}-style-1.5"),
    Family.SDXL: ("{k}_xl_v{n}", "{K}XL", "{k}-sdxl-lora"),
    Family.SD2: ("{k}_sd21",),
    Family.FLUX: ("flux_{k}_lora", "{K}_FLUX"),
}
_SPEED = (
    ("lcm-lora-sdv1-5", Family.SD1, SpeedHint("LCM", 4, 1.5, "LCM", None, "name 'lcm'")),
    ("lcm-lora-sdxl", Family.SDXL, SpeedHint("LCM", 4, 1.5, "LCM", None, "name 'lcm'")),
    (
        "sdxl_lightning_4step_lora",
        Family.SDXL,
        SpeedHint("Lightning", 4, 1.0, "Euler", "SGM Uniform", "name"),
    ),
    ("Hyper-SD15-8steps-lora", Family.SD1, SpeedHint("Hyper", 8, 1.0, "DDIM", None, "name")),
    ("Hyper-SDXL-8steps-lora", Family.SDXL, SpeedHint("Hyper", 8, 1.0, "DDIM", None, "name")),
)

# prompt, family, themes a person would pick ([] = none fits)
PROMPTS: tuple[tuple[str, Family, tuple[str, ...]], ...] = (
    ("pixel art of a knight fighting a dragon in a castle", Family.SDXL, ("pixel",)),
    ("8bit retro game sprite of a wizard", Family.SD1, ("pixel",)),
    ("watercolor painting of a fox in a misty forest", Family.SDXL, ("watercolor",)),
    ("soft watercolor illustration of a teapot, paper texture", Family.SD1, ("watercolor",)),
    ("a cyberpunk street at night, neon lights, rain", Family.SDXL, ("cyberpunk",)),
    ("futuristic city skyline in the rain, neon, blade runner mood", Family.SD1, ("cyberpunk",)),
    ("portrait of a woman on a train, film grain, kodak portra", Family.SDXL, ("filmgrain",)),
    ("rolling green hills with big clouds, ghibli style", Family.SD1, ("ghibli",)),
    ("steampunk airship with brass gears over victorian london", Family.SDXL, ("steampunk",)),
    ("the great wave in ukiyo-e woodblock print style", Family.SDXL, ("ukiyoe",)),
    ("clean lineart of a cat, monochrome ink", Family.SD1, ("lineart",)),
    ("chibi girl eating ice cream, cute", Family.SDXL, ("chibi",)),
    ("low poly 3d render of a mountain island", Family.SDXL, ("lowpoly",)),
    ("claymation figure of an old man baking bread, stop motion", Family.SD1, ("clay",)),
    ("layered papercut art of a forest at night", Family.SDXL, ("papercut",)),
    ("isometric diorama of a tiny bedroom, game asset", Family.SDXL, ("isometric",)),
    ("vaporwave sunset with palm trees, pink and purple, 80s", Family.SD1, ("vaporwave",)),
    ("stained glass window of a phoenix", Family.SDXL, ("stainedglass",)),
    ("origami crane on a wooden table", Family.SD1, ("origami",)),
    ("traditional tattoo design of a swallow and a rose, flash tattoo", Family.SDXL, ("tattoo",)),
    ("knolling of camping gear, flat lay, top-down", Family.SDXL, ("knolling",)),
    ("food photo of a bowl of ramen on a restaurant table", Family.SD1, ("food",)),
    ("architecture sketch of a modern museum building", Family.SDXL, ("archsketch",)),
    ("gothic cathedral interior lit by candles, dark horror", Family.SD1, ("gothic",)),
    ("giant mecha robot standing in a ruined city", Family.SDXL, ("mecha",)),
    ("a red dragon with huge wings breathing fire over a village", Family.SD1, ("dragon",)),
    ("anime girl with cat ears and a tail, smiling", Family.SDXL, ("catears",)),
    ("polaroid photo of friends at the beach, vintage, faded", Family.SDXL, ("polaroid",)),
    ("double exposure of a wolf silhouette and a pine forest", Family.SD1, ("doubleexp",)),
    ("tilt shift photo of a busy harbour, miniature toy town", Family.SDXL, ("tiltshift",)),
    ("a neon sign that says open in a dark bar window", Family.SD1, ("neonsign",)),
    ("impasto oil painting of sunflowers, thick brush strokes", Family.SDXL, ("impasto",)),
    ("comic book panel of a superhero landing, halftone, speech bubble", Family.SD1, ("comic",)),
    ("art nouveau poster of a woman with flowers, mucha", Family.SDXL, ("artnouveau",)),
    ("minimalist vector logo of a mountain, flat design", Family.SD1, ("logo",)),
    ("die cut sticker of a happy avocado, white outline", Family.SDXL, ("sticker",)),
    ("charcoal drawing of an old sailor", Family.SD1, ("charcoal",)),
    ("underwater coral reef with colorful fish and bubbles", Family.SDXL, ("underwater",)),
    ("cinematic still of a detective in the rain, dramatic lighting, anamorphic", Family.SDXL, ("cinematic",)),
    ("knight in ornate fantasy armor holding a sword", Family.SD1, ("armor",)),
    ("cozy room with plants and warm light, rainy evening", Family.SDXL, ("cozy",)),
    ("90s anime screenshot of a girl on a rooftop, cel shading, vhs", Family.SD1, ("anime90s",)),
    ("pixel art cyberpunk city with neon lights", Family.SDXL, ("pixel", "cyberpunk")),
    ("watercolor dragon flying over mountains", Family.SD1, ("watercolor", "dragon")),
    ("steampunk mecha in a victorian factory", Family.SD1, ("steampunk", "mecha")),
    ("photo of a dog running on the beach at sunset", Family.SDXL, ()),
    ("a bowl of fruit on a kitchen counter", Family.SD1, ()),
    ("portrait of an old fisherman, 85mm lens, natural light", Family.SDXL, ()),
    ("a snowy mountain lake at dawn", Family.SD1, ()),
    ("a red sports car on a coastal road", Family.SDXL, ()),
)  # fmt: skip


def _name(key: str, family: Family, rng: random.Random) -> str:
    pattern = rng.choice(_NAME_FORMATS[family])
    return pattern.format(k=key, K=key.capitalize(), n=rng.randint(1, 4))


def library_rows() -> list[dict[str, object]]:
    """The fixture library: every theme for SD1 and SDXL, every 4th for FLUX and every 4th (offset) for SD2."""
    rng = random.Random(20261124)
    rows: list[dict[str, object]] = []
    for i, (key, (trigger, tags, civitai, description)) in enumerate(THEMES.items()):
        families = [Family.SD1, Family.SDXL] + [Family.FLUX] * (i % 4 == 0) + [Family.SD2] * (i % 4 == 2)
        for family in families:
            counts = [[t, rng.randint(5, 120)] for t in tags]
            rows.append(
                {"name": _name(key, family, rng), "family": family.value, "theme": key, "triggers": [trigger],
                 "tags": counts, "civitai_tags": list(civitai), "description": description,
                 "weight": rng.choice([None, 0.6, 0.7, 0.8, 1.0])}
            )  # fmt: skip
    for key, (families, trigger, counted, civitai, description) in EXTRA_THEMES.items():
        for family in (Family(f) for f in families):
            rows.append(
                {"name": _name(key, family, rng), "family": family.value, "theme": key, "triggers": [trigger],
                 "tags": [list(c) for c in counted], "civitai_tags": list(civitai), "description": description,
                 "weight": rng.choice([None, 0.6, 0.7, 0.8, 1.0])}
            )  # fmt: skip
    for name, family, hint in _SPEED:
        rows.append({"name": name, "family": family.value, "theme": "speed", "speed": hint.name})
    return rows


def record_of(row: dict[str, object]) -> ModelRecord:
    """A catalog record from a fixture row."""
    speed = next((h for n, _, h in _SPEED if n == row["name"]), None)
    return lora_record(
        str(row["name"]), Family(row["family"]), triggers=tuple(row.get("triggers", ())),  # type: ignore[arg-type]
        tags=tuple((t, c) for t, c in row.get("tags", ())),  # type: ignore[attr-defined]
        civitai_tags=tuple(row.get("civitai_tags", ())), description=row.get("description"),  # type: ignore[arg-type]
        weight=row.get("weight"), speed=speed,  # type: ignore[arg-type]
    )  # fmt: skip


def eval_rows(library: list[dict[str, object]]) -> list[dict[str, object]]:
    """Prompts with the names of the LoRAs a person would pick (the themes' LoRAs of that family)."""
    by_theme = {(r["theme"], r["family"]): r["name"] for r in library}
    return [
        {"id": f"l{i:03d}", "split": "dev", "prompt": prompt, "family": family.value,
         "picks": [by_theme[(t, family.value)] for t in themes],
         "kinds": ["none" if not themes else "combo" if len(themes) > 1 else "plain"]}
        for i, (prompt, family, themes) in enumerate(PROMPTS, 1)
    ]  # fmt: skip


def big_library(n: int = 10_000, seed: int = 7) -> list[ModelRecord]:
    """``n`` generated LoRA records (themes x families x random extra tags) for latency."""
    rng = random.Random(seed)
    filler = sorted({w for _, tags, civ, _ in THEMES.values() for t in (*tags, *civ) for w in t.split()})
    keys = list(THEMES)
    out = []
    for i in range(n):
        key = keys[i % len(keys)]
        trigger, tags, civitai, description = THEMES[key]
        family = rng.choice((Family.SD1, Family.SDXL, Family.SDXL, Family.FLUX, Family.SD2))
        extra = tuple((w, rng.randint(1, 50)) for w in rng.sample(filler, 6))
        out.append(
            lora_record(
                f"{_name(key, family, rng)}_{i}", family, triggers=(f"{trigger} {i}",),
                tags=tuple((t, rng.randint(5, 120)) for t in tags) + extra, civitai_tags=civitai,
                description=description,
            )
        )  # fmt: skip
    return out


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def main() -> None:
    library = library_rows()
    _write(LIBRARY, library)
    _write(EVAL, eval_rows(library))
    print(f"wrote {len(library)} LoRAs to {LIBRARY.name} and {len(PROMPTS)} prompts to {EVAL.name}")


if __name__ == "__main__":
    main()
