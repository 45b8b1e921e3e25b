"""The ai-inference queue: suggests a category and a priority for a new ticket from its text.

The model is a TF-IDF + logistic regression pipeline (scikit-learn) trained at first use from
``data/models/ticket_triage.csv``, shipped with the project: nothing is downloaded, and the
training is deterministic (fixed data order, fixed solver seed), so every process suggests alike.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bullmq import Job, UnrecoverableError

from protocol_lab.domain import DATA_DIR
from service.state import Resources
from service.store.notifications import save_suggestion
from service.store.tickets import get_ticket

__all__ = [
    "MODEL_NAME",
    "TRAINING_DATA",
    "Suggestion",
    "TriageModel",
    "prepare_model",
    "process_ai_inference",
]

log = logging.getLogger("service.jobs")

TRAINING_DATA: Final = DATA_DIR / "models" / "ticket_triage.csv"
MODEL_NAME: Final = "tfidf-logreg-v1"


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested category and priority with the model's confidence in each."""

    category: str
    category_confidence: float
    priority: str
    priority_confidence: float


class TriageModel:
    """Two text classifiers (category, priority) sharing one training file."""

    def __init__(self, path: Path = TRAINING_DATA) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        texts = [row["text"] for row in rows]

        def pipeline() -> Pipeline:
            """TF-IDF over word uni- and bigrams, then a seeded logistic regression."""
            return Pipeline(
                [
                    ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                    ("clf", LogisticRegression(C=10.0, max_iter=2000, random_state=0)),
                ]
            )

        self.category = pipeline().fit(texts, [row["category"] for row in rows])
        self.priority = pipeline().fit(texts, [row["priority"] for row in rows])

    def suggest(self, text: str) -> Suggestion:
        """The most likely category and priority of a ticket text."""
        cat_p = self.category.predict_proba([text])[0]
        pri_p = self.priority.predict_proba([text])[0]
        ci, pi = int(cat_p.argmax()), int(pri_p.argmax())
        return Suggestion(
            category=str(self.category.classes_[ci]),
            category_confidence=float(cat_p[ci]),
            priority=str(self.priority.classes_[pi]),
            priority_confidence=float(pri_p[pi]),
        )


_MODEL: TriageModel | None = None
_LOCK = threading.Lock()


def model() -> TriageModel:
    """The process's model, trained on first use."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            _MODEL = TriageModel()
        return _MODEL


async def prepare_model() -> None:
    """Train the process's model in a thread, ahead of the first ticket.

    Importing scikit-learn and training take about 1.6 s of CPU, most of it holding the
    interpreter lock: done by the first ai-inference job, that stalled every workflow task of
    the worker process meanwhile. A failure is logged; the first job then tries again.
    """
    try:
        await asyncio.to_thread(model)
    except Exception:
        log.exception("the triage model could not be trained; the first ai-inference job retries")


async def process_ai_inference(resources: Resources, job: Job) -> dict[str, Any]:
    """Suggest category and priority for ``data.ticket_id`` (or ``data.text``) and store it."""
    data = job.data or {}
    ticket_id = data.get("ticket_id")
    text = data.get("text")
    if isinstance(ticket_id, str):
        async with resources.sessionmaker() as session:
            ticket = await get_ticket(session, ticket_id=ticket_id)
        if ticket is None:
            raise UnrecoverableError(f"no ticket {ticket_id}")
        text = f"{ticket['title']}. {ticket.get('description') or ''}"
    if not isinstance(text, str) or not text.strip():
        raise UnrecoverableError("ai-inference job needs ticket_id or text")
    suggestion = await asyncio.to_thread(lambda: model().suggest(text))
    if isinstance(ticket_id, str):
        async with resources.sessionmaker() as session:
            await save_suggestion(
                session,
                ticket_id=ticket_id,
                category=suggestion.category,
                category_confidence=suggestion.category_confidence,
                priority=suggestion.priority,
                priority_confidence=suggestion.priority_confidence,
                model=MODEL_NAME,
            )
    return {
        "ticket_id": ticket_id,
        "category": suggestion.category,
        "category_confidence": round(suggestion.category_confidence, 3),
        "priority": suggestion.priority,
        "priority_confidence": round(suggestion.priority_confidence, 3),
        "model": MODEL_NAME,
    }
