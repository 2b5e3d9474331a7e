"""``sqltune adapters export``: a lora model or checkpoint of a server folder as a PEFT folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tui.cli import main
from tui.server.app import DB_FILE
from tui.server.blobs import BlobStore
from tui.server.store import Store

pytest.importorskip("peft", reason="the train extra (torch, transformers, peft) is absent")

MODEL = "ft:tiny:sqltune::abcd1234"
CHECKPOINT = "ft:tiny:sqltune::abcd1234:ckpt-step-2"
STAND_IN = "ft:sqltune-local-base:sqltune::zzzz9999"


@pytest.fixture(scope="module")
def adapter_files(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> dict[str, bytes]:
    """A random (non-zero) LoRA adapter of the tiny model, as PEFT saves it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    folder = tmp_path_factory.mktemp("adapter")
    get_peft_model(model, LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"],
                                     init_lora_weights=False)).save_pretrained(folder)
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def data_dir(tmp_path: Path, tiny_model_dir: Path, adapter_files: dict[str, bytes]) -> Path:
    """A server folder holding a finished lora job (model + checkpoint) and a stand-in one,
    written with the server's own store, blob folder and blob format."""
    from tui.server.engines.lora import artifacts

    folder = tmp_path / "server"
    folder.mkdir()
    store, blobs = Store(folder / DB_FILE), BlobStore(folder)
    lora = {"r": 4, "alpha": 32, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    for job_id, engine in (("ftjob-lora", "lora"), ("ftjob-ngram", "ngram")):
        store.add_job({"id": job_id, "status": "succeeded"},
                      {"engine": engine, "base_model": "tiny",
                       "base_source": str(tiny_model_dir), "base_kind": "folder"})
    blob = artifacts.pack(artifacts.AdapterMeta("tiny", 3, lora), adapter_files)
    blobs.write("models", "ftjob-lora", blob)
    store.add_model(MODEL, owned_by="org", job_id="ftjob-lora", engine="lora",
                    blob="ftjob-lora")
    blobs.write("checkpoints", "ftckpt_1",
                artifacts.pack(artifacts.AdapterMeta("tiny", 2, lora), adapter_files))
    store.add_checkpoint("ftckpt_1", "ftjob-lora", 2, CHECKPOINT, {}, "lora")
    blobs.write("models", "ftjob-ngram", b"stand-in state")
    store.add_model(STAND_IN, owned_by="org", job_id="ftjob-ngram", engine="ngram",
                    blob="ftjob-ngram")
    store.close()
    return folder


def greedy(model: Any, tokenizer: Any) -> list[int]:
    import torch

    ids = tokenizer("SELECT name FROM singer", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(input_ids=ids, max_new_tokens=6, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return [int(t) for t in out[0][ids.shape[1]:]]


def test_export_writes_a_peft_folder_that_loads_on_its_base(
        data_dir: Path, tmp_path: Path, tiny_model_dir: Path, adapter_files: dict[str, bytes],
        capsys: pytest.CaptureFixture[str]) -> None:
    from peft import AutoPeftModelForCausalLM, PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "exported"
    assert main(["adapters", "export", MODEL, "--out", str(out), "--data-dir", str(data_dir),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == ["adapter_config.json", "adapter_model.safetensors"]
    assert (report["base_model"], report["step"]) == ("tiny", 3)
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["base_model_name_or_path"] == str(tiny_model_dir) == report[
        "base_model_name_or_path"]
    assert (out / "adapter_model.safetensors").read_bytes() == adapter_files[
        "adapter_model.safetensors"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    # the base named in the folder is found on its own, and the adapter changes the answers
    tuned = AutoPeftModelForCausalLM.from_pretrained(out)
    explicit = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                         out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert greedy(tuned, tokenizer) == greedy(explicit, tokenizer) != greedy(base, tokenizer)
    # a checkpoint exports the same way
    assert main(["adapters", "export", CHECKPOINT, "--out", str(tmp_path / "ckpt"),
                 "--data-dir", str(data_dir)]) == 0
    assert "step 2" in capsys.readouterr().out
    assert (tmp_path / "ckpt" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(("model", "problem"), [
    ("ft:nope:sqltune::00000000", "unknown model 'ft:nope:sqltune::00000000'"),
    (STAND_IN, "trained by the 'ngram' engine (the stand-in), which has no adapter weights"),
])
def test_export_refuses_clearly(data_dir: Path, tmp_path: Path, model: str, problem: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["adapters", "export", model, "--out", str(out), "--data-dir",
                 str(data_dir)]) == 1
    assert problem in capsys.readouterr().err
    assert not out.exists()


def test_export_needs_a_server_folder_and_an_empty_out(data_dir: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters", "export", MODEL, "--out", str(tmp_path / "o"), "--data-dir",
                 str(tmp_path / "nothing")]) == 1
    assert "no local server data in" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["adapters", "export", MODEL, "--out", str(busy), "--data-dir",
                 str(data_dir)]) == 1
    assert "already exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
