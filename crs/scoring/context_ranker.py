"""Rank a catalog's movies from what was said in a conversation: the model behind the ReDial
benchmark (`crs evaluate --dataset redial`).

Each message goes through the chat's language understanding (`crs.language.Understander`):
titles mentioned and whether they were liked, attributes (genres, decades, directors, cast)
wanted or not, with negation. That evidence, the words said and what train dialogues say about
movies become a few features per movie, and the score is log-linear in them (`features @
weights`, a product of experts):

- `popularity`: log(1 + train dialogues that mention it); `year_prior`: log share of train
  mentions going to movies of its year (recent films are asked for more);
- `co_mention`: log(eps + sum over the movies named so far of P(it | named)), from train
  dialogues;
- `movielens`: log(eps + sum over the named movies of its MovieLens item-item similarity, each
  row scaled to its best neighbour), through the links to MovieLens;
- `content`: sum over the named movies of the cosine of their idf-weighted attributes;
- `text_recent`, `text_seeker`: cosine (MiniLM) between the movie's text and the last
  `RECENT_MESSAGES` messages (embedded together), and the mean of the seeker's messages (each
  embedded once: a conversation's next turn embeds only its new message, and a long
  conversation is not cut at the encoder's 256 tokens);
- `similar_requests`: log(eps + votes) for the movies recommended after the
  `REQUEST_NEIGHBOURS` train contexts most like the recent messages;
- `request_profile`: cosine between the recent messages and the movie's request profile: the sum
  of the train requests (recent messages) after which a recommender named it, plus
  `PROFILE_TEXT_WEIGHT` times its own text (a movie never recommended in train is its text);
- `genre`, `decade`: share of the genres / decades asked for that it has; `person`: people asked
  for who made or star in it; `unwanted`: refused attributes it has;
- `named_by_seeker`, `named_by_recommender`, `disliked`: it was named earlier (people come back
  to films already said; a disliked one rarely is the answer); `named_recently`: named in the
  last `RECENT_MESSAGES` messages (what is being talked about now: "what is Ray about?").

The weights are fitted on train dialogues only (`train_context_ranker`) by maximum likelihood of
the movie the recommender named, under softmax(score) over the whole catalog. A train sample's
features leave its own dialogue out of every train count (popularity, co-mentions, similar
requests), so the fit sees what it will see on new dialogues. Fitted weights and the train
requests' embeddings are cached by a fingerprint of the data and this model.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy import sparse

from crs.language.acts import MentionItem
from crs.progress import Progress, report
from crs.types import InformReply

if TYPE_CHECKING:
    from crs.data.redial_dataset import DialogueDataset
    from crs.language.understanding import Understander
    from crs.retrieval.retriever import Retriever

FloatArray = npt.NDArray[np.float64]
Vectors = npt.NDArray[np.float32]
# The features, grouped in the signals the benchmark's ablation removes together.
SIGNALS: Mapping[str, tuple[str, ...]] = {
    "popularity": ("popularity", "year_prior"),
    "co-mentions": ("co_mention",),
    "MovieLens": ("movielens",),
    "content": ("content",),
    "text retriever": ("text_recent", "text_seeker", "similar_requests", "request_profile"),
    "understanding": (
        "genre",
        "decade",
        "person",
        "unwanted",
        "named_by_seeker",
        "named_by_recommender",
        "named_recently",
        "disliked",
    ),
}
FEATURES = tuple(feature for group in SIGNALS.values() for feature in group)
VERSION = 3  # of the features: part of the cache fingerprint (bump when their numbers change)
EPSILON = 1e-3  # floor inside the logs of similarity sums: "no evidence" is not -infinity
RECENT_MESSAGES = 4
CO_SHRINK = 2.0  # pseudo-dialogues in P(movie | named): one shared dialogue is weak evidence
REQUEST_NEIGHBOURS = 50
REQUEST_TEMPERATURE = 0.05
PROFILE_TEXT_WEIGHT = 1.0  # a movie's own text in its request profile, against one train request
ML_PENALTY = 0.8  # exponent on the candidate's audience in the MovieLens cosine (as crs.scoring.similarity)
ML_SHRINK = 10.0  # shared MovieLens users at which a cosine counts half
MESSAGE_CACHE = 20_000  # message embeddings kept (384 floats each: ~30 MB)
FIT_SAMPLES = 2000  # train samples the weights are fitted on (memory: samples x items x features)
L2 = 1e-3
# How a feature that lifted a movie is said to a person ("Why #1?"); the others go unsaid (genres,
# decades and people asked for are said by the chat's own explanation already).
REASONS: Mapping[str, str] = {
    "co_mention": "people who named the films you named often named it too",
    "movielens": "MovieLens viewers who liked the films you named liked it",
    "content": "it shares genres and people with the films you named",
    "text_recent": "its plot matches your words",
    "text_seeker": "its plot matches your words",
    "similar_requests": "recommenders suggested it for requests like yours",
}


@dataclass(frozen=True)
class Evidence:
    """What a conversation has said so far, as the understanding read it."""

    named_by_seeker: tuple[int, ...] = ()
    named_by_recommender: tuple[int, ...] = ()
    disliked: tuple[int, ...] = ()
    named_recently: tuple[int, ...] = ()  # in the last RECENT_MESSAGES messages
    wanted: tuple[int, ...] = ()  # attribute indices
    unwanted: tuple[int, ...] = ()
    recent_text: str = ""  # the last few messages, both speakers
    seeker_messages: tuple[str, ...] = ()  # every message of the seeker

    @property
    def named(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys(self.named_by_seeker + self.named_by_recommender))


@dataclass
class EvidenceBuilder:
    """Reads messages one by one into `Evidence` (a conversation is read once, not per sample)."""

    understander: Understander
    _seeker: dict[int, None] = field(default_factory=dict)
    _recommender: dict[int, None] = field(default_factory=dict)
    _disliked: dict[int, None] = field(default_factory=dict)
    _wanted: dict[int, None] = field(default_factory=dict)
    _unwanted: dict[int, None] = field(default_factory=dict)
    _messages: list[tuple[str, bool]] = field(default_factory=list)
    _named_in: list[tuple[int, ...]] = field(default_factory=list)  # per message

    def add(self, text: str, seeker: bool) -> None:
        named: dict[int, None] = {}
        for act in self.understander.understand(text).acts:
            if isinstance(act, MentionItem):
                named.setdefault(act.item, None)
                (self._seeker if seeker else self._recommender).setdefault(act.item, None)
                if seeker and not act.liked:
                    self._disliked.setdefault(act.item, None)
            elif isinstance(act, InformReply) and seeker:
                for attribute in act.attributes:
                    self._wanted.setdefault(attribute, None)
                for attribute in act.unwanted:
                    self._unwanted.setdefault(attribute, None)
        self._messages.append((text, seeker))
        self._named_in.append(tuple(named))

    def evidence(self) -> Evidence:
        return Evidence(
            named_by_seeker=tuple(self._seeker),
            named_by_recommender=tuple(self._recommender),
            disliked=tuple(self._disliked),
            named_recently=tuple(dict.fromkeys(i for n in self._named_in[-RECENT_MESSAGES:] for i in n)),
            wanted=tuple(a for a in self._wanted if a not in self._unwanted),
            unwanted=tuple(self._unwanted),
            recent_text=" ".join(text for text, _ in self._messages[-RECENT_MESSAGES:]).strip(),
            seeker_messages=tuple(text for text, seeker in self._messages if seeker and text.strip()),
        )


def read_contexts(
    understander: Understander, contexts: Sequence[tuple[str, Sequence[tuple[str, bool]]]]
) -> list[Evidence]:
    """Evidence for each (conversation id, context messages (text, by the seeker)) in order,
    reading each conversation once: its samples come in message order and share prefixes."""
    out: list[Evidence] = []
    builder: EvidenceBuilder | None = None
    conversation: str | None = None
    read = 0
    for conversation_id, messages in contexts:
        if builder is None or conversation_id != conversation or len(messages) < read:
            builder, conversation, read = EvidenceBuilder(understander), conversation_id, 0
        for text, seeker in messages[read:]:
            builder.add(text, seeker)
        read = len(messages)
        out.append(builder.evidence())
    return out


@dataclass(frozen=True)
class Query:
    """The embedded words of one context (None: nothing said, or no retriever)."""

    recent: Vectors | None
    seeker: Vectors | None


def _binary_rows(rows: Sequence[Iterable[int]], n_columns: int) -> sparse.csr_matrix:
    sets = [sorted(set(items)) for items in rows]
    data_rows = [r for r, items in enumerate(sets) for _ in items]
    cols = [i for items in sets for i in items]
    return sparse.csr_matrix(
        (np.ones(len(cols)), (data_rows, cols)), shape=(max(1, len(rows)), n_columns), dtype=np.float64
    )


def _unit(vector: Vectors) -> Vectors | None:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else None


def _unit_rows(matrix: FloatArray) -> Vectors:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(matrix / norms, dtype=np.float32)


def _normalised_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix)


class ContextRanker:
    """Scores every movie of a `DialogueDataset` from a conversation's evidence."""

    def __init__(
        self,
        dataset: DialogueDataset,
        understander: Understander,
        retriever: Retriever | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        from crs.language.titles import title_year

        self.dataset = dataset
        self.understander = understander
        self.retriever = retriever
        self.weights = dict(weights or {})
        catalog = dataset.catalog
        n = catalog.n_items

        mentions = _binary_rows([tuple(items) for items in dataset.split("train").by_user.values()], n)
        self.mention_count = np.asarray(mentions.sum(axis=0)).ravel()
        self.co_mentions = sparse.csr_matrix(mentions.T @ mentions)
        self.co_mentions.setdiag(0.0)
        self.co_mentions.eliminate_zeros()
        self.years = np.array([title_year(item.title) or 0 for item in catalog.items], dtype=np.int64)
        self._movies_per_year = np.bincount(self.years, minlength=int(self.years.max()) + 1).astype(
            np.float64
        )

        self.ml_similarity = self._movielens_similarity()
        self._item_attributes = _binary_rows(
            [item.attributes for item in catalog.items], catalog.n_attributes
        )
        frequency = np.asarray(self._item_attributes.sum(axis=0)).ravel()
        idf = np.log((1 + n) / (1 + frequency))
        self._content = _normalised_rows(sparse.csr_matrix(self._item_attributes @ sparse.diags(idf)))
        self._groups = [a.group for a in catalog.attributes]

        self._request_vectors: Vectors = np.zeros((0, 1), dtype=np.float32)
        self._request_targets = np.zeros(0, dtype=np.int64)
        self._request_conversations: npt.NDArray[np.str_] = np.zeros(0, dtype=str)
        self._profile_sums: FloatArray = np.zeros((0, 1))
        self._profiles: Vectors = np.zeros((0, 1), dtype=np.float32)
        self._message_vectors: dict[str, Vectors] = {}
        self._cache_lock = threading.Lock()  # the chat's sessions share the ranker

    def _movielens_similarity(self) -> sparse.csr_matrix:
        """Catalog item x item similarity from MovieLens likes of the linked movies (all of them:
        MovieLens users are not ReDial's, so none of its data is held out here)."""
        n = self.dataset.catalog.n_items
        movielens, to_ml = self.dataset.movielens, self.dataset.movielens_items
        if movielens is None or not to_ml:
            return sparse.csr_matrix((n, n))
        back = {m: r for r, m in to_ml.items()}
        liked: dict[object, set[int]] = {}
        for split in movielens.splits.values():
            for user, items in split.by_user.items():
                liked.setdefault(user, set()).update(back[m] for m in items if m in back)
        seen = _binary_rows(list(liked.values()), n)  # users x catalog movies
        audience = np.maximum(np.asarray(seen.sum(axis=0)).ravel(), 1.0)
        shared = sparse.csr_matrix(seen.T @ seen).tocoo()
        keep = shared.row != shared.col
        row, col, count = shared.row[keep], shared.col[keep], shared.data[keep]
        cosine = count / (audience[row] ** (1 - ML_PENALTY) * audience[col] ** ML_PENALTY)
        values = cosine * count / (count + ML_SHRINK)
        similarity = sparse.csr_matrix((values, (row, col)), shape=(n, n))
        best = similarity.max(axis=1).toarray().ravel()
        best[best == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / best) @ similarity)  # each row's best neighbour = 1

    # --- reading and embedding ------------------------------------------------------------------

    def read(self, messages: Iterable[tuple[str, bool]]) -> Evidence:
        """Evidence of (text, written by the seeker) messages."""
        builder = EvidenceBuilder(self.understander)
        for text, seeker in messages:
            builder.add(text, seeker)
        return builder.evidence()

    def embed(self, evidences: Sequence[Evidence], batch: int = 64) -> list[Query]:
        """The queries of many contexts (batched: much faster than one by one). A seeker message
        seen before (an earlier turn, an earlier sample of the dialogue) is not embedded again."""
        if self.retriever is None:
            return [Query(None, None) for _ in evidences]
        with self._cache_lock:
            new = [m for m in dict.fromkeys(m for e in evidences for m in e.seeker_messages)]
            new = [m for m in new if m not in self._message_vectors]
        texts = [e.recent_text for e in evidences if e.recent_text] + new
        vectors = self._encode(texts, batch)
        recent = iter(vectors[: len(texts) - len(new)])
        with self._cache_lock:
            if len(self._message_vectors) + len(new) > MESSAGE_CACHE:
                self._message_vectors.clear()  # crude but bounded; the next turns refill it
            self._message_vectors.update(zip(new, vectors[len(texts) - len(new) :], strict=True))
            seeker = [
                _unit(np.mean([self._message_vectors[m] for m in e.seeker_messages], axis=0))
                if e.seeker_messages
                else None
                for e in evidences
            ]
        return [
            Query(next(recent) if e.recent_text else None, vector)
            for e, vector in zip(evidences, seeker, strict=True)
        ]

    def forget_messages(self) -> None:
        """Empty the message embeddings kept (a timing that must embed as a fresh chat does)."""
        with self._cache_lock:
            self._message_vectors.clear()

    def _encode(self, texts: Sequence[str], batch: int) -> Vectors:
        assert self.retriever is not None
        if not texts:
            return np.zeros((0, self.retriever.item_vectors.shape[1]), dtype=np.float32)
        encode = self.retriever.encoder.encode
        return np.concatenate([encode(texts[i : i + batch]) for i in range(0, len(texts), batch)])

    def set_requests(self, vectors: Vectors, targets: Sequence[int], conversations: Sequence[str]) -> None:
        """Train requests (the recent messages before each recommendation, embedded) and the
        movie the recommender then named: "what recommenders suggest for such requests"."""
        self._request_vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._request_targets = np.asarray(targets, dtype=np.int64)
        self._request_conversations = np.asarray(conversations, dtype=str)
        if self.retriever is None:
            return
        sums = PROFILE_TEXT_WEIGHT * self.retriever.item_vectors.astype(np.float64)
        np.add.at(sums, self._request_targets, self._request_vectors.astype(np.float64))
        self._profile_sums = sums
        self._profiles = _unit_rows(sums)

    def _profile_scores(self, query: Vectors, conversation: str | None) -> FloatArray:
        """Cosine of `query` with each movie's request profile, the requests of `conversation`
        (a train sample's own dialogue) left out."""
        from crs.retrieval.retriever import cosine_scores

        scores = cosine_scores(self._profiles, query)
        own = self._request_conversations == conversation if conversation is not None else None
        if own is not None and own.any():
            rows, where = np.unique(self._request_targets[own], return_inverse=True)
            sums = self._profile_sums[rows].copy()
            np.subtract.at(sums, where, self._request_vectors[own].astype(np.float64))
            scores[rows] = cosine_scores(_unit_rows(sums), query)
        return scores

    # --- features -------------------------------------------------------------------------------

    def features(
        self,
        evidence: Evidence,
        query: Query | None = None,
        leave_out: Sequence[int] = (),
        conversation: str | None = None,
    ) -> npt.NDArray[np.float32]:
        """(n_items, len(FEATURES)). `query` None: embedded here. `leave_out` / `conversation`: a
        train sample's dialogue, whose own counts must not count (see the module docstring)."""
        n = self.dataset.catalog.n_items
        out = np.zeros((n, len(FEATURES)), dtype=np.float32)
        column = {name: k for k, name in enumerate(FEATURES)}
        own = np.zeros(n)
        if leave_out:
            own[list(leave_out)] = 1.0
        counts = np.maximum(self.mention_count - own, 0.0)
        out[:, column["popularity"]] = np.log1p(counts)
        per_year = np.bincount(self.years, weights=counts, minlength=len(self._movies_per_year))
        out[:, column["year_prior"]] = np.log(
            (per_year[self.years] + 1.0) / (self._movies_per_year[self.years] + 1.0)
        )

        named = list(evidence.named)
        conditional = np.zeros(n)
        movielens = np.zeros(n)
        if named:
            for row, item in zip(self.co_mentions[named].toarray(), named, strict=True):
                if own[item]:
                    row = np.maximum(row - own, 0.0)
                row[item] = 0.0
                conditional += row / (counts[item] + CO_SHRINK)
            movielens = np.asarray(self.ml_similarity[named].sum(axis=0)).ravel()
            content = (self._content[named] @ self._content.T).toarray()
            content[np.arange(len(named)), named] = 0.0
            out[:, column["content"]] = content.sum(axis=0)
        out[:, column["co_mention"]] = np.log(EPSILON + conditional)
        out[:, column["movielens"]] = np.log(EPSILON + movielens)

        query = query if query is not None else self.embed([evidence])[0]
        out[:, column["similar_requests"]] = np.log(EPSILON)
        if self.retriever is not None:
            from crs.retrieval.retriever import cosine_scores  # einsum: see why there

            items = self.retriever.item_vectors
            if query.seeker is not None:
                out[:, column["text_seeker"]] = cosine_scores(items, query.seeker)
            if query.recent is not None:
                out[:, column["text_recent"]] = cosine_scores(items, query.recent)
                out[:, column["similar_requests"]] = np.log(
                    EPSILON + self._request_votes(query.recent, conversation)
                )
                if len(self._request_targets):
                    out[:, column["request_profile"]] = self._profile_scores(query.recent, conversation)

        for group in ("genre", "decade"):
            asked = [a for a in evidence.wanted if self._groups[a] == group]
            if asked:
                held = np.asarray(self._item_attributes[:, asked].sum(axis=1)).ravel()
                out[:, column[group]] = held / len(asked)
        people = [a for a in evidence.wanted if self._groups[a] in ("director", "actor")]
        if people:
            out[:, column["person"]] = np.asarray(self._item_attributes[:, people].sum(axis=1)).ravel()
        if evidence.unwanted:
            unwanted = list(evidence.unwanted)
            out[:, column["unwanted"]] = np.asarray(self._item_attributes[:, unwanted].sum(axis=1)).ravel()
        out[list(evidence.named_by_seeker), column["named_by_seeker"]] = 1.0
        out[list(evidence.named_by_recommender), column["named_by_recommender"]] = 1.0
        out[list(evidence.disliked), column["disliked"]] = 1.0
        out[list(evidence.named_recently), column["named_recently"]] = 1.0
        return out

    def _request_votes(self, query: Vectors, conversation: str | None) -> FloatArray:
        votes = np.zeros(self.dataset.catalog.n_items)
        if not len(self._request_targets):
            return votes
        from crs.retrieval.retriever import cosine_scores

        similar = cosine_scores(self._request_vectors, query)
        if conversation is not None:
            similar[self._request_conversations == conversation] = -np.inf
        k = min(REQUEST_NEIGHBOURS, len(similar))
        top = np.argpartition(-similar, k - 1)[:k]
        top = top[np.isfinite(similar[top])]
        np.add.at(votes, self._request_targets[top], np.exp((similar[top] - 1.0) / REQUEST_TEMPERATURE))
        return votes

    # --- scores ---------------------------------------------------------------------------------

    def weight_vector(self, weights: Mapping[str, float] | None = None) -> npt.NDArray[np.float32]:
        chosen = self.weights if weights is None else weights
        return np.array([chosen.get(name, 0.0) for name in FEATURES], dtype=np.float32)

    def scores(self, evidence: Evidence, query: Query | None = None) -> FloatArray:
        return np.asarray(self.features(evidence, query) @ self.weight_vector(), dtype=np.float64)

    def contributions(self, features: npt.NDArray[np.float32], item: int) -> dict[str, float]:
        """Each feature's part in `item`'s score above the catalog's average (for "why")."""
        centred = features[item] - features.mean(axis=0)
        return {name: float(centred[k] * self.weights.get(name, 0.0)) for k, name in enumerate(FEATURES)}

    def reasons(self, features: npt.NDArray[np.float32], item: int, k: int = 2) -> list[str]:
        """The `k` features that lift `item` most, in words (`REASONS`); fewer when fewer lift it."""
        lifting = [(value, name) for name, value in self.contributions(features, item).items() if value > 0]
        said = dict.fromkeys(REASONS[name] for _, name in sorted(lifting, reverse=True) if name in REASONS)
        return list(said)[:k]


def rank_of(scores: FloatArray, target: int, removed: Sequence[int] = ()) -> int:
    """1-based rank of `target` in a stable sort by score, descending (ties: lower index first);
    `removed` items are out of the ranking."""
    mine = scores[target]
    above = scores > mine
    tied = scores == mine
    tied[target:] = False
    if removed:
        gone = np.zeros(len(scores), dtype=bool)
        gone[list(removed)] = True
        above &= ~gone
        tied &= ~gone
    return 1 + int(above.sum()) + int(tied.sum())


def top_items(scores: FloatArray, k: int) -> list[int]:
    """The k best items in the same order as `rank_of`."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    return [int(i) for i in order[:k]]


def fit_weights(
    feature_sets: Sequence[npt.NDArray[np.float32]],
    targets: Sequence[int],
    use: Sequence[str] = FEATURES,
    l2: float = L2,
) -> dict[str, float]:
    """Maximum-likelihood weights of softmax(features @ w) for the targets, with a small L2 term;
    features not in `use` get weight 0."""
    from scipy.optimize import minimize

    columns = [FEATURES.index(name) for name in use]
    stacked = np.stack([features[:, columns] for features in feature_sets])  # samples x items x used
    flat = stacked.reshape(-1, len(columns))
    mean = flat.mean(axis=0)
    scale = flat.std(axis=0)
    scale[scale == 0] = 1.0
    stacked -= mean  # standardised in place so that one L2 strength suits all; undone below
    stacked /= scale
    chosen = stacked[np.arange(len(targets)), np.asarray(targets)]

    def loss(w: FloatArray) -> tuple[float, FloatArray]:
        logits = stacked @ w.astype(np.float32)
        top = logits.max(axis=1, keepdims=True)
        exp = np.exp(logits - top)
        total = exp.sum(axis=1, keepdims=True)
        log_z = (np.log(total) + top).ravel()
        expected = np.einsum("si,sif->sf", exp / total, stacked)
        value = float(np.mean(log_z - chosen @ w)) + l2 * float(w @ w)
        gradient = np.mean(expected - chosen, axis=0).astype(np.float64) + 2 * l2 * w
        return value, gradient

    result = minimize(loss, np.zeros(len(columns)), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    weights = dict.fromkeys(FEATURES, 0.0)
    for k, name in enumerate(use):
        weights[name] = float(result.x[k] / scale[k])
    return weights


@dataclass(frozen=True)
class TrainingSet:
    """Train samples with what the fit needs: their features come from `features(k)`."""

    ranker: ContextRanker
    evidences: list[Evidence]
    queries: list[Query]
    targets: list[int]
    conversations: list[str]
    dialogue_items: Mapping[str, tuple[int, ...]]

    def features(self, k: int) -> npt.NDArray[np.float32]:
        conversation = self.conversations[k]
        return self.ranker.features(
            self.evidences[k], self.queries[k], self.dialogue_items[conversation], conversation
        )


def training_set(ranker: ContextRanker, progress: Progress | None = None) -> TrainingSet:
    """Read and embed every train sample, and give the ranker the train requests."""
    from crs.evaluation.redial_protocol import extract_all

    dataset = ranker.dataset
    samples = extract_all(dataset.dialogues_of("train"), dataset.catalog)
    report(progress, "reading train dialogues", 0, 1)
    evidences = read_contexts(
        ranker.understander,
        [(s.conversation_id, [(m.text, m.seeker) for m in s.context]) for s in samples],
    )
    report(progress, "reading train dialogues", 1, 1)
    queries: list[Query] = []
    step = 256
    for start in range(0, len(evidences), step):
        report(progress, "embedding train requests", start, len(evidences), "sample")
        queries += ranker.embed(evidences[start : start + step])
    report(progress, "embedding train requests", len(evidences), len(evidences), "sample")
    targets = [s.target for s in samples]
    conversations = [s.conversation_id for s in samples]
    if ranker.retriever is not None:
        dim = ranker.retriever.item_vectors.shape[1]
        recent = np.stack([q.recent if q.recent is not None else np.zeros(dim, np.float32) for q in queries])
        ranker.set_requests(recent, targets, conversations)
    return TrainingSet(ranker, evidences, queries, targets, conversations, dataset.split("train").by_user)  # type: ignore[arg-type]


def fit_on(
    training: TrainingSet,
    use: Sequence[str] = FEATURES,
    limit: int = FIT_SAMPLES,
    seed: int = 0,
    progress: Progress | None = None,
    cache: dict[int, npt.NDArray[np.float32]] | None = None,
) -> dict[str, float]:
    """Weights fitted on (a seeded subset of `limit`) train samples."""
    picked = sorted(
        random.Random(seed).sample(range(len(training.targets)), min(limit, len(training.targets)))
    )
    feature_sets = []
    for done, k in enumerate(picked):
        if done % 100 == 0:
            report(progress, "train features", done, len(picked), "sample")
        features = cache.get(k) if cache is not None else None
        if features is None:
            features = training.features(k)
            if cache is not None:
                cache[k] = features
        feature_sets.append(features)  # fit_weights stacks them into a new array
    report(progress, "train features", len(picked), len(picked), "sample")
    report(progress, "fitting weights", 0, 1)
    weights = fit_weights(feature_sets, [training.targets[k] for k in picked], use)
    report(progress, "fitting weights", 1, 1)
    return weights


def fingerprint(dataset: DialogueDataset, retriever: Retriever | None) -> str:
    digest = hashlib.sha256()
    digest.update(
        json.dumps([VERSION, FEATURES, FIT_SAMPLES, L2, RECENT_MESSAGES, PROFILE_TEXT_WEIGHT]).encode()
    )
    digest.update((retriever.encoder.name if retriever is not None else "no retriever").encode())
    for items in dataset.split("train").by_user.values():
        digest.update(repr(tuple(items)).encode())
    for item in dataset.catalog.items:
        digest.update(f"{item.id}|{item.title}|{item.attributes}".encode())
    return digest.hexdigest()[:16]


def open_context_ranker(
    dataset: DialogueDataset,
    cache_dir: Path | None = None,
    use_retriever: bool = True,
    progress: Progress | None = None,
    retriever: Retriever | None = None,
) -> ContextRanker:
    """The fitted ranker of `dataset`: weights and train requests from the cache when they match
    the data and this model, otherwise fitted on train (a few minutes) and cached. `retriever`:
    the catalog's retriever when the caller has it open already (the chat)."""
    from crs.artifacts import ArtifactError, load_arrays, save_arrays
    from crs.language.understanding import Understander
    from crs.scoring import default_cache_dir

    if not use_retriever:
        retriever = None
    elif retriever is None:
        from crs.retrieval.retriever import open_retriever

        retriever = open_retriever(dataset.catalog, dataset.name, cache_dir, progress=progress)
    understander = Understander(dataset.catalog, popularity=dataset.popularity)
    ranker = ContextRanker(dataset, understander, retriever)
    key = fingerprint(dataset, retriever)
    path = (cache_dir or default_cache_dir()) / f"{dataset.name}-context-ranker-{key}.npz"
    try:
        meta, arrays = load_arrays(path, "context ranker")
        ranker.weights = {name: float(meta["weights"][name]) for name in FEATURES}
        if retriever is not None:
            ranker.set_requests(
                arrays["requests"], arrays["targets"].tolist(), [str(c) for c in meta["conversations"]]
            )
        return ranker
    except (ArtifactError, KeyError, TypeError, ValueError):
        pass  # absent, corrupt or stale: fitted again below
    training = training_set(ranker, progress)
    ranker.weights = fit_on(training, progress=progress)
    save_arrays(
        path,
        {"weights": ranker.weights, "conversations": list(map(str, ranker._request_conversations))},
        {"requests": ranker._request_vectors, "targets": ranker._request_targets},
    )
    return ranker
