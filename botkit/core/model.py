"""The intent model: TF-IDF features plus offline embeddings, a linear classifier, an out-of-scope rule.

Why this recipe: word and character n-grams catch both vocabulary and typos, static word
embeddings (``core.embeddings``) add meaning the n-grams miss, a linear model trains in seconds
on CPU and predicts in about a millisecond, and its confidence, blended with the distance to
the nearest intent in the embedding space (``core.oos``), becomes a fallback decision through
a threshold tuned on the validation split. ``recipe="tfidf"`` is the earlier TF-IDF-only model.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from botkit.core.data import OOS, Dataset
from botkit.core.features import RECIPES, fold_umlauts, handoff_variants, polite_variants, stack
from botkit.core.oos import auroc, centroids, nearest_similarity, tune_blend, tune_threshold

__all__ = ["RECIPE_BY_LANGUAGE", "IntentModel", "Prediction", "TrainParams", "fit_temperature",
           "polite_variants", "resolve_params", "tune_threshold"]

# The recipe "auto" picks per data-set language (measured in README "Recipes": the English
# embeddings help English; for German see the table).
RECIPE_BY_LANGUAGE = {"en": "tfidf+emb", "de": "tfidf"}


@dataclass(frozen=True)
class TrainParams:
    """Training knobs; recorded with every model so a run can be repeated exactly."""

    seed: int = 42
    # "tfidf", "emb" (embeddings only), "tfidf+emb", or "auto": by the data set's language.
    recipe: str = "auto"
    # Weight of the (unit-length) embedding block next to the two unit-length TF-IDF blocks.
    emb_weight: float = 1.0
    # Leading embedding dimensions kept (wordllama's are Matryoshka-trained: a prefix is itself an
    # embedding); fewer make training on large data sets cheaper (dense columns cost per row).
    emb_dim: int = 256
    # "confidence": the classifier's confidence alone; "distance": blended with the cosine
    # similarity to the nearest intent centroid in the embedding space (weight tuned on val).
    oos_score: str = "distance"
    # Fold umlauts and ß (ä -> ae, ß -> ss) before the TF-IDF features see the text.
    fold: bool = True
    # "svm": LinearSVC with a softmax confidence whose temperature is fitted on val (fast: a
    # CLINC150-sized set trains in about 10 s on one core); "logreg": LogisticRegression
    # probabilities (about 4x slower to train, similar accuracy).
    classifier: str = "svm"
    C: float = 0.5
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)
    min_df: int = 1
    max_iter: int = 300
    # Share of in-scope training texts also learnt with a polite suffix (", thanks", " please"):
    # without it, "where is my parcel, thanks" reads as the `thanks` intent half of the time.
    polite_augment: float = 0.3
    # Share of in-scope training texts also learnt with a request for a person appended, labelled
    # human_handoff (only when the data has that intent): see features.handoff_variants.
    handoff_augment: float = 0.2
    # Threshold tuning: give up at most this much validation in-scope accuracy for OOS recall.
    max_in_scope_drop: float = 0.0075

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrainParams:
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in cls.__dataclass_fields__}
        # Models stored before recipes existed were TF-IDF only, confidence only, unfolded.
        if "recipe" not in known:
            known.update(recipe="tfidf", oos_score="confidence", fold=False, handoff_augment=0.0)
        return cls(**known)

    @property
    def uses_tfidf(self) -> bool:
        return self.recipe in ("tfidf", "tfidf+emb")

    @property
    def uses_embeddings(self) -> bool:
        return self.recipe in ("emb", "tfidf+emb")


@dataclass(frozen=True)
class Prediction:
    """One answer of the classifier; ``intent`` is ``oos`` whenever ``fallback`` is true."""

    intent: str
    confidence: float
    fallback: bool
    top_intent: str


def resolve_params(p: TrainParams, ds: Dataset) -> TrainParams:
    """Turn ``recipe="auto"`` into the recipe for the data set's language; check the choices."""
    from dataclasses import replace

    recipe = RECIPE_BY_LANGUAGE.get(ds.language, "tfidf") if p.recipe == "auto" else p.recipe
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}: expected one of {', '.join(RECIPES)} or 'auto'")
    if p.oos_score not in ("confidence", "distance"):
        raise ValueError(f"unknown oos_score {p.oos_score!r}: expected 'confidence' or 'distance'")
    return replace(p, recipe=recipe)


def _pipeline(p: TrainParams) -> Pipeline:
    features = FeatureUnion([
        ("word", TfidfVectorizer(ngram_range=p.word_ngrams, sublinear_tf=True, min_df=p.min_df,
                                 lowercase=True, strip_accents="unicode")),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=p.char_ngrams, sublinear_tf=True,
                                 min_df=p.min_df, lowercase=True, strip_accents="unicode")),
    ])
    if p.classifier == "svm":
        clf = LinearSVC(C=p.C, max_iter=p.max_iter * 10, random_state=p.seed)
    elif p.classifier == "logreg":
        clf = LogisticRegression(C=p.C, max_iter=p.max_iter, random_state=p.seed)
    else:
        raise ValueError(f"unknown classifier {p.classifier!r}: expected 'svm' or 'logreg'")
    return Pipeline([("features", features), ("clf", clf)])


def _truncate(emb: np.ndarray, dim: int) -> np.ndarray:
    if dim >= emb.shape[1]:
        return emb
    e = emb[:, :dim]
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), np.float32(1e-9))


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    if scores.ndim == 1:  # two classes: LinearSVC returns one margin, for the second class
        scores = np.column_stack([-scores, scores])
    z = scores * temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, y_idx: np.ndarray) -> float:
    """The softmax temperature that minimises validation log-loss: SVM margins become probabilities."""
    grid = np.geomspace(0.5, 50.0, 60)
    rows = np.arange(len(y_idx))
    losses = [-np.log(_softmax(scores, t)[rows, y_idx] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(losses))])


@dataclass
class IntentModel:
    """A trained bot brain: classifier, fallback rule and the replies it chooses from.

    ``pipeline`` is plain scikit-learn (TF-IDF union + linear classifier) so the artefact loads
    with no trusted code; with embeddings the classifier was fitted on the TF-IDF block with the
    embedding block beside it, which this class builds (``_features``). ``centroids`` (unit-length
    intent means in the embedding space) and ``alpha`` make the out-of-scope score.
    """

    pipeline: Pipeline
    threshold: float
    replies: dict[str, list[str]]
    fallback_replies: list[str]
    params: TrainParams = field(default_factory=TrainParams)
    temperature: float = 1.0
    train_seconds: float = 0.0
    centroids: np.ndarray | None = None
    alpha: float = 0.0
    embeddings: dict | None = None  # reference to the installed weights: package, file, sha256
    language: str = "en"

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.pipeline.classes_]

    @property
    def intents(self) -> list[str]:
        return [c for c in self.classes if c != OOS]

    # ---------------------------------------------------------------------------- training

    @classmethod
    def train(cls, ds: Dataset, params: TrainParams | None = None) -> IntentModel:
        """Fit on ``train``, tune the fallback on ``val``; deterministic for a seed."""
        p = resolve_params(params or TrainParams(), ds)
        extra = [*polite_variants(ds.train, p.polite_augment, p.seed, ds.language),
                 *handoff_variants(ds.train, p.handoff_augment, p.seed)]
        texts, labels = (list(x) for x in zip(*ds.train, *extra, strict=True))
        start = time.perf_counter()
        pipe = _pipeline(p)
        features, clf = pipe.named_steps["features"], pipe.named_steps["clf"]
        tfidf = features.fit_transform(cls._prepare(p, texts)) if p.uses_tfidf else None
        emb_ref, emb = None, None
        if p.uses_embeddings:
            from botkit.core.embeddings import embedder

            e = embedder()
            emb_ref, emb = e.reference(), _truncate(e.transform(texts), p.emb_dim)
        if not p.uses_tfidf:  # the union still gets fitted so the stored pipeline has one shape
            features.fit(cls._prepare(p, texts[:50]))
        clf.fit(stack(tfidf, emb, p.emb_weight), labels)
        model = cls(pipe, 0.0, {i: ds.reply_variants(i) for i in ds.intents}, list(ds.fallback_replies), p,
                    embeddings=emb_ref, language=ds.language)
        if emb is not None and p.oos_score == "distance":
            model.centroids = centroids(emb, np.asarray(labels), model.classes, OOS)
        if ds.val:
            model._tune(ds.val)
        model.train_seconds = time.perf_counter() - start
        return model

    def _tune(self, val: Sequence[tuple[str, str]]) -> None:
        vt, vy = [t for t, _ in val], np.asarray([y for _, y in val])
        raw, emb = self._raw_scores(vt)
        if self.params.classifier == "svm":
            index = {c: i for i, c in enumerate(self.classes)}
            known = np.array([v in index for v in vy])
            y_idx = np.array([index.get(v, 0) for v in vy])
            self.temperature = fit_temperature(raw[known], y_idx[known])
        top, conf, sim = self._top_parts(raw, emb)
        correct, is_oos, pred_oos = top == vy, vy == OOS, top == OOS
        if sim is None:
            self.threshold = tune_threshold(conf, correct, is_oos, pred_oos, self.params.max_in_scope_drop)
        else:
            self.alpha, self.threshold = tune_blend(conf, sim, correct, is_oos, pred_oos,
                                                    self.params.max_in_scope_drop)

    # ---------------------------------------------------------------------------- prediction

    @staticmethod
    def _prepare(p: TrainParams, texts: Sequence[str]) -> list[str]:
        return [fold_umlauts(t) for t in texts] if p.fold else list(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray | None:
        if not self.params.uses_embeddings:
            return None
        from botkit.core.embeddings import embedder

        emb = embedder(expected_sha256=(self.embeddings or {}).get("sha256")).transform(list(texts))
        return _truncate(emb, self.params.emb_dim)

    def _raw_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """Classifier scores (margins or probabilities) and the embeddings they used."""
        p = self.params
        features, clf = self.pipeline.named_steps["features"], self.pipeline.named_steps["clf"]
        tfidf = features.transform(self._prepare(p, texts)) if p.uses_tfidf else None
        emb = self._embed(texts)
        if p.classifier != "svm":
            return clf.predict_proba(stack(tfidf, emb, p.emb_weight)), emb
        # The margins block by block: stacking a dense block onto a sparse row costs more than
        # the products (measured ~0.5 ms per single text).
        w_tfidf, w_emb = self._weights(0 if tfidf is None else tfidf.shape[1])
        raw = np.broadcast_to(clf.intercept_, (len(texts), len(clf.intercept_))).astype(np.float64)
        if tfidf is not None:
            raw = raw + np.asarray(tfidf @ w_tfidf)
        if emb is not None:
            raw = raw + (emb * np.float32(p.emb_weight)) @ w_emb
        return (raw[:, 0] if raw.shape[1] == 1 else raw), emb

    def _weights(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The classifier's weights split into the TF-IDF and embedding blocks, contiguous, made once:
        a sliced view makes every product copy the whole matrix (~10 ms under load)."""
        cached = self.__dict__.get("_split_weights")
        if cached is None or cached[0] is not self.pipeline.named_steps["clf"].coef_:
            coef = self.pipeline.named_steps["clf"].coef_
            cached = (coef, np.ascontiguousarray(coef[:, :n].T), np.ascontiguousarray(coef[:, n:].T, np.float32))
            self.__dict__["_split_weights"] = cached
        return cached[1], cached[2]

    def _top_parts(self, raw: np.ndarray, emb: np.ndarray | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        proba = _softmax(raw, self.temperature) if self.params.classifier == "svm" else raw
        idx = proba.argmax(axis=1)
        sim = None
        if emb is not None and self.centroids is not None:
            sim = nearest_similarity(emb, self.centroids)
        return self.pipeline.classes_[idx], proba[np.arange(len(idx)), idx], sim

    def _top(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Top label and the score the fallback threshold applies to."""
        top, conf, sim = self._top_parts(*self._raw_scores(texts))
        return top, self._blend(conf, sim)

    def _blend(self, conf: np.ndarray, sim: np.ndarray | None) -> np.ndarray:
        return conf if sim is None else (1 - self.alpha) * conf + self.alpha * sim

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """The classifier's raw output per class: SVM margins, or LogisticRegression probabilities."""
        return self._raw_scores(list(texts))[0]

    def in_scope_score(self, texts: Sequence[str]) -> np.ndarray:
        """The score the fallback threshold compares with (higher: more surely in scope)."""
        return self._top(texts)[1]

    def oos_auroc(self, examples: Sequence[tuple[str, str]]) -> float | None:
        """How well the in-scope score ranks in-scope texts above out-of-scope ones (1.0 is perfect)."""
        texts = [t for t, _ in examples]
        if not texts:
            return None
        top, score = self._top(texts)
        # A text the classifier puts in the `oos` class counts as scoring lowest.
        score = np.where(top == OOS, -1.0, score)
        return auroc(score, np.asarray([y == OOS for _, y in examples]))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Batch prediction: one vectorised call, which is what makes adaptive batching pay.

        ``confidence`` is the score the fallback decision uses (the classifier's confidence,
        blended with the embedding similarity when the model has centroids).
        """
        if not texts:
            return []
        top, conf = self._top(texts)
        out = []
        for label, c in zip(top.tolist(), conf.tolist(), strict=True):
            fb = label == OOS or c < self.threshold
            out.append(Prediction(OOS if fb else label, round(float(c), 4), fb, label))
        return out

    def predict_one(self, text: str) -> Prediction:
        return self.predict([text])[0]

    def reply(self, prediction: Prediction, key: str = "") -> str:
        """Pick a reply variant; the same key (a request id) always gets the same variant."""
        options = self.fallback_replies if prediction.fallback else self.replies.get(prediction.intent, [])
        if not options:
            options = self.fallback_replies
        return options[zlib.crc32(key.encode()) % len(options)]

    # ---------------------------------------------------------------------------- storage

    def state(self) -> dict:
        """Everything but the pipeline, as JSON-safe data (the registry's ``bot.json``)."""
        return {
            "threshold": self.threshold,
            "temperature": self.temperature,
            "replies": self.replies,
            "fallback_replies": self.fallback_replies,
            "params": self.params.to_dict(),
            "train_seconds": self.train_seconds,
            "alpha": self.alpha,
            "centroids": None if self.centroids is None else np.round(self.centroids, 6).tolist(),
            "embeddings": self.embeddings,
            "language": self.language,
        }

    @classmethod
    def from_state(cls, pipeline: Pipeline, bot: dict) -> IntentModel:
        """Rebuild from ``state()``; a model that needs embeddings checks the installed weights now."""
        cents = bot.get("centroids")
        model = cls(pipeline, float(bot["threshold"]), bot["replies"], bot["fallback_replies"],
                    TrainParams.from_dict(bot["params"]), float(bot.get("temperature", 1.0)),
                    float(bot.get("train_seconds", 0.0)),
                    None if cents is None else np.asarray(cents, dtype=np.float32),
                    float(bot.get("alpha", 0.0)), bot.get("embeddings"), bot.get("language", "en"))
        if model.params.uses_embeddings:
            model._embed(["warm up"])  # loads the weights once and fails here, not on the first request
        return model
