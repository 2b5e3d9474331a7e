"""The ``ngram`` engine: n-gram metrics per step, a retrieval model out, json+zlib state."""

from __future__ import annotations

import hashlib
import json
import math
import random
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tui.server.engines.base import (
    ChatExample,
    ChatModel,
    Completion,
    EngineError,
    Hyperparameters,
    ModelTokens,
    StepMetrics,
    resolve_openai_hyperparameters,
)
from tui.server.engines.ngram import NgramLM, Score, Sequence_, make_sequence
from tui.server.engines.retrieval import RetrievalIndex
from tui.server.engines.usage import encoding, make_completion, message_text

STATE_MAGIC = b"SQTN1"
"""Prefix of every state blob (then zlib-compressed JSON; never pickle)."""
DEFAULT_ORDER = 4
"""N-gram order: each assistant token is predicted from the 3 before it."""


def _encode_examples(examples: list[ChatExample]) -> list[list[Sequence_]]:
    """Each example's assistant turns as token sequences, prompt text memoised (shared schemas)."""
    enc = encoding()
    memo: dict[str, list[int]] = {}

    def ids(text: str) -> list[int]:
        found = memo.get(text)
        if found is None:
            found = enc.encode_ordinary(text)
            memo[text] = found
        return found

    out = []
    for example in examples:
        prompt: list[int] = []
        seqs = []
        for message in example.messages:
            text = message_text(message)
            if message.get("role") == "assistant":
                if message.get("weight", 1) != 0:
                    seqs.append(make_sequence(enc.encode_ordinary(text), prompt))
            else:
                prompt = prompt + ids(text)
        out.append(seqs)
    return out


def _fingerprint(train: list[ChatExample], valid: list[ChatExample] | None) -> str:
    digest = hashlib.sha256()
    for part in (train, valid or []):
        for example in part:
            digest.update(json.dumps(example.messages, sort_keys=True).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def encode_state(data: dict[str, Any]) -> bytes:
    """JSON, zlib-compressed, behind a magic prefix."""
    return STATE_MAGIC + zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)


def decode_state(blob: bytes) -> dict[str, Any]:
    """The JSON object of a state blob; raise EngineError when it is not one."""
    if not blob.startswith(STATE_MAGIC):
        raise EngineError("not an ngram engine state (bad magic)")
    try:
        data = json.loads(zlib.decompress(blob[len(STATE_MAGIC):]))
    except (zlib.error, ValueError) as error:
        raise EngineError(f"corrupt ngram engine state: {error}") from None
    if not isinstance(data, dict):
        raise EngineError("corrupt ngram engine state: not an object")
    return data


class NgramRun:
    """One training run: shuffled batches per epoch, scored before they are learned."""

    def __init__(self, train: list[ChatExample], valid: list[ChatExample] | None,
                 hp: Hyperparameters, seed: int, order: int,
                 resume: dict[str, Any] | None) -> None:
        if not train:
            raise EngineError("no training examples")
        self.hp = hp
        self.seed = seed
        self._train = _encode_examples(train)
        self._valid = _encode_examples(valid) if valid else []
        self._data_id = _fingerprint(train, valid)
        self._steps_per_epoch = math.ceil(len(train) / hp.batch_size)
        self.total_steps = self._steps_per_epoch * hp.n_epochs
        self.index = RetrievalIndex.build(train)
        if resume is None:
            self.lm = NgramLM(order, encoding().n_vocab + 1)
            self.steps_done = 0
        else:
            run = resume.get("run") or {}
            if run.get("data") != self._data_id or run.get("seed") != seed \
                    or run.get("hp") != hp.to_dict():
                raise EngineError("resume state belongs to another job (data, seed or "
                                  "hyperparameters differ)")
            self.lm = NgramLM.from_json(resume["lm"])
            self.steps_done = int(run["steps_done"])
        self._order_epoch = -1
        self._order: list[int] = []
        self.peak_memory_mb: float | None = None
        """Not measured (the run lives in the server process)."""

    def _epoch_order(self, epoch: int) -> list[int]:
        if epoch != self._order_epoch:
            self._order = list(range(len(self._train)))
            random.Random(f"{self.seed}:epoch:{epoch}").shuffle(self._order)
            self._order_epoch = epoch
        return self._order

    def _score(self, examples: list[list[Sequence_]],
               resp: list[tuple[int, float]] | None = None) -> Score:
        score = Score()
        for seqs in examples:
            for seq in seqs:
                self.lm.score_sequence(seq, score, resp)
        return score

    def step(self) -> StepMetrics:
        """Score a batch (and a sampled validation batch) with the current model, then learn it."""
        if self.steps_done >= self.total_steps:
            raise EngineError("the run has no steps left")
        epoch, position = divmod(self.steps_done, self._steps_per_epoch)
        order = self._epoch_order(epoch)
        size = self.hp.batch_size
        batch = [self._train[i] for i in order[position * size:(position + 1) * size]]
        resp: list[tuple[int, float]] = []
        train = self._score(batch, resp)
        step = self.steps_done + 1
        metrics = StepMetrics(step=step, total_steps=self.total_steps, epoch=epoch + 1,
                              train_loss=train.loss, train_mean_token_accuracy=train.accuracy,
                              epoch_end=position == self._steps_per_epoch - 1)
        if self._valid:
            rng = random.Random(f"{self.seed}:valid:{step}")
            picks = rng.sample(range(len(self._valid)), min(size, len(self._valid)))
            valid = self._score([self._valid[i] for i in picks])
            metrics.valid_loss, metrics.valid_mean_token_accuracy = valid.loss, valid.accuracy
        for seqs in batch:
            for seq in seqs:
                self.lm.learn(seq, self.hp.learning_rate_multiplier)
        self.lm.learn_mixture(resp)
        self.steps_done = step
        if metrics.epoch_end and self._valid:
            full = self._score(self._valid)
            metrics.full_valid_loss = full.loss
            metrics.full_valid_mean_token_accuracy = full.accuracy
        return metrics

    def abort(self) -> None:
        """Nothing to stop: a step is short and the driver checks the job between steps."""

    def close(self) -> None:
        """Nothing to release."""

    def state(self) -> bytes:
        """The n-gram counts, the retrieval index and the run position, as json+zlib."""
        return encode_state({
            "format": "sqltune-ngram/1", "lm": self.lm.to_json(), "index": self.index.to_json(),
            "run": {"steps_done": self.steps_done, "seed": self.seed, "hp": self.hp.to_dict(),
                    "data": self._data_id},
        })


class TunedModel:
    """A trained checkpoint: answers with re-grounded SQL of the nearest training question."""

    def __init__(self, index: RetrievalIndex, lm: NgramLM | None = None) -> None:
        self.index = index
        """Training questions, answers and schemas."""
        self.lm = lm
        """The n-gram model the run's metrics came from (kept with the checkpoint)."""

    def complete(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None,
                 temperature: float = 0.0) -> Completion:
        """The nearest training answer, re-grounded onto the schema in the system message."""
        return make_completion(messages, self.index.answer(messages), max_tokens)


class NgramRetrievalEngine:
    """Honest local trainer: n-gram cross-entropy/accuracy metrics; retrieval answers."""

    name = "ngram"
    max_concurrent_jobs: int | None = None
    """No cap of its own (the server's ``max_running`` applies)."""
    snapshot_every_s = 3.0
    """A state is small: snapshot often, so a restart loses little."""
    release_paused_jobs = False
    """A paused run waits in memory (it holds no worker)."""

    def __init__(self, order: int = DEFAULT_ORDER) -> None:
        self.order = order
        """N-gram order used for new runs."""

    def resolve_hyperparameters(self, n_examples: int,
                                requested: dict[str, Any]) -> Hyperparameters:
        """OpenAI's ``auto`` rules; learning_rate_multiplier is the count added per token."""
        return resolve_openai_hyperparameters(n_examples, requested)

    def prepare(self, base_model: str,
                progress: Callable[[str], None] | None = None) -> Path | None:
        """Nothing to fetch: every base of this engine is built in."""
        return None

    def token_counter(self, base_model: str) -> ModelTokens | None:
        """None: jobs count with tiktoken, as OpenAI bills."""
        return None

    def step_seconds(self, base_model: str, tokens_per_step: float) -> float | None:
        """0: a step's compute is negligible; the server's pace (``--speed``) sets its time."""
        return 0.0

    def model_blob(self, state: bytes) -> bytes:
        """The whole state (the n-gram counts and the retrieval index are the model)."""
        return state

    def start(self, train: list[ChatExample], valid: list[ChatExample] | None,
              hp: Hyperparameters, seed: int, resume_state: bytes | None = None, *,
              base_model: str = "") -> NgramRun:
        """A new run, or the run ``resume_state`` was taken from, continued identically (the
        base model does not change how this engine trains)."""
        resume = decode_state(resume_state) if resume_state is not None else None
        order = int(resume["lm"]["order"]) if resume and "lm" in resume else self.order
        return NgramRun(train, valid, hp, seed, order, resume)

    def load(self, state: bytes) -> ChatModel:
        """The tuned model a run's state describes."""
        data = decode_state(state)
        try:
            index = RetrievalIndex.from_json(data["index"])
        except (KeyError, TypeError, ValueError) as error:
            raise EngineError(f"corrupt ngram engine state: {error}") from None
        lm = NgramLM.from_json(data["lm"]) if "lm" in data else None
        return TunedModel(index, lm)
