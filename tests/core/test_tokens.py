"""Offline encodings (hash-verified), model mapping and chat token counts."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import pytest
import tiktoken
import tiktoken.registry

from tui.core.budget import tokens
from tui.core.budget.tokens import (
    CL100K,
    O200K,
    EncodingChoice,
    EncodingHashMismatch,
    TokenCounter,
    context_limit,
    count_message_tokens,
    encoding_for_model,
    get_encoding,
    verified_bpe_bytes,
)

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "You write SQL for SQLite.\n\nCREATE TABLE t (id INTEGER);"},
    {"role": "user", "content": "How many rows are in t?", "name": "analyst"},
    {"role": "assistant", "content": "SELECT count(*) FROM t", "weight": 1},
]


def expected_sha256(name: str) -> str:
    """The sha256 tiktoken's own constructor for ``name`` demands of its BPE file."""
    captured: list[str | None] = []

    class Captured(Exception):
        pass

    def capture(_blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
        captured.append(expected_hash)
        raise Captured

    with contextlib.suppress(Captured):
        tokens._call_constructor(name, capture)
    assert captured and captured[0], f"tiktoken gives no expected sha256 for {name}"
    return str(captured[0])


def _tiktoken_own(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tiktoken.Encoding:
    """tiktoken's get_encoding, fed through its own cache (keyed by URL) and its own hash check."""
    from tiktoken_ext import openai_public

    urls = {O200K: "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
            CL100K: "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"}
    assert urls[name] in Path(openai_public.__file__).read_text()
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir(exist_ok=True)
    key = hashlib.sha1(urls[name].encode()).hexdigest()
    (cache / key).write_bytes(verified_bpe_bytes(name, expected_sha256(name)))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    return tiktoken.get_encoding(name)


def _cookbook_count(messages: list[dict[str, Any]], enc: tiktoken.Encoding) -> int:
    """OpenAI cookbook num_tokens_from_messages, with encode() as the cookbook calls it."""
    total = 0
    for message in messages:
        total += 3
        for key, value in message.items():
            if not isinstance(value, str):
                continue
            total += len(enc.encode(value))
            if key == "name":
                total += 1
    return total + 3


def test_expected_hashes_come_from_tiktoken_and_match_the_known_ones() -> None:
    assert expected_sha256(O200K) == tokens.KNOWN_SHA256[O200K]
    assert expected_sha256(CL100K) == tokens.KNOWN_SHA256[CL100K]


@pytest.mark.parametrize("name", [O200K, CL100K])
def test_encoding_equals_tiktokens_own(name: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ours = get_encoding(name)
    theirs = _tiktoken_own(name, tmp_path, monkeypatch)
    text = "SELECT T1.name, count(*) FROM singer AS T1 JOIN concert ON ... -- ünïcode 数据库 \n\n"
    assert ours.encode(text) == theirs.encode(text)
    assert ours.n_vocab == theirs.n_vocab
    assert ours.special_tokens_set == theirs.special_tokens_set
    assert count_message_tokens(MESSAGES, ours) == _cookbook_count(MESSAGES, theirs)


def test_cookbook_overheads() -> None:
    enc = get_encoding(O200K)
    # 3 for the message, 1 for "user", 1 for "hello", 3 for the reply priming
    assert count_message_tokens([{"role": "user", "content": "hello"}], enc) == 8
    named = [{"role": "user", "content": "hello", "name": "bob"}]
    assert count_message_tokens(named, enc) == 8 + len(enc.encode("bob")) + 1


def test_counter_caches_system_messages_and_agrees() -> None:
    enc = get_encoding(O200K)
    counter = TokenCounter(enc)
    for question in ("How many rows?", "List every id.", "Which is largest?"):
        messages = [MESSAGES[0], {"role": "user", "content": question}, MESSAGES[2]]
        assert counter.count(messages) == count_message_tokens(messages, enc)
    assert len(counter._cached) == 4  # one system text, three roles


def test_special_token_text_counts_as_text() -> None:
    enc = get_encoding(O200K)
    messages = [{"role": "user", "content": "what is <|endoftext|>?"}]
    assert count_message_tokens(messages, enc) == 3 + 1 + len(
        enc.encode("what is <|endoftext|>?", disallowed_special=())) + 3


def test_corrupted_cache_is_rejected_and_rebuilt(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTUNE_CACHE_DIR", str(tmp_path))
    expected = expected_sha256(CL100K)
    first = verified_bpe_bytes(CL100K, expected)
    cached = tmp_path / "tiktoken" / "cl100k_base.tiktoken"
    assert cached.read_bytes() == first
    cached.write_bytes(first[:-10] + b"AAAA 99\n")
    again = verified_bpe_bytes(CL100K, expected)
    assert hashlib.sha256(again).hexdigest() == expected
    assert cached.read_bytes() == first


def test_hash_mismatch_raises_a_clear_error(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTUNE_CACHE_DIR", str(tmp_path))
    with pytest.raises(EncodingHashMismatch, match="tiktoken expects 0000"):
        verified_bpe_bytes(O200K, "0" * 64)
    assert not (tmp_path / "tiktoken" / "o200k_base.tiktoken").exists()


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4.1-mini-2025-04-14", O200K),
    ("gpt-4.1", O200K),
    ("gpt-4o-2024-08-06", O200K),
    ("gpt-4o-mini", O200K),
    ("gpt-5-mini", O200K),
    ("o4-mini", O200K),
    ("o1", O200K),
    ("gpt-4", CL100K),
    ("gpt-4-0613", CL100K),
    ("gpt-4-turbo", CL100K),
    ("gpt-3.5-turbo-0125", CL100K),
    ("gpt-35-turbo", CL100K),
    ("ft:gpt-4.1-mini-2025-04-14:org::id", O200K),
    ("ft:gpt-4.1-2025-04-14:my-org:sql:AbC123:ckpt-step-200", O200K),
    ("ft:gpt-4o-mini-2024-07-18:org::B1", O200K),
    ("ft:gpt-3.5-turbo-0125:org:custom:id", CL100K),
    ("FT:GPT-4O-MINI-2024-07-18:ORG::X", O200K),
])
def test_model_to_encoding(model: str, encoding: str) -> None:
    assert encoding_for_model(model) == EncodingChoice(encoding)


def test_tiktokens_own_table_gets_ft_gpt41_wrong_and_we_do_not() -> None:
    from tiktoken.model import encoding_name_for_model

    assert encoding_name_for_model("ft:gpt-4.1-mini-2025-04-14:org::id") == CL100K
    assert encoding_for_model("ft:gpt-4.1-mini-2025-04-14:org::id").name == O200K


@pytest.mark.parametrize("model", ["sqltune-local-base", "ft:sqltune-local-base:local::j1",
                                   "llama-3.1-8b", "claude-sonnet", ""])
def test_unknown_models_fall_back_with_a_note(model: str) -> None:
    choice = encoding_for_model(model)
    assert choice.name == O200K
    assert choice.note and "o200k_base" in choice.note


@pytest.mark.parametrize(("model", "limit"), [
    ("gpt-4.1-mini-2025-04-14", 65_536),
    ("ft:gpt-4.1-nano-2025-04-14:o::i", 65_536),
    ("gpt-4o-mini-2024-07-18", 65_536),
    ("gpt-4o", 65_536),
    ("gpt-3.5-turbo-0125", 16_385),
    ("ft:gpt-3.5-turbo-1106:o::i", 16_385),
    ("gpt-3.5-turbo-0613", 4_096),
    ("gpt-4-0613", 8_192),
    ("sqltune-local-base", 65_536),
])
def test_context_limits(model: str, limit: int) -> None:
    assert context_limit(model) == limit


def test_derived_ranks_cache_is_checked_and_rebuilt(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTUNE_CACHE_DIR", str(tmp_path))
    expected = expected_sha256(CL100K)
    reference = tokens.parse_bpe(verified_bpe_bytes(CL100K, expected))
    assert tokens.verified_ranks(CL100K, expected) == reference
    ranks_file = tmp_path / "tiktoken" / "cl100k_base.ranks"
    good = ranks_file.read_bytes()
    ranks_file.write_bytes(good[:-100] + bytes(100))  # damaged: its digest no longer matches
    assert tokens.verified_ranks(CL100K, expected) == reference
    assert ranks_file.read_bytes() == good
    (tmp_path / "tiktoken" / "cl100k_base.tiktoken").write_bytes(b"tampered")
    assert tokens.verified_ranks(CL100K, expected) == reference  # the source is re-verified
    with pytest.raises(EncodingHashMismatch):
        tokens.verified_ranks(CL100K, "f" * 64)


def test_tiktokens_files_come_from_the_data_package_verbatim() -> None:
    for name in (O200K, CL100K):
        data = tokens.packaged_bpe_bytes(name)
        assert hashlib.sha256(data).hexdigest() == tokens.KNOWN_SHA256[name]


def test_a_missing_data_package_names_the_install(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQLTUNE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokens, "DATA_PACKAGE", "no_such_tiktoken_files")
    with pytest.raises(tokens.EncodingError, match="pip install no_such_tiktoken_files"):
        verified_bpe_bytes(O200K, tokens.KNOWN_SHA256[O200K])
