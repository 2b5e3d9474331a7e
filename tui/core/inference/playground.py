"""The playground's services: models, databases and questions, prompts, scored runs, history."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from tui.core.data.datasets import DatasetError, Example, available_splits, load_dataset
from tui.core.paths import data_dir, demo_dir
from tui.core.sql.matching import order_matters, results_match
from tui.core.sql.sqlexec import QueryError, QueryResult, ReadOnlyExecutor

ModelKind = Literal["fine-tuned", "checkpoint", "base", "endpoint"]

SQL_TIMEOUT_S = 10.0
"""Deadline of one playground query (the executor interrupts it past this)."""
MAX_ROWS = 1000
"""Rows the result table holds at most."""
HISTORY_LIMIT = 200
"""Questions kept in the playground history."""
CHECKPOINT_JOBS = 5
"""Succeeded jobs whose checkpoints are listed (newest first)."""
NO_KEY = "no-key"
"""Sent as the bearer key to an endpoint that was given no key variable (local servers)."""
# Models a provider lists that cannot answer chat (embeddings, audio, images, moderation).
_NOT_CHAT = ("embedding", "whisper", "tts", "dall-e", "moderation", "transcribe", "image",
             "realtime", "audio", "search", "davinci-002", "babbage-002", "sora")


@dataclass(frozen=True)
class ModelChoice:
    """A model the playground can ask: on the provider, or on another compatible endpoint."""

    name: str
    """The model id as its endpoint knows it."""
    kind: ModelKind
    """fine-tuned, checkpoint, base (all on the provider) or endpoint (another server)."""
    base_url: str | None = None
    """Another OpenAI-compatible endpoint (None: the app's provider)."""
    key_env: str | None = None
    """Environment variable holding that endpoint's key (None: send no real key)."""

    @property
    def label(self) -> str:
        """``name`` plus where it runs when that is not the provider."""
        return self.name if self.base_url is None else f"{self.name} @ {self.base_url}"


def classify_model(model_id: str) -> ModelKind:
    """fine-tuned (``ft:``), checkpoint (``…:ckpt-step-N``) or base."""
    if ":ckpt-step-" in model_id:
        return "checkpoint"
    return "fine-tuned" if model_id.startswith("ft:") else "base"


def is_chat_model(model_id: str) -> bool:
    """False for models a provider lists that cannot write SQL in a chat (embeddings, tts...)."""
    lowered = model_id.lower()
    return not any(word in lowered for word in _NOT_CHAT)


def order_models(model_ids: Iterable[str], checkpoints: Iterable[str] = ()) -> list[ModelChoice]:
    """Fine-tuned models first, then checkpoints, then base models; no duplicates."""
    seen: dict[str, ModelChoice] = {}
    for model_id in [*model_ids, *checkpoints]:
        if model_id and model_id not in seen and is_chat_model(model_id):
            seen[model_id] = ModelChoice(model_id, classify_model(model_id))
    rank = {"fine-tuned": 0, "checkpoint": 1, "base": 2, "endpoint": 3}
    return sorted(seen.values(), key=lambda choice: rank[choice.kind])


async def provider_models(client: Any, jobs: Any | None = None) -> list[ModelChoice]:
    """The provider's chat models and the checkpoints of its newest succeeded jobs.

    ``jobs`` is a tui.core.finetune.jobs.JobService (None: no checkpoints); a failure to list
    checkpoints leaves them out, a failure to list models raises PlaygroundError.
    """
    import openai

    try:
        model_ids = [model.id async for model in client.models.list()]
    except openai.OpenAIError as error:
        from tui.core.provider.retries import describe_error

        raise PlaygroundError(f"listing the provider's models failed: "
                              f"{describe_error(error)}") from None
    checkpoints: list[str] = []
    if jobs is not None and jobs.capabilities.checkpoints:
        try:
            succeeded = [job for job in await jobs.list(limit=50) if job.status == "succeeded"]
            for job in succeeded[:CHECKPOINT_JOBS]:
                checkpoints += [c.model for c in await jobs.checkpoints(job.id) if c.model]
        except Exception:  # checkpoints are a bonus: the models list stands alone
            checkpoints = []
    return order_models(model_ids, checkpoints)


def endpoint_key(choice: ModelChoice) -> str:
    """The key to send to another endpoint: its variable's value, else a placeholder."""
    if choice.key_env:
        value = os.environ.get(choice.key_env)
        if not value:
            raise PlaygroundError(f"${choice.key_env} is not set (the key for {choice.base_url})")
        return value
    return NO_KEY


def endpoint_client(choice: ModelChoice) -> Any:
    """An ``openai.AsyncOpenAI`` for another OpenAI-compatible endpoint (a local server...)."""
    import openai

    from tui.core.provider.providers import SDK_RETRIES, register_secret

    key = endpoint_key(choice)
    register_secret(key)
    return openai.AsyncOpenAI(base_url=choice.base_url, api_key=key, max_retries=SDK_RETRIES,
                              timeout=60.0)


class PlaygroundError(Exception):
    """Something the playground cannot do (no databases, an unset key variable...)."""


# ── databases and questions ─────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Database:
    """A SQLite database of the dataset."""

    db_id: str
    """Spider's database id (its folder name)."""
    path: Path
    """The SQLite file."""


@dataclass(frozen=True)
class Workspace:
    """What the playground can query: the dataset's databases and its held-out questions."""

    root: Path
    """The dataset folder."""
    databases: list[Database]
    """Every database with a SQLite file, by id."""
    split: str | None
    """The split the questions come from (dev when present)."""
    questions: list[Example]
    """Questions of that split whose database is present."""

    def database(self, db_id: str) -> Database | None:
        """The database with this id."""
        return next((db for db in self.databases if db.db_id == db_id), None)


def open_workspace(data: Path | None) -> Workspace:
    """The demo data (None) or a Spider-format folder; a JSONL file has no databases."""
    root = demo_dir() if data is None else Path(data)
    if not root.exists():
        raise PlaygroundError(f"dataset folder not found: {root}")
    if root.is_file():
        raise PlaygroundError(f"{root} is a file: the playground needs a Spider folder "
                              "with a database/ directory")
    folder = root / "database"
    databases = sorted(
        (Database(entry.name, entry / f"{entry.name}.sqlite")
         for entry in (folder.iterdir() if folder.is_dir() else ())
         if (entry / f"{entry.name}.sqlite").is_file()),
        key=lambda db: db.db_id)
    if not databases:
        raise PlaygroundError(f"no SQLite databases under {folder}")
    splits = available_splits(root)
    split = "dev" if "dev" in splits else (splits[0] if splits else None)
    questions: list[Example] = []
    if split is not None:
        try:
            dataset = load_dataset(root, split, check_databases=False)
        except DatasetError:
            dataset = None
        if dataset is not None:
            present = {db.db_id for db in databases}
            questions = [e for e in dataset.examples if e.db_id in present]
    return Workspace(root=root, databases=databases, split=split, questions=questions)


def pretty_sql(sql: str) -> str:
    """The SQL laid out by sqlglot (SQLite dialect); the text unchanged when it does not parse."""
    if not sql.strip():
        return sql
    import sqlglot  # lazily: it costs a quarter second of the app's start-up
    from sqlglot.errors import SqlglotError

    try:
        statements = sqlglot.transpile(sql, read="sqlite", write="sqlite", pretty=True)
    except SqlglotError:
        return sql
    return statements[0] if len(statements) == 1 and statements[0].strip() else sql


# ── running a statement, scored against gold ────────────────────────────────────────────────


@dataclass(frozen=True)
class Outcome:
    """A statement's result (or error) and, for a dataset question, the verdict against gold."""

    sql: str
    """What ran."""
    result: QueryResult | None
    """Rows, when it ran."""
    error: QueryError | None
    """Why it did not run."""
    gold: str | None = None
    """The gold SQL (None for a typed question)."""
    gold_error: str | None = None
    """Why the gold SQL itself failed (then there is no verdict)."""
    match: bool | None = None
    """EX verdict: True/False when gold ran, None without gold."""


def run_scored(executor: ReadOnlyExecutor, sql: str, gold: str | None) -> Outcome:
    """Run ``sql`` through the read-only executor and, when gold is given, compare as EX does.

    Blocking: call it from a thread worker; ``executor.cancel()`` stops it from another thread.
    A predicted result cut at the row cap is re-read whole for the comparison, as EX needs.
    """
    try:
        result = executor.run(sql)
    except QueryError as error:
        verdict = None if gold is None else False
        if error.type == "cancelled":
            verdict = None
        return Outcome(sql, None, error, gold, match=verdict)
    if gold is None:
        return Outcome(sql, result, None)
    cap = 100_000
    try:
        gold_result = executor.run(gold, max_rows=cap)
        predicted = executor.run(sql, max_rows=cap) if result.truncated else result
    except QueryError as error:
        return Outcome(sql, result, None, gold, gold_error=error.message)
    if gold_result.truncated or predicted.truncated:
        return Outcome(sql, result, None, gold, gold_error=f"a result has over {cap} rows")
    match = results_match(gold_result.rows, predicted.rows, ordered=order_matters(gold))
    return Outcome(sql, result, None, gold, match=match)


# ── question history ────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Asked:
    """One question as the history keeps it."""

    question: str
    """What was asked."""
    db_id: str
    """On which database."""
    model: str
    """The model that answered (its label)."""
    sql: str
    """The SQL it answered with."""
    gold: str | None = None
    """The gold SQL when the question came from the dataset."""
    at: float = 0.0
    """Unix seconds."""


class QuestionHistory:
    """Asked questions, newest first, kept in ``<data dir>/playground-history.jsonl``."""

    def __init__(self, path: Path | None = None, limit: int = HISTORY_LIMIT) -> None:
        self.path = path or data_dir() / "playground-history.jsonl"
        """The JSONL file (one Asked per line, oldest first)."""
        self.limit = limit
        """Entries kept."""

    def load(self) -> list[Asked]:
        """Entries newest first; unreadable lines are skipped (the file is a convenience)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return []
        entries: list[Asked] = []
        for line in lines[-self.limit:]:
            try:
                data = json.loads(line)
                entries.append(Asked(**{k: v for k, v in data.items()
                                        if k in Asked.__dataclass_fields__}))
            except (ValueError, TypeError):
                continue
        return entries[::-1]

    def add(self, entry: Asked) -> None:
        """Append one entry; the file is cut back to ``limit`` entries when it doubles."""
        if not entry.at:
            entry = Asked(**{**asdict(entry), "at": time.time()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(entry)) + "\n")
        lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        if len(lines) > 2 * self.limit:
            self.path.write_text("".join(lines[-self.limit:]), encoding="utf-8")


def automatic_choice(models: Sequence[ModelChoice], current: ModelChoice | None,
                     chosen_by_us: ModelChoice | None,
                     just_tuned: str | None) -> ModelChoice | None:
    """The model to ask when the user has not picked one: a model a job just produced once
    it is listed, else the first model listed. ``current`` stays when the user picked it."""
    ours = current is None or current == chosen_by_us
    tuned = next((m for m in models if m.name == just_tuned), None)
    if tuned is not None and ours:
        return tuned
    if current is None and models:
        return models[0]
    return current

