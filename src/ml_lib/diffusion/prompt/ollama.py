"""Optional analysis by a local LLM through Ollama (extra ``ollama``), falling back to the rules.

The model is asked for one JSON object following :class:`OllamaAnswer`'s schema (Ollama's structured
outputs). Whatever goes wrong — Ollama not running, no answer within ``timeout``, an HTTP error, text
that is not JSON, JSON that breaks the schema — the rules' analysis is returned instead, with the
reason logged and recorded in ``notes``. An explicit ratio in the prompt always beats the model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ConfigError
from .analysis import CONTENT_TYPES, ORIENTATIONS, AspectHint, Cue, LabelScore, PromptAnalysis, Subject
from .analyzer import analyze_prompt
from .lexicon import load_vocab
from .syntax import PromptDocument, parse_prompt

__all__ = ["DEFAULT_MODEL", "OllamaAnalyzer", "OllamaAnswer"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "llama3.2"
_INSTALL = 'pip install "ml-lib[ollama]"'
ContentType = Literal[CONTENT_TYPES]  # type: ignore[valid-type]
Orientation = Literal[ORIENTATIONS]  # type: ignore[valid-type]

_SYSTEM = (
    "You analyse prompts for a text-to-image generator. Answer with one JSON object only. "
    f"content_type is one of: {', '.join(CONTENT_TYPES)} (the medium when one is named, such as anime, "
    "painting or 3d_render; otherwise the subject; otherwise photo). aspect is one of: "
    f"{', '.join(ORIENTATIONS)} (tall is 9:16, portrait 2:3, landscape 3:2, wide 16:9 or wider). "
    "subjects lists what the image shows with a count each; styles, moods and lighting are short lower-case "
    "labels; language is the ISO 639-1 code of the prompt; confidence is 0 to 1."
)


class _SubjectAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")

    label: str = Field(min_length=1, max_length=60)
    count: int = Field(default=1, ge=1, le=1000)


class OllamaAnswer(BaseModel):
    """The JSON object the model must return."""

    model_config = ConfigDict(extra="ignore")

    content_type: ContentType
    confidence: float = Field(ge=0.0, le=1.0)
    aspect: Orientation
    subjects: list[_SubjectAnswer] = Field(default_factory=list, max_length=20)
    styles: list[str] = Field(default_factory=list, max_length=20)
    moods: list[str] = Field(default_factory=list, max_length=20)
    lighting: list[str] = Field(default_factory=list, max_length=20)
    nsfw: bool = False
    language: str = Field(default="en", min_length=2, max_length=3)


class _Fallback(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OllamaAnalyzer:
    """Analysis by ``model`` on the Ollama server at ``host`` (default: ``OLLAMA_HOST`` or
    127.0.0.1:11434); ``timeout`` in seconds bounds the whole request."""

    def __init__(self, model: str = DEFAULT_MODEL, *, host: str | None = None, timeout: float = 20.0) -> None:
        self.model = model
        self.host = host
        self.timeout = timeout

    def analyze(self, prompt: str | PromptDocument) -> PromptAnalysis:
        """The model's analysis merged over the rules', or the rules' alone when the model fails."""
        document = prompt if isinstance(prompt, PromptDocument) else parse_prompt(prompt)
        rules = analyze_prompt(document)
        try:
            answer = self._ask(document.render())
        except _Fallback as exc:
            log.warning("Ollama analysis failed (%s); using the rules", exc.reason)
            return dataclasses.replace(rules, notes=(*rules.notes, f"ollama: {exc.reason}; used the rules"))
        return _merge(rules, answer, self.model)

    def _ask(self, prompt: str) -> OllamaAnswer:
        try:
            import httpx
            import ollama
        except ImportError as exc:
            raise ConfigError(f"Analysis through Ollama needs the 'ollama' extra: {_INSTALL}") from exc
        client = ollama.Client(host=self.host, timeout=self.timeout)
        try:
            response = client.chat(
                model=self.model,
                messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}],
                format=OllamaAnswer.model_json_schema(),
                options={"temperature": 0},
                stream=False,
            )
        except httpx.TimeoutException as exc:
            raise _Fallback(f"no answer within {self.timeout:g} s") from exc
        except (ollama.ResponseError, httpx.HTTPError, ConnectionError) as exc:
            raise _Fallback(f"request failed: {exc}") from exc
        except (ValueError, TypeError) as exc:  # a body that is not Ollama's JSON
            raise _Fallback(f"malformed response from the server: {exc}") from exc
        finally:
            client.close()
        content = response.message.content or ""
        try:
            data: Any = json.loads(content)
        except json.JSONDecodeError as exc:
            raise _Fallback(f"the answer is not JSON ({exc.msg}): {content[:80]!r}") from exc
        try:
            return OllamaAnswer.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "answer"
            raise _Fallback(f"the answer breaks the schema at {where}: {first['msg']}") from exc


def _merge(rules: PromptAnalysis, answer: OllamaAnswer, model: str) -> PromptAnalysis:
    scores = (
        LabelScore(answer.content_type, round(answer.confidence, 3)),
        *(s for s in rules.content_scores if s.label != answer.content_type),
    )
    aspect = rules.aspect
    if aspect.source != "ratio":
        ratio = float(load_vocab("aspect")["orientations"][answer.aspect])
        aspect = AspectHint(answer.aspect, ratio, round(0.5 + answer.confidence / 3, 3), "model", model)

    def cues(existing: tuple[Cue, ...], labels: list[str]) -> tuple[Cue, ...]:
        known = {cue.label for cue in existing}
        new = {label.strip().lower() for label in labels} - known - {""}
        return existing + tuple(Cue(label, f"ollama:{model}", 0.7) for label in sorted(new))

    subjects = tuple(Subject(s.label.lower(), s.count, f"ollama:{model}") for s in answer.subjects)
    return dataclasses.replace(
        rules,
        content_type=answer.content_type,
        content_confidence=round(answer.confidence, 3),
        content_scores=scores,
        subjects=subjects or rules.subjects,
        subject_count=sum(s.count for s in subjects) if subjects else rules.subject_count,
        styles=cues(rules.styles, answer.styles),
        moods=cues(rules.moods, answer.moods),
        lighting=cues(rules.lighting, answer.lighting),
        aspect=aspect,
        nsfw=rules.nsfw or answer.nsfw,
        language=answer.language.lower(),
        source="ollama",
        notes=(*rules.notes, f"ollama: answered by {model}"),
    )
