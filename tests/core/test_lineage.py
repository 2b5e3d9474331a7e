"""Prompt lineage on a real history file and the real local server: record, recognise, warn."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import openai
import pytest

from tests.local_servers import module_server
from tui.core.data.prepare import PrepareOptions, prepare
from tui.core.data.prompts import COMPACT_TEMPLATE, DEFAULT_TEMPLATE, RICH_TEMPLATE, PromptTemplate
from tui.core.finetune.jobs import JobInfo, JobSpec
from tui.core.finetune.lineage import (
    METADATA_FINGERPRINT,
    METADATA_NAME,
    METADATA_SETTINGS,
    PromptChoice,
    job_metadata,
    prompt_for,
    record_job,
    record_prepared,
    record_upload,
    recorded_prompt,
    spec_with_template,
)
from tui.core.history import History
from tui.core.paths import demo_dir
from tui.server.inprocess import LocalServer

BASE = "sqltune-local-base"
server = module_server("lineage-server")


def recorded(model: str, provider: str | None) -> tuple[PromptTemplate, bool]:
    choice = recorded_prompt(model, provider)
    return choice.template, choice.known


def test_template_of_a_tuned_model_or_checkpoint_comes_from_history() -> None:
    with History() as history:
        history.record_job("local", "ftjob-1", "base", "file-1",
                           template=COMPACT_TEMPLATE.to_dict())
        history.record_job_status("local", "ftjob-1", "succeeded", "ft:base:org::x")
        history.record_job("local", "ftjob-2", "base", "file-2", template={"sample_values": -4})
        history.record_job_status("local", "ftjob-2", "succeeded", "ft:base:org::broken")
    assert recorded("ft:base:org::x", "local") == (COMPACT_TEMPLATE, True)
    assert recorded("ft:base:org::x:ckpt-step-3", "local") == (COMPACT_TEMPLATE, True)
    assert recorded("ft:base:org::x", "other-provider") == (DEFAULT_TEMPLATE, False)
    assert recorded("base", "local") == (DEFAULT_TEMPLATE, False)
    assert recorded("ft:base:org::broken", "local") == (DEFAULT_TEMPLATE, False)
    # a guess is never silent for a tuned model; a base model was trained on no template
    assert recorded_prompt("ft:base:org::broken", "local").warning
    base = recorded_prompt("base", "local")
    assert base.source == "base model" and base.warning is None
    assert base.to_json() == {"name": "default", "fingerprint": DEFAULT_TEMPLATE.fingerprint(),
                              "source": "base model"}


def _prepared(tmp_path: Path, template_name: str) -> Path:
    from tui.core.data.prompts import TEMPLATES

    result = prepare(demo_dir(), PrepareOptions(template=TEMPLATES[template_name],
                                                template_name=template_name, parallel=False))
    written = result.write(tmp_path / f"{template_name}.jsonl")
    record_prepared(result, written)
    return written.path


def test_file_upload_job_model_chain_names_the_template(tmp_path: Path) -> None:
    path = _prepared(tmp_path, "rich")
    spec = spec_with_template(JobSpec(model=BASE, training_file="file-r"), "p", path)
    assert spec.metadata[METADATA_NAME] == "rich"
    assert spec.metadata[METADATA_FINGERPRINT] == RICH_TEMPLATE.fingerprint()
    assert PromptTemplate.from_dict(json.loads(spec.metadata[METADATA_SETTINGS])) == RICH_TEMPLATE
    # by file id alone, once the upload is recorded; the user's own metadata wins
    record_upload("p", "file-r", path)
    mine = JobSpec(model=BASE, training_file="file-r", metadata={METADATA_NAME: "mine"})
    assert spec_with_template(mine, "p").metadata == {**spec.metadata, METADATA_NAME: "mine"}
    # a file sqltune did not write gets no metadata
    other = tmp_path / "other.jsonl"
    other.write_text('{"messages": []}\n', encoding="utf-8")
    assert spec_with_template(JobSpec(model=BASE, training_file="f"), "p", other).metadata == {}

    job = JobInfo(id="ftjob-r", model=BASE, status="succeeded", created_at=0,
                  training_file="file-r", fine_tuned_model="ft:base:me::r")
    record = record_job("p", job)
    assert (record.template_name, record.template_fingerprint) == (
        "rich", RICH_TEMPLATE.fingerprint())
    choice = recorded_prompt("ft:base:me::r:ckpt-step-2", "p")
    assert (choice.template, choice.name, choice.source) == (RICH_TEMPLATE, "rich", "history")
    assert choice.job_id == "ftjob-r" and choice.warning is None


def test_metadata_names_a_template_even_when_it_is_too_long_to_carry() -> None:
    custom = replace(RICH_TEMPLATE, instructions="Write SQLite SQL. " * 40)
    metadata = job_metadata(custom, "rich+custom")
    assert METADATA_SETTINGS not in metadata  # over 512 characters: the fingerprint only
    assert metadata == {METADATA_FINGERPRINT: custom.fingerprint(), METADATA_NAME: "rich+custom"}
    assert job_metadata(COMPACT_TEMPLATE, None)[METADATA_NAME] == "compact"


def _tune(client: openai.OpenAI, metadata: dict[str, str] | None, suffix: str) -> str:
    lines = [json.dumps({"messages": [
        {"role": "system", "content": "schema"}, {"role": "user", "content": f"q{n}"},
        {"role": "assistant", "content": f"SELECT {n}"}]}) for n in range(12)]
    upload = client.files.create(file=("t.jsonl", ("\n".join(lines) + "\n").encode()),
                                 purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload.id, suffix=suffix,
                                         metadata=metadata)
    deadline = time.monotonic() + 60
    while job.status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job {job.id} still {job.status}"
        time.sleep(0.05)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded" and job.fine_tuned_model, job.error
    return job.fine_tuned_model


async def _ask(server: LocalServer, model: str) -> PromptChoice:
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key) as client:
        return await prompt_for(model, "srv", client=client)


async def test_a_job_made_elsewhere_is_recognised_by_its_metadata(server: LocalServer) -> None:
    """Fresh history (this test's own data dir): only the provider's job knows the template."""
    custom = COMPACT_TEMPLATE.with_samples(sample_rows=2)
    with openai.OpenAI(base_url=server.base_url, api_key=server.api_key) as client:
        rich = _tune(client, job_metadata(RICH_TEMPLATE, "rich"), "rich")
        fingerprint_only = _tune(client, {METADATA_FINGERPRINT: custom.fingerprint()}, "fp")
        plain = _tune(client, None, "plain")
    choice = await _ask(server, rich)
    assert (choice.template, choice.name, choice.source) == (RICH_TEMPLATE, "rich",
                                                            "job metadata")
    assert choice.warning is None and choice.to_json()["fingerprint"] == RICH_TEMPLATE.fingerprint()
    # remembered: history now answers without the provider, checkpoints included
    again = recorded_prompt(f"{rich}:ckpt-step-1", "srv")
    assert (again.template, again.source) == (RICH_TEMPLATE, "history")

    # a fingerprint this machine cannot rebuild: a warning that names it, the default template
    unknown = await _ask(server, fingerprint_only)
    assert unknown.source == "unknown" and unknown.template == DEFAULT_TEMPLATE
    assert unknown.warning is not None and custom.fingerprint() in unknown.warning
    # ... until a dataset prepared with that template is known here
    with History() as history:
        history.record_dataset("/d", "train", custom.to_dict(), template_name="compact+custom",
                               template_fingerprint=custom.fingerprint())
    found = await _ask(server, fingerprint_only)
    assert (found.template, found.name, found.source) == (custom, "compact+custom",
                                                         "job metadata")

    # a job without sqltune's metadata, and a model no job made: warned, never silent
    for model, why in ((plain, "carries no sqltune template fingerprint"),
                       ("ft:sqltune-local-base:nobody::gone", "no record of the template")):
        choice = await _ask(server, model)
        assert choice.source == "unknown" and choice.template == DEFAULT_TEMPLATE
        assert choice.warning is not None and why in choice.warning
        assert choice.to_json()["warning"] == choice.warning
    assert (await _ask(server, BASE)).source == "base model"


@pytest.mark.parametrize("name", ["default", "compact"])
def test_prepare_json_names_the_template(name: str) -> None:
    from tui.core.data.prompts import TEMPLATES

    result = prepare(demo_dir(), PrepareOptions(template=TEMPLATES[name], template_name=name,
                                                parallel=False))
    assert result.to_json()["prompt_template"] == {
        "name": name, "fingerprint": TEMPLATES[name].fingerprint()}
