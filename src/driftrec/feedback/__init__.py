"""The feedback loop's arithmetic: online metrics from impressions and outcomes, A/B
comparisons with a bootstrap over users, and the stable assignment of users to variants
(docs/feedback.md). Pure computations over rows; the store supplies the rows."""

from driftrec.feedback.abtest import Comparison, compare
from driftrec.feedback.metrics import GROUPINGS, online_metrics
from driftrec.feedback.variants import Variant, assign, parse_variant

__all__ = [
    "GROUPINGS",
    "Comparison",
    "Variant",
    "assign",
    "compare",
    "online_metrics",
    "parse_variant",
]
