"""What a content generator returns (``Candidate``) and what the plan job asks of one
(``ContentGenerator``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

MAX_POST_CHARS = 280


@dataclass(frozen=True)
class Candidate:
    """One generated post: its text, where it came from ('llm' | 'template'), its hook and topic."""
    text: str
    generation_source: str
    hook_pattern: str
    topic: str


class ContentGenerator(Protocol):
    """What the plan job asks for posts. Implementations: ``TemplateGenerator``, ``LLMContentGenerator``."""

    def candidates(self, hook: str, topic: str, n: int, *, angle: str | None = None,
                   reply_to_text: str | None = None, rng: np.random.Generator | None = None) -> list[Candidate]:
        ...
