"""``text_similarity``: a similarity score in [0, 1] between two rendered templates.

The metrics come from maintained packages: rapidfuzz (``fuzzy_match``, as OpenAI uses),
sacrebleu (``bleu``), nltk (``gleu``) and Google's rouge-score (``rouge_1`` ... ``rouge_5``,
``rouge_l``, F-measure). The metrics whose cost grows with the product of the two lengths
compare texts up to a size (``MAX_COMPARE_CHARS``: about a second each on one core);
longer ones score 0 with the reason rather than hold a core for minutes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from quanta.types import GraderType
from tune.graders import register_grader
from tune.graders.base import ComparisonGrader, Grade
from tune.graders.config import TextSimilarityConfig

# Per text compared (the input and the reference each). rouge_l is a longest common
# subsequence over tokens in pure Python; fuzzy_match aligns characters.
MAX_COMPARE_CHARS = {"fuzzy_match": 50_000, "rouge_l": 12_000}


class TextTooLong(ValueError):
    """A text longer than its metric compares."""


def check_lengths(metric: str, *texts: str) -> None:
    """``TextTooLong`` when a text is past what ``metric`` compares."""
    most = MAX_COMPARE_CHARS.get(metric)
    longest = max((len(t) for t in texts), default=0)
    if most is not None and longest > most:
        raise TextTooLong(f"{metric} compares texts of at most {most} characters; "
                          f"this one has {longest}")


@lru_cache(maxsize=16)
def _rouge_scorer(kind: str) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([kind], use_stemmer=False)


def similarity(metric: str, text: str, reference: str) -> float:
    """``metric`` of ``text`` against ``reference``, scaled to [0, 1]."""
    check_lengths(metric, text, reference)
    if metric == "fuzzy_match":
        from rapidfuzz import fuzz

        return fuzz.WRatio(text, reference) / 100.0
    if metric == "bleu":
        from sacrebleu.metrics import BLEU

        return BLEU(effective_order=True).sentence_score(text, [reference]).score / 100.0
    if metric == "gleu":
        from nltk.translate.gleu_score import sentence_gleu

        return float(sentence_gleu([reference.split()], text.split()))
    kind = "rougeL" if metric == "rouge_l" else "rouge" + metric.rsplit("_", 1)[-1]
    return float(_rouge_scorer(kind).score(reference, text)[kind].fmeasure)


@register_grader(GraderType.TEXT_SIMILARITY)
class TextSimilarityGrader(ComparisonGrader):
    config: TextSimilarityConfig

    def grade(self, sample: dict[str, Any], item: dict[str, Any]) -> Grade:
        try:
            return super().grade(sample, item)
        except TextTooLong as exc:
            return Grade.failed("other_error", str(exc))

    def compare(self, given: str, reference: str) -> float:
        return similarity(self.config.evaluation_metric, given, reference)
