"""Pluggable training engines for the local server, looked up by name."""

from __future__ import annotations

from tui.server.engines.base import (
    ChatExample,
    ChatModel,
    Completion,
    EngineError,
    HyperparameterError,
    Hyperparameters,
    ModelTokens,
    StepMetrics,
    TrainingEngine,
    TrainingRun,
)

__all__ = [
    "BASE_MODEL",
    "ChatExample",
    "ChatModel",
    "Completion",
    "EngineError",
    "HyperparameterError",
    "Hyperparameters",
    "ModelTokens",
    "StepMetrics",
    "TrainingEngine",
    "TrainingRun",
    "base_models",
    "engine_names",
    "get_engine",
]

BASE_MODEL = "sqltune-local-base"
"""The id of the local server's base model (the schema-grounded baseline)."""


def engine_names() -> list[str]:
    """Names ``get_engine`` accepts."""
    return ["ngram"]


def get_engine(name: str = "ngram") -> TrainingEngine:
    """The engine called ``name``; raise EngineError for an unknown one."""
    if name == "ngram":
        from tui.server.engines.training import NgramRetrievalEngine

        return NgramRetrievalEngine()
    raise EngineError(f"unknown training engine {name!r}; known: {', '.join(engine_names())}")


def base_models() -> dict[str, ChatModel]:
    """The base models the server lists and can fine-tune from, by id."""
    from tui.server.engines.baseline import SchemaBaseline

    return {BASE_MODEL: SchemaBaseline()}
