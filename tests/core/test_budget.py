"""Auto epochs, trained tokens, cost, and the largest fitting subset per strategy."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tui.core.budget.fit import (
    BudgetError,
    fit_to_budget,
    resolve_epochs,
    selection_order,
)
from tui.core.budget.pricing import training_cost

MODEL = "gpt-4.1-mini-2025-04-14"


@pytest.mark.parametrize(("n", "epochs"), [
    (1, 25), (3, 25), (4, 25), (5, 20), (10, 10), (33, 3), (34, 3), (50, 3), (100, 3),
    (7000, 3), (8333, 3), (8334, 2), (12500, 2), (12501, 1), (30000, 1), (0, 3),
])
def test_auto_epochs_follow_openais_rule(n: int, epochs: int) -> None:
    assert resolve_epochs("auto", n) == epochs


def test_given_epochs_are_kept_and_checked() -> None:
    assert resolve_epochs(7, 100_000) == 7
    with pytest.raises(BudgetError):
        resolve_epochs(0, 10)


def _data(n: int = 600, dbs: int = 9, seed: int = 3) -> tuple[list[int], list[str]]:
    rng = random.Random(seed)
    groups = [f"db{rng.randrange(dbs) ** 2 % dbs}" for _ in range(n)]  # uneven sizes
    tokens = [rng.randint(200, 3000) + 500 * int(g[2:]) for g in groups]
    return tokens, groups


def test_everything_fits_under_a_large_limit() -> None:
    tokens, groups = _data()
    budget = fit_to_budget(tokens, groups=groups, model=MODEL, token_limit=10**12)
    assert budget.kept == budget.examples == len(tokens) and budget.fits_all
    assert budget.epochs == 3
    assert budget.tokens_per_epoch == budget.total_tokens == sum(tokens)
    assert budget.trained_tokens == 3 * sum(tokens)
    assert budget.kept_indices == tuple(range(len(tokens)))
    assert budget.estimated_cost_usd == pytest.approx(budget.trained_tokens * 5.0 / 1e6)
    assert budget.costs_usd["gpt-4.1"] == pytest.approx(budget.trained_tokens * 25.0 / 1e6)
    assert budget.max_example_tokens == max(tokens)


@pytest.mark.parametrize("strategy", ["stratified", "shortest", "random"])
@pytest.mark.parametrize("epochs", ["auto", 2])
def test_fit_is_within_the_limit_and_largest_for_its_order(strategy: str, epochs: int | str
                                                           ) -> None:
    tokens, groups = _data()
    limit = sum(tokens)  # about a third at 3 epochs
    budget = fit_to_budget(tokens, groups=groups, model=MODEL, token_limit=limit,
                           strategy=strategy, epochs=epochs, seed=5)  # type: ignore[arg-type]
    assert 0 < budget.kept < budget.examples
    assert budget.trained_tokens <= limit
    assert budget.tokens_per_epoch == sum(tokens[i] for i in budget.kept_indices)
    assert budget.trained_tokens == budget.tokens_per_epoch * budget.epochs
    order = selection_order(tokens, groups, strategy, seed=5)  # type: ignore[arg-type]
    assert set(order[:budget.kept]) == set(budget.kept_indices)
    one_more = sum(tokens[i] for i in order[:budget.kept + 1])
    assert one_more * resolve_epochs(epochs, budget.kept + 1) > limit  # type: ignore[arg-type]


def test_shortest_is_optimal_by_brute_force_under_auto_epochs() -> None:
    rng = random.Random(11)
    for n, limit in ((20, 20_000), (40, 60_000), (9000, 25_000_000), (9000, 40_000_000)):
        tokens = [rng.randint(1, 3000) for _ in range(n)]
        budget = fit_to_budget(tokens, model=MODEL, token_limit=limit, strategy="shortest")
        best, running = 0, 0
        for k, value in enumerate(sorted(tokens), start=1):
            running += value
            if running * resolve_epochs("auto", k) <= limit:
                best = k
        assert budget.kept == best


def test_auto_epochs_can_rise_when_the_subset_shrinks() -> None:
    tokens = [1000] * 9000  # 9000 examples: auto gives 2 epochs; 8333 or fewer give 3
    budget = fit_to_budget(tokens, model=MODEL, token_limit=17_000_000, strategy="shortest")
    assert (budget.kept, budget.epochs) == (8500, 2)
    budget = fit_to_budget(tokens, model=MODEL, token_limit=16_000_000, strategy="shortest")
    assert (budget.kept, budget.epochs) == (5333, 3)


def test_stratified_keeps_every_database_in_proportion() -> None:
    tokens, groups = _data(n=2000, dbs=12)
    sizes = Counter(groups)
    budget = fit_to_budget(tokens, groups=groups, model=MODEL, token_limit=sum(tokens) // 2,
                           epochs=3)
    share = budget.kept / budget.examples
    assert 0.1 < share < 0.5
    for db, (total, kept) in budget.by_database.items():
        assert total == sizes[db]
        assert kept >= 1
        assert abs(kept - total * share) <= 1.5
    # cheaper than random picks with the same proportions: it keeps more than random does
    random_fit = fit_to_budget(tokens, groups=groups, model=MODEL,
                               token_limit=sum(tokens) // 2, epochs=3, strategy="random")
    assert budget.kept > random_fit.kept


def test_stratified_keeps_one_per_database_first() -> None:
    tokens = [100] * 50 + [5000] + [100] * 50
    groups = ["big"] * 50 + ["rare"] + ["other"] * 50
    budget = fit_to_budget(tokens, groups=groups, model=MODEL, token_limit=3 * 6000, epochs=3)
    assert budget.by_database["rare"] == (1, 1)
    assert budget.by_database["big"][1] >= 4 and budget.by_database["other"][1] >= 4


def test_random_is_seeded_and_deterministic() -> None:
    tokens, groups = _data()
    limit = sum(tokens)
    a = fit_to_budget(tokens, groups=groups, model=MODEL, token_limit=limit, strategy="random",
                      seed=1)
    b = fit_to_budget(tokens, groups=groups, model=MODEL, token_limit=limit, strategy="random",
                      seed=1)
    c = fit_to_budget(tokens, groups=groups, model=MODEL, token_limit=limit, strategy="random",
                      seed=2)
    assert a.kept_indices == b.kept_indices != c.kept_indices


def test_billing_is_capped_at_the_context() -> None:
    tokens = [20_000, 100, 100]
    budget = fit_to_budget(tokens, model="gpt-3.5-turbo-0125", token_limit=10**9, epochs=1)
    assert budget.context_limit == 16_385
    assert budget.over_context == 1
    assert budget.tokens_per_epoch == 16_385 + 200
    assert budget.max_example_tokens == 20_000
    assert budget.estimated_cost_usd == pytest.approx(training_cost("gpt-3.5-turbo",
                                                                    16_585))


def test_unknown_model_has_no_cost_but_a_note() -> None:
    budget = fit_to_budget([10, 20], model="sqltune-local-base", token_limit=1000)
    assert budget.estimated_cost_usd == 0.0 and budget.encoding_note
    budget = fit_to_budget([10, 20], model="mystery-7b", token_limit=1000)
    assert budget.estimated_cost_usd is None and budget.encoding == "o200k_base"


def test_nothing_fits_and_empty_input() -> None:
    budget = fit_to_budget([500, 600], model=MODEL, token_limit=100)
    assert budget.kept == 0 and budget.trained_tokens == 0 and budget.kept_indices == ()
    empty = fit_to_budget([], model=MODEL)
    assert empty.kept == 0 and empty.examples == 0 and empty.mean_example_tokens == 0.0


def test_bad_arguments() -> None:
    with pytest.raises(BudgetError):
        fit_to_budget([1], model=MODEL, strategy="longest")  # type: ignore[arg-type]
    with pytest.raises(BudgetError):
        fit_to_budget([1, 2], groups=["a"], model=MODEL)
    with pytest.raises(BudgetError):
        fit_to_budget([1], model=MODEL, token_limit=-1)


def test_validation_share_is_a_percentage_or_a_fraction() -> None:
    from tui.core.budget.fit import parse_validation_share

    assert parse_validation_share("10") == pytest.approx(0.1)
    assert parse_validation_share(" 10% ") == pytest.approx(0.1)
    assert parse_validation_share("0.1") == pytest.approx(0.1)
    assert parse_validation_share("0.5%") == pytest.approx(0.005)
    assert parse_validation_share("") == 0.0 and parse_validation_share("0") == 0.0
    assert parse_validation_share("1") == pytest.approx(0.01)
    for bad in ("100", "-5", "ten", "150%"):
        with pytest.raises(BudgetError, match="validation"):
            parse_validation_share(bad)
