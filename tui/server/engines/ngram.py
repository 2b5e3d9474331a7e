"""Online-trained interpolated Witten-Bell n-gram model of answer tokens, with a prompt cache."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tui.server.engines.base import EngineError

BOS = -2
"""Padding symbol before an answer's first token (never predicted)."""
EOS = -1
"""End of the assistant answer: predicted (and scored) like any other token."""

LAMBDA_PRIOR = 0.1
"""Initial weight of the prompt-copy cache in the mixture."""
LAMBDA_STRENGTH = 10.0
"""Pseudo-count of that prior: the learned weight moves away from it as tokens are seen."""


@dataclass
class Sequence_:
    """One assistant turn prepared for training: its tokens (EOS last) and its prompt cache."""

    targets: list[int]
    """Assistant token ids followed by EOS."""
    cache: dict[int, int]
    """Token counts of the system and user messages before the turn."""
    cache_total: int
    """Sum of ``cache`` counts."""


def make_sequence(answer_ids: Sequence[int], prompt_ids: Iterable[int]) -> Sequence_:
    """Bundle an answer's token ids with the bag of prompt tokens it may copy from."""
    cache = dict(Counter(prompt_ids))
    return Sequence_([*answer_ids, EOS], cache, sum(cache.values()))


@dataclass
class Score:
    """Summed cross-entropy and top-1 hits over some tokens, plus the cache responsibilities."""

    nll: float = 0.0
    """Sum of -ln p(token) in nats."""
    hits: int = 0
    """Tokens whose most probable prediction was the token itself."""
    tokens: int = 0
    """Tokens scored."""

    @property
    def loss(self) -> float:
        """Mean per-token cross-entropy (nats)."""
        return self.nll / self.tokens if self.tokens else 0.0

    @property
    def accuracy(self) -> float:
        """Mean top-1 next-token accuracy."""
        return self.hits / self.tokens if self.tokens else 0.0


class NgramLM:
    """Interpolated Witten-Bell n-gram LM over token ids, mixed with a per-answer prompt-copy cache.

    p(w | h) = (1 - lam_b) * p_WB(w | h) + lam_b * cache(w) / |cache|, where p_WB recurses from the
    longest seen context down to the unigram and then to uniform over ``vocab`` symbols, and the
    mixture weight lam_b (one per "longest seen context" bucket b) is learned online by EM from
    the responsibilities of tokens scored before they are learned. Each observed token adds
    ``increment`` (the learning-rate multiplier) to its counts, which makes higher-order
    estimates trusted sooner relative to Witten-Bell's type-count backoff mass.
    """

    def __init__(self, order: int, vocab: int) -> None:
        if order < 1:
            raise EngineError("n-gram order must be at least 1")
        self.order = order
        self.vocab = vocab
        # levels[k] maps a context of the last k tokens to (total count, {token: count}).
        self.levels: list[dict[tuple[int, ...], tuple[list[float], dict[int, float]]]] = [
            {} for _ in range(order)
        ]
        self.unigram: dict[int, float] = {}
        self.unigram_total = 0.0
        self.top_token = 0
        self.top_count = 0.0
        self.lam_num = [LAMBDA_PRIOR * LAMBDA_STRENGTH] * order
        self.lam_den = [LAMBDA_STRENGTH] * order

    # scoring -------------------------------------------------------------------------------

    def _unigram_p(self, w: int) -> float:
        types = len(self.unigram)
        if self.unigram_total <= 0:
            return 1.0 / self.vocab
        return (self.unigram.get(w, 0.0) + types / self.vocab) / (self.unigram_total + types)

    def _contexts(self, hist: Sequence[int]) -> list[tuple[float, dict[int, float]]]:
        """Seen contexts from order 1 upward, stopping at the first unseen one."""
        found: list[tuple[float, dict[int, float]]] = []
        for k in range(1, self.order):
            entry = self.levels[k].get(tuple(hist[len(hist) - k:]))
            if entry is None:
                break
            found.append((entry[0][0], entry[1]))
        return found

    def _frontier(self, seq: Sequence_) -> list[int]:
        """Cache tokens on the Pareto frontier of (unigram count, cache count), plus the top token.

        Outside the seen-context followers, a token's probability grows with both counts, so the
        argmax over those tokens is always one of these.
        """
        points = sorted(((self.unigram.get(w, 0.0), c, w) for w, c in seq.cache.items()),
                        key=lambda p: (-p[0], -p[1], p[2]))
        keep = [self.top_token]
        best = 0
        for _, c, w in points:
            if c > best:
                keep.append(w)
                best = c
        return keep

    def score_sequence(self, seq: Sequence_, out: Score,
                       resp: list[tuple[int, float]] | None = None) -> None:
        """Add the sequence's cross-entropy and top-1 hits to ``out`` without learning it.

        When ``resp`` is given, the (bucket, cache responsibility) of every token is appended,
        for ``learn`` to update the mixture weights.
        """
        hist = [BOS] * max(0, self.order - 1)
        frontier = self._frontier(seq)
        cache, cache_total = seq.cache, seq.cache_total
        for w in seq.targets:
            ctxs = self._contexts(hist)
            bucket = len(ctxs)
            lam = self.lam_num[bucket] / self.lam_den[bucket] if cache_total else 0.0
            # Unroll the recursion: p_WB(v) = base * p_uni(v) + sum_k coef_k * c_k(v).
            base = 1.0
            coefs: list[tuple[float, dict[int, float]]] = []
            for total, followers in reversed(ctxs):
                denom = total + len(followers)
                coefs.append((base / denom, followers))
                base *= len(followers) / denom
            scores: dict[int, float] = {}
            for coef, followers in coefs:
                for v, c in followers.items():
                    scores[v] = scores.get(v, 0.0) + coef * c
            for v in frontier:
                scores.setdefault(v, 0.0)
            best_v, best_p = 0, -1.0
            p_target = -1.0
            for v, part in scores.items():
                p = (1.0 - lam) * (part + base * self._unigram_p(v))
                if cache_total:
                    p += lam * cache.get(v, 0) / cache_total
                if p > best_p or (p == best_p and v < best_v):
                    best_v, best_p = v, p
                if v == w:
                    p_target = p
            if p_target < 0:
                p_target = (1.0 - lam) * base * self._unigram_p(w)
                if cache_total:
                    p_target += lam * cache.get(w, 0) / cache_total
            out.nll -= math.log(p_target)
            out.hits += best_v == w
            out.tokens += 1
            if resp is not None:
                p_cache = lam * cache.get(w, 0) / cache_total if cache_total else 0.0
                resp.append((bucket, p_cache / p_target))
            hist.append(w)

    # learning ------------------------------------------------------------------------------

    def learn(self, seq: Sequence_, increment: float) -> None:
        """Add the sequence's n-gram counts, each observation weighing ``increment``."""
        hist = [BOS] * max(0, self.order - 1)
        for w in seq.targets:
            for k in range(1, self.order):
                ctx = tuple(hist[len(hist) - k:])
                entry = self.levels[k].get(ctx)
                if entry is None:
                    entry = ([0.0], {})
                    self.levels[k][ctx] = entry
                entry[0][0] += increment
                entry[1][w] = entry[1].get(w, 0.0) + increment
            count = self.unigram.get(w, 0.0) + increment
            self.unigram[w] = count
            self.unigram_total += increment
            if count > self.top_count or (count == self.top_count and w < self.top_token):
                self.top_token, self.top_count = w, count
            hist.append(w)

    def learn_mixture(self, resp: list[tuple[int, float]]) -> None:
        """One online EM step for the cache weights from responsibilities scored before learning."""
        for bucket, r in resp:
            self.lam_num[bucket] += r
            self.lam_den[bucket] += 1.0

    # state ---------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-able snapshot that ``from_json`` restores exactly (insertion order included)."""
        levels = []
        for table in self.levels[1:]:
            levels.append([[list(ctx), entry[0][0], [x for kv in entry[1].items() for x in kv]]
                           for ctx, entry in table.items()])
        return {
            "order": self.order, "vocab": self.vocab, "levels": levels,
            "unigram": [x for kv in self.unigram.items() for x in kv],
            "unigram_total": self.unigram_total, "top": [self.top_token, self.top_count],
            "lam_num": self.lam_num, "lam_den": self.lam_den,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NgramLM:
        """Rebuild a model from ``to_json`` output; raise EngineError when it is malformed."""
        try:
            lm = cls(int(data["order"]), int(data["vocab"]))
            for k, rows in enumerate(data["levels"], start=1):
                table = lm.levels[k]
                for ctx, total, flat in rows:
                    table[tuple(int(x) for x in ctx)] = (
                        [float(total)], {int(flat[i]): float(flat[i + 1])
                                         for i in range(0, len(flat), 2)})
            flat = data["unigram"]
            lm.unigram = {int(flat[i]): float(flat[i + 1]) for i in range(0, len(flat), 2)}
            lm.unigram_total = float(data["unigram_total"])
            lm.top_token, lm.top_count = int(data["top"][0]), float(data["top"][1])
            lm.lam_num = [float(x) for x in data["lam_num"]]
            lm.lam_den = [float(x) for x in data["lam_den"]]
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise EngineError(f"malformed n-gram state: {error}") from None
        if len(lm.lam_num) != lm.order or len(lm.lam_den) != lm.order:
            raise EngineError("malformed n-gram state: mixture weights do not match the order")
        return lm
