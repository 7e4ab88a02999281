"""What the analysis of a prompt found: :class:`PromptAnalysis` and its parts (pure records)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONTENT_TYPES", "ORIENTATIONS", "AspectHint", "Cue", "LabelScore", "PromptAnalysis", "Subject"]

CONTENT_TYPES = (
    "photo",
    "portrait",
    "landscape",
    "architecture",
    "interior",
    "product",
    "food",
    "animal",
    "vehicle",
    "anime",
    "illustration",
    "comic",
    "3d_render",
    "painting",
    "concept_art",
    "pixel_art",
    "logo",
    "abstract",
)
ORIENTATIONS = ("square", "portrait", "tall", "landscape", "wide")


@dataclass(frozen=True, slots=True)
class LabelScore:
    """A label and how strongly the prompt supports it (0 to 1)."""

    label: str
    score: float


@dataclass(frozen=True, slots=True)
class Cue:
    """A style, lighting, camera … cue: its canonical ``label``, the words that said it, a confidence."""

    label: str
    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Subject:
    """Something the image shows, how many (1 when not said; 2 for a bare plural), and the words."""

    label: str
    count: int
    text: str


@dataclass(frozen=True, slots=True)
class AspectHint:
    """The frame the prompt asks for: orientation, width/height ratio, and where that came from.

    ``source`` is "ratio" (an explicit ratio or size), "cue" (words such as "phone wallpaper"), "scene"
    (what the scene is: a vista, a standing figure, a close-up; ``cue`` names the words and why),
    "content" (what suits the content type), "use" (USE-multilingual's frame classifier), "model" (a language
    model's answer) or "default".
    """

    orientation: str
    ratio: float
    confidence: float
    source: str
    cue: str = ""


@dataclass(frozen=True, slots=True)
class PromptAnalysis:
    """Everything the planner needs to know about a prompt, each finding with a confidence."""

    content_type: str
    content_confidence: float
    content_scores: tuple[LabelScore, ...]
    subjects: tuple[Subject, ...]
    subject_count: int
    styles: tuple[Cue, ...]
    mediums: tuple[Cue, ...]
    artists: tuple[Cue, ...]
    moods: tuple[Cue, ...]
    lighting: tuple[Cue, ...]
    camera: tuple[Cue, ...]
    time_of_day: tuple[Cue, ...]
    weather: tuple[Cue, ...]
    seasons: tuple[Cue, ...]
    quality: tuple[Cue, ...]
    negative: tuple[Cue, ...]
    aspect: AspectHint
    nsfw: bool
    nsfw_score: float
    language: str
    language_confidence: float
    source: str = "rules"
    notes: tuple[str, ...] = ()

    def score(self, content_type: str) -> float:
        """The score of one content type (0 when absent)."""
        return next((s.score for s in self.content_scores if s.label == content_type), 0.0)

    @property
    def style_labels(self) -> tuple[str, ...]:
        """Labels of the style, medium and artist cues, in that order, without repeats."""
        seen: dict[str, None] = {}
        for cue in (*self.styles, *self.mediums, *self.artists):
            seen.setdefault(cue.label, None)
        return tuple(seen)
