"""Prompt lineage: which template made each dataset file, upload, job and model, and prompt_for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tui.core.data.prompts import (
    DEFAULT_TEMPLATE,
    TEMPLATES,
    PromptTemplate,
    PromptTemplateError,
    preset_name,
    template_label,
)
from tui.core.history import DatasetRecord, History, HistoryError, JobRecord, sha256_file

if TYPE_CHECKING:
    from tui.core.data.jsonl import WriteResult
    from tui.core.data.prepare import PrepareResult
    from tui.core.finetune.jobs import JobInfo, JobSpec

METADATA_NAME = "sqltune_template"
"""Job metadata key: the template's preset name (``rich``, ``compact+custom``...)."""
METADATA_FINGERPRINT = "sqltune_template_fingerprint"
"""Job metadata key: PromptTemplate.fingerprint(), which recognises the template anywhere."""
METADATA_SETTINGS = "sqltune_template_json"
"""Job metadata key: the template itself (to_dict() as compact JSON), when it fits."""
METADATA_VALUE_LIMIT = 512
"""Longest metadata value OpenAI (and the local server) accept."""
REMOTE_JOB_SCAN = 1000
"""Provider jobs read at most to find the job that made a model history does not know."""

PromptSource = Literal["history", "job metadata", "base model", "unknown"]

_TUNED = re.compile(r"^ft:|:ckpt-step-\d+$|\.ft-")
"""Fine-tuned or checkpoint model ids (OpenAI and sqltune ``ft:...``, Azure ``base.ft-...``)."""
_CHECKPOINT_SUFFIX = re.compile(r":ckpt-step-\d+$")


class _Missing(Exception):
    """No template could be found (internal)."""


def is_tuned_model(model: str) -> bool:
    """True for a fine-tuned model or checkpoint id (it was trained on some template)."""
    return bool(_TUNED.search(model))


@dataclass(frozen=True)
class PromptChoice:
    """The template to ask a model with, where it came from, and a warning when it is a guess."""

    model: str
    """The model asked."""
    template: PromptTemplate
    """The template the prompts are built with."""
    name: str | None
    """Its preset name (None for a custom template without one)."""
    source: PromptSource
    """history, job metadata (the provider's job), base model, or unknown (then the default)."""
    warning: str | None = None
    """Why the template may not be the one the model was trained with (None when it is)."""
    job_id: str | None = None
    """The job that trained the model, when known."""

    @property
    def fingerprint(self) -> str:
        """PromptTemplate.fingerprint() of ``template``."""
        return self.template.fingerprint()

    @property
    def known(self) -> bool:
        """True when the template is the model's own training template."""
        return self.source in ("history", "job metadata")

    def to_json(self) -> dict[str, Any]:
        """``{"name", "fingerprint", "source"}`` plus ``"warning"`` when the template is a guess."""
        data: dict[str, Any] = {"name": self.name, "fingerprint": self.fingerprint,
                                "source": self.source}
        if self.warning:
            data["warning"] = self.warning
        return data

    def label(self) -> str:
        """``its training prompt (rich)``, ``default prompt (base model)`` or the warning."""
        if self.known:
            return f"its training prompt ({self.name or self.fingerprint})"
        if self.source == "base model":
            return "default prompt (base model)"
        return f"⚠ default prompt: {self.warning}" if self.warning else "default prompt"


def job_metadata(template: PromptTemplate, name: str | None) -> dict[str, str]:
    """The job metadata that lets any machine recognise (and rebuild) the template."""
    metadata = {METADATA_FINGERPRINT: template.fingerprint()}
    label = template_label(template, name)
    if label:
        metadata[METADATA_NAME] = label[:METADATA_VALUE_LIMIT]
    settings = json.dumps(template.to_dict(), sort_keys=True, separators=(",", ":"))
    if len(settings) <= METADATA_VALUE_LIMIT:
        metadata[METADATA_SETTINGS] = settings
    return metadata


# ── recording: dataset -> file -> upload -> job -> model ─────────────────────────────────


@contextlib.contextmanager
def _using(history: History | None) -> Iterator[History]:
    """``history``, else this machine's history, opened for the call and closed after it."""
    if history is not None:
        yield history
        return
    with History() as store:
        yield store


def record_prepared(result: PrepareResult, written: WriteResult, *,
                    history: History | None = None) -> DatasetRecord:
    """Remember a written training file: its dataset, template (name, fingerprint), budget."""
    template = result.options.template
    with _using(history) as store:
        return store.record_dataset(
            result.root, result.options.split, template.to_dict(),
            budget=result.to_json(written), jsonl_path=written.path,
            template_name=template_label(template, result.options.template_name),
            template_fingerprint=template.fingerprint())


def record_upload(provider: str, file_id: str, path: Path, *,
                  history: History | None = None) -> None:
    """Remember which local file became which provider file id."""
    with _using(history) as store:
        store.record_upload(provider, file_id, path)


def dataset_of_file(provider: str, file_id: str, local_path: Path | str | None = None, *,
                    history: History | None = None) -> DatasetRecord | None:
    """The prepared dataset a training file came from: by the local file's bytes, else by the
    bytes of the recorded upload of ``file_id``; None for a file sqltune did not write."""
    with _using(history) as store:
        if local_path is not None and Path(local_path).is_file():
            found = store.dataset_for_jsonl(sha256_file(Path(local_path)))
            if found is not None:
                return found
        upload = store.upload(provider, file_id)
        return None if upload is None else store.dataset_for_jsonl(upload.sha256)


def metadata_for_file(provider: str, file_id: str, local_path: Path | str | None = None, *,
                      history: History | None = None) -> dict[str, str]:
    """Job metadata naming the template of a training file (empty when it is not sqltune's)."""
    dataset = dataset_of_file(provider, file_id, local_path, history=history)
    if dataset is None:
        return {}
    try:
        template = PromptTemplate.from_dict(dataset.template)
    except PromptTemplateError:
        return {}
    return job_metadata(template, dataset.template_name)


def spec_with_template(spec: JobSpec, provider: str, local_path: Path | str | None = None, *,
                       history: History | None = None) -> JobSpec:
    """The job spec with its training file's template in the metadata (the spec's own keys
    win), so the job names its template wherever the model is used later (blocking). An
    unreadable history adds nothing: recording the job afterwards reports it."""
    try:
        metadata = metadata_for_file(provider, spec.training_file, local_path, history=history)
    except (HistoryError, OSError):
        return spec
    if not metadata:
        return spec
    return replace(spec, metadata={**metadata, **spec.metadata})


def record_job(provider: str, job: JobInfo, local_path: Path | str | None = None, *,
               history: History | None = None) -> JobRecord:
    """Remember a job and the template it trains on: the training file's dataset when this
    machine prepared it, else the template its metadata names."""
    with _using(history) as store:
        dataset = dataset_of_file(provider, job.training_file, local_path, history=store)
        template, name, fingerprint = None, None, None
        if dataset is not None:
            template, name = dataset.template, dataset.template_name
            fingerprint = dataset.template_fingerprint or _fingerprint(dataset.template)
        else:
            try:
                rebuilt, name, fingerprint = _from_metadata(job.metadata, store)
                template = rebuilt.to_dict()
            except _Missing:
                fingerprint = job.metadata.get(METADATA_FINGERPRINT) or None
                name = job.metadata.get(METADATA_NAME) or None
        record = store.record_job(
            provider, job.id, job.model, job.training_file,
            validation_file=job.validation_file, template=template,
            dataset_path=dataset.path if dataset else None,
            budget=dataset.budget if dataset else None, template_name=name,
            template_fingerprint=fingerprint)
        if job.status:
            store.record_job_status(provider, job.id, job.status, job.fine_tuned_model)
        return record


def record_job_status(provider: str, job_id: str, status: str,
                      fine_tuned_model: str | None = None, *,
                      history: History | None = None) -> None:
    """Remember how a job ended and the model it made (model -> job -> template)."""
    with _using(history) as store:
        store.record_job_status(provider, job_id, status, fine_tuned_model)


# ── reading: which template to ask a model with ──────────────────────────────────────────


def recorded_prompt(model: str, provider: str | None, *,
                    history: History | None = None) -> PromptChoice:
    """The template local history knows for ``model`` (blocking: SQLite, maybe a sha256)."""
    try:
        with _using(history) as store:
            record = store.job_for_model(model, provider)
            if record is None:
                return _unknown(model)
            try:
                template, name = _template_of_job(record, store)
            except _Missing:
                trained = record.template_fingerprint
                return _unknown(model, _not_known_here(record.template_name, trained)
                                if trained else f"job {record.job_id} has no usable recorded "
                                "template",
                                job_id=record.job_id)
            return PromptChoice(model, template, name, "history", job_id=record.job_id)
    except (HistoryError, OSError) as error:
        return _unknown(model, f"the local history is unreadable ({error})")


async def prompt_for(model: str, provider: str | None, *, client: Any = None,
                     history: History | None = None) -> PromptChoice:
    """The template ``model`` was trained with, for the playground, Evaluate, ``sqltune eval``.

    Local history first; for a tuned model it does not know, the provider's job that made the
    model (``client``: an ``openai.AsyncOpenAI``) and the template fingerprint in its metadata,
    which is then remembered. Otherwise the default template, with a warning to show."""
    choice = await asyncio.to_thread(recorded_prompt, model, provider, history=history)
    if choice.known or client is None or not is_tuned_model(model):
        return choice
    try:
        job = await _remote_job(client, model)
    except Exception as error:  # the provider cannot list jobs: say so, ask with the default
        from tui.core.provider.providers import redact

        return _unknown(model, "no record of its template here and its job could not be read "
                               f"({redact(str(error)) or type(error).__name__})")
    if job is None:
        return choice
    if not job.metadata.get(METADATA_FINGERPRINT):
        return _unknown(model, f"its job {job.id} carries no sqltune template fingerprint",
                        job_id=job.id)
    try:
        return await asyncio.to_thread(_remember_remote, model, provider, job, history)
    except (HistoryError, OSError):  # history unusable: the metadata alone may still do
        try:
            template, name, _ = _from_metadata(job.metadata, None)
        except _Missing:
            return choice
        return PromptChoice(model, template, name, "job metadata", job_id=job.id)


def _remember_remote(model: str, provider: str | None, job: JobInfo,
                     history: History | None) -> PromptChoice:
    """The template a provider job's metadata names, recorded so history knows it next time."""
    with _using(history) as store:
        try:
            template, name, _ = _from_metadata(job.metadata, store)
        except _Missing:
            return _unknown(model, _not_known_here(job.metadata.get(METADATA_NAME),
                                                   job.metadata[METADATA_FINGERPRINT]),
                            job_id=job.id)
        if provider is not None:
            record_job(provider, job, history=store)
        return PromptChoice(model, template, name, "job metadata", job_id=job.id)


async def _remote_job(client: Any, model: str) -> JobInfo | None:
    """The provider's job whose fine-tuned model is ``model`` (or its checkpoint's model)."""
    from tui.core.finetune.jobs import JobInfo

    names = {model, _CHECKPOINT_SUFFIX.sub("", model)}
    seen = 0
    async for job in client.fine_tuning.jobs.list(limit=100):
        if job.fine_tuned_model in names:
            return JobInfo.from_sdk(job)
        seen += 1
        if seen >= REMOTE_JOB_SCAN:
            break
    return None


def _template_of_job(record: JobRecord, store: History) -> tuple[PromptTemplate, str | None]:
    """The recorded template of a job: its own record, its fingerprint, or its training file's
    dataset (a job recorded before the file's dataset was)."""
    if record.template:
        template = _rebuilt(record.template)
        return template, record.template_name or preset_name(template)
    if record.template_fingerprint:
        return _by_fingerprint(record.template_fingerprint, record.template_name, store)
    dataset = dataset_of_file(record.provider, record.training_file, history=store)
    if dataset is None:
        raise _Missing
    template = _rebuilt(dataset.template)
    return template, dataset.template_name or preset_name(template)


def _rebuilt(data: dict[str, Any]) -> PromptTemplate:
    """The template a record holds; _Missing when it is no longer a valid one."""
    try:
        return PromptTemplate.from_dict(data)
    except PromptTemplateError:
        raise _Missing from None


def _from_metadata(metadata: Mapping[str, str], store: History | None
                   ) -> tuple[PromptTemplate, str | None, str]:
    """(template, name, fingerprint) from a job's metadata; _Missing when it names none this
    machine can rebuild (the fingerprint must match whatever is found)."""
    fingerprint = metadata.get(METADATA_FINGERPRINT)
    if not fingerprint:
        raise _Missing
    name = metadata.get(METADATA_NAME) or None
    settings = metadata.get(METADATA_SETTINGS)
    if settings:
        try:
            template = PromptTemplate.from_dict(json.loads(settings))
        except (ValueError, PromptTemplateError):
            template = None
        if template is not None and template.fingerprint() == fingerprint:
            return template, name or preset_name(template), fingerprint
    template, name = _by_fingerprint(fingerprint, name, store)
    return template, name, fingerprint


def _by_fingerprint(fingerprint: str, name: str | None,
                    store: History | None) -> tuple[PromptTemplate, str | None]:
    preset = _preset_by_fingerprint(fingerprint)
    if preset is not None:
        return preset[1], name or preset[0]
    dataset = None if store is None else store.dataset_for_fingerprint(fingerprint)
    if dataset is None:
        raise _Missing
    return _rebuilt(dataset.template), name or dataset.template_name


def _preset_by_fingerprint(fingerprint: str) -> tuple[str, PromptTemplate] | None:
    return next(((name, t) for name, t in TEMPLATES.items() if t.fingerprint() == fingerprint),
                None)


def _fingerprint(template: dict[str, Any]) -> str | None:
    try:
        return PromptTemplate.from_dict(template).fingerprint()
    except PromptTemplateError:
        return None


def _not_known_here(name: str | None, fingerprint: str | None) -> str:
    return (f"trained with template {name or 'custom'} (fingerprint {fingerprint}), which this "
            "machine does not know")


def _unknown(model: str, why: str | None = None, *, job_id: str | None = None) -> PromptChoice:
    if not is_tuned_model(model) and why is None:
        return PromptChoice(model, DEFAULT_TEMPLATE, "default", "base model")
    reason = why or "no record of the template it was trained with"
    return PromptChoice(model, DEFAULT_TEMPLATE, "default", "unknown",
                        warning=f"{reason}: asked with the default template", job_id=job_id)
