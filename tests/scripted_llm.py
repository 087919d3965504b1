"""A language model that answers from a list, for the paths a real model takes only at will: a
deliberately broken model, words that lose their decision, a decide-mode model."""

from __future__ import annotations

from crs.llm.base import Generation, GenerationRequest


class ScriptedBackend:
    name = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation(self.answers[(len(self.requests) - 1) % len(self.answers)], 10, 5, 0.01)
