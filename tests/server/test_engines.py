"""The ngram engine: honest metrics, hand-checked losses, resumable state, determinism."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tui.core.data.prompts import DEFAULT_TEMPLATE, render_messages
from tui.server.engines import (
    BASE_MODEL,
    ChatExample,
    EngineError,
    HyperparameterError,
    StepMetrics,
    base_models,
    get_engine,
)
from tui.server.engines.ngram import EOS, LAMBDA_PRIOR, NgramLM, Score, make_sequence
from tui.server.engines.usage import encoding

SCHEMA = """CREATE TABLE singer (
  singer_id INTEGER PRIMARY KEY, -- e.g. 1, 2, 3
  name TEXT, -- e.g. 'Joe Sharp', 'Timbaland'
  country TEXT, -- e.g. 'Netherlands', 'United States'
  age INTEGER -- e.g. 52, 32
);

CREATE TABLE concert (
  concert_id INTEGER PRIMARY KEY,
  concert_name TEXT,
  year INTEGER,
  singer_id INTEGER,
  FOREIGN KEY (singer_id) REFERENCES singer(singer_id)
);"""

PAIRS = [
    ("How many singers are there?", "SELECT count(*) FROM singer"),
    ("List the names of all singers.", "SELECT name FROM singer"),
    ("What is the average age of singers?", "SELECT avg(age) FROM singer"),
    ("How many concerts are there?", "SELECT count(*) FROM concert"),
    ("List concert names in 2014.", "SELECT concert_name FROM concert WHERE year = 2014"),
    ("What is the maximum age of singers?", "SELECT max(age) FROM singer"),
]


def chats(pairs: list[tuple[str, str]] = PAIRS, schema: str = SCHEMA) -> list[ChatExample]:
    return [ChatExample(render_messages(DEFAULT_TEMPLATE, schema, q, sql)) for q, sql in pairs]


def run_all(examples: list[ChatExample], valid: list[ChatExample] | None = None,
            seed: int = 0, **requested: object) -> list[StepMetrics]:
    engine = get_engine()
    hp = engine.resolve_hyperparameters(len(examples), dict(requested))
    run = engine.start(examples, valid, hp, seed)
    out = []
    while run.steps_done < run.total_steps:
        out.append(run.step())
    return out


def test_auto_hyperparameters_follow_openai_rules() -> None:
    engine = get_engine("ngram")
    hp = engine.resolve_hyperparameters(150, {"n_epochs": "auto"})
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (3, 1, 1.8)
    assert engine.resolve_hyperparameters(20, {}).n_epochs == 5
    assert engine.resolve_hyperparameters(20_000, {}).n_epochs == 1
    assert engine.resolve_hyperparameters(50_000, {}).batch_size == 100
    assert engine.resolve_hyperparameters(10, {"n_epochs": 2, "batch_size": 4,
                                               "learning_rate_multiplier": 0.5}).to_dict() == {
        "n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}
    with pytest.raises(HyperparameterError) as error:
        engine.resolve_hyperparameters(10, {"batch_size": 0})
    assert error.value.param == "hyperparameters.batch_size"
    with pytest.raises(EngineError):
        get_engine("nope")


def test_ngram_loss_matches_hand_computation() -> None:
    """Order 2, vocabulary 10, no cache: Witten-Bell by hand after learning [1, 2]."""
    lm = NgramLM(order=2, vocab=10)
    lm.learn(make_sequence([1, 2], []), 1.0)  # counts: BOS->1, 1->2, 2->EOS; unigram 1, 2, EOS
    score = Score()
    lm.score_sequence(make_sequence([1, 3], []), score)

    def p_uni(count: float) -> float:  # (c + T/V) / (N + T) with N = T = 3, V = 10
        return (count + 0.3) / 6

    p1 = (1 + 1 * p_uni(1)) / (1 + 1)  # context BOS: C = 1, T = 1
    p3 = (0 + 1 * p_uni(0)) / (1 + 1)  # context 1: only 2 seen
    p_eos = p_uni(1)  # context 3 unseen: back off to the unigram
    assert score.tokens == 3
    assert score.loss == pytest.approx(-(math.log(p1) + math.log(p3) + math.log(p_eos)) / 3,
                                       rel=1e-12)
    # 1 is the argmax after BOS; 2 (not 3) after 1; after 3 the unigram ties break to EOS (-1).
    assert score.hits == 2
    assert score.accuracy == pytest.approx(2 / 3)


def test_first_step_loss_is_the_untrained_mixture() -> None:
    """Before any learning every token has p = (1 - lam) / V + lam * cache share."""
    examples = chats(PAIRS[:1])
    metrics = run_all(examples, n_epochs=1, batch_size=1)[0]
    enc = encoding()
    messages = examples[0].messages
    cache = Counter(enc.encode_ordinary(messages[0]["content"])
                    + enc.encode_ordinary(messages[1]["content"]))
    total = sum(cache.values())
    targets = [*enc.encode_ordinary(messages[2]["content"]), EOS]
    vocab = enc.n_vocab + 1
    losses = [-math.log((1 - LAMBDA_PRIOR) / vocab + LAMBDA_PRIOR * cache[t] / total)
              for t in targets]
    assert metrics.train_loss == pytest.approx(sum(losses) / len(losses), rel=1e-12)
    top = min(cache, key=lambda t: (-cache[t], t))  # the most frequent prompt token
    assert metrics.train_mean_token_accuracy == pytest.approx(
        sum(t == top for t in targets) / len(targets))
    assert metrics.step == 1 and metrics.total_steps == 1 and metrics.epoch_end


def test_loss_falls_over_epochs_and_metrics_are_bounded() -> None:
    examples = chats(PAIRS * 3)
    metrics = run_all(examples, valid=chats(PAIRS[:2]), n_epochs=4, batch_size=3)
    per_epoch = [[m.train_loss for m in metrics if m.epoch == e] for e in (1, 2, 3, 4)]
    means = [sum(x) / len(x) for x in per_epoch]
    assert means == sorted(means, reverse=True) and means[-1] < means[0] / 3
    assert all(0.0 <= m.train_mean_token_accuracy <= 1.0 for m in metrics)
    assert all(m.valid_loss is not None and m.valid_loss > 0 for m in metrics)
    assert all(0.0 <= (m.valid_mean_token_accuracy or 0.0) <= 1.0 for m in metrics)
    ends = [m for m in metrics if m.epoch_end]
    assert [m.epoch for m in ends] == [1, 2, 3, 4]
    assert all(m.full_valid_loss is not None for m in ends)
    assert all(m.full_valid_loss is None for m in metrics if not m.epoch_end)
    assert ends[-1].full_valid_mean_token_accuracy is not None
    assert ends[-1].full_valid_mean_token_accuracy > 0.5  # the valid questions were trained on
    assert [m.step for m in metrics] == list(range(1, len(metrics) + 1))


def test_no_validation_file_means_no_valid_metrics() -> None:
    metrics = run_all(chats(), n_epochs=1, batch_size=2)
    assert len(metrics) == 3
    assert all(m.valid_loss is None and m.full_valid_loss is None for m in metrics)


def test_learning_rate_multiplier_changes_the_model() -> None:
    slow = run_all(chats(PAIRS * 2), n_epochs=2, batch_size=2, learning_rate_multiplier=0.2)
    fast = run_all(chats(PAIRS * 2), n_epochs=2, batch_size=2, learning_rate_multiplier=5.0)
    assert slow[0].train_loss == fast[0].train_loss  # nothing learned yet
    assert sum(m.train_loss for m in fast[1:]) < sum(m.train_loss for m in slow[1:])


def test_same_seed_same_metrics_other_seed_other_order() -> None:
    examples = chats(PAIRS * 2)
    a = run_all(examples, valid=chats(PAIRS[:3]), seed=3, n_epochs=2, batch_size=2)
    b = run_all(examples, valid=chats(PAIRS[:3]), seed=3, n_epochs=2, batch_size=2)
    c = run_all(examples, valid=chats(PAIRS[:3]), seed=4, n_epochs=2, batch_size=2)
    assert a == b
    assert [m.train_loss for m in a] != [m.train_loss for m in c]


def test_resume_from_state_gives_identical_metrics() -> None:
    engine = get_engine()
    examples, valid = chats(PAIRS * 2), chats(PAIRS[:3])
    hp = engine.resolve_hyperparameters(len(examples), {"n_epochs": 3, "batch_size": 2})
    whole = engine.start(examples, valid, hp, seed=9)
    expected = [whole.step() for _ in range(whole.total_steps)]

    first = engine.start(examples, valid, hp, seed=9)
    got = [first.step() for _ in range(7)]
    blob = first.state()
    assert blob.startswith(b"SQTN1")
    resumed = get_engine().start(examples, valid, hp, seed=9, resume_state=blob)
    assert resumed.steps_done == 7
    while resumed.steps_done < resumed.total_steps:
        got.append(resumed.step())
    assert got == expected
    assert resumed.state() == whole.state()
    with pytest.raises(EngineError):
        engine.start(examples, valid, hp, seed=10, resume_state=blob)
    with pytest.raises(EngineError):
        resumed.step()


def test_garbage_state_is_refused() -> None:
    engine = get_engine()
    for blob in (b"", b"not a state", b"SQTN1garbage", b"SQTN1" + b"x\x9c\x03\x00"):
        with pytest.raises(EngineError):
            engine.load(blob)


def test_tuned_model_answers_a_training_question_with_its_sql() -> None:
    engine = get_engine()
    examples = chats()
    run = engine.start(examples, None, engine.resolve_hyperparameters(6, {}), seed=0)
    while run.steps_done < run.total_steps:
        run.step()
    model = engine.load(run.state())
    for question, sql in PAIRS:
        answer = model.complete(render_messages(DEFAULT_TEMPLATE, SCHEMA, question))
        assert answer.text == sql
        assert answer.completion_tokens == len(encoding().encode_ordinary(sql))
        assert answer.prompt_tokens > answer.completion_tokens
    cut = model.complete(render_messages(DEFAULT_TEMPLATE, SCHEMA, PAIRS[4][0]), max_tokens=2)
    assert cut.completion_tokens == 2 and cut.finish_reason == "length"


def test_base_model_counts_for_how_many_questions() -> None:
    base = base_models()[BASE_MODEL]
    question = "How many concerts are there?"
    answer = base.complete(render_messages(DEFAULT_TEMPLATE, SCHEMA, question))
    assert answer.text == "SELECT count(*) FROM concert"
    answer = base.complete(render_messages(DEFAULT_TEMPLATE, SCHEMA,
                                           "List the name and age of every singer."))
    assert answer.text == "SELECT name, age FROM singer"
    answer = base.complete(render_messages(DEFAULT_TEMPLATE, SCHEMA,
                                           "How many singers come from 'Netherlands'?"))
    assert answer.text == "SELECT count(*) FROM singer WHERE country = 'Netherlands'"
