"""Item-based nearest neighbours: "people who consumed X also consumed Y"."""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import CosineRecommender
from implicit.utils import ParameterWarning

from driftrec.data.dataset import Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet
from driftrec.models.base import Recommender, SavedState, sparse_from_state, sparse_state
from driftrec.params import BATCH, Rule


class ItemKNN(Recommender):
    """Cosine item-item similarity over the user-item matrix, ``neighbors`` kept per item.

    A history scores item j by the summed similarity of its items to j, so it answers for any
    sequence of known items without refitting. The similarity comes from `implicit`.
    """

    name = "itemknn"
    param_rules: ClassVar[dict[str, Rule]] = {"neighbors": BATCH}

    def __init__(self, neighbors: int = 100) -> None:
        self.neighbors = neighbors

    def _fit(self, dataset: Dataset, valid: EvalSet | None = None) -> None:
        knn = CosineRecommender(K=self.neighbors, num_threads=0)
        with warnings.catch_warnings():
            # implicit transposes our CSR input internally and then warns about its own COO copy.
            warnings.simplefilter("ignore", ParameterWarning)
            knn.fit(dataset.interactions(), show_progress=False)
        self.similarity_ = sp.csr_matrix(knn.similarity, dtype=np.float32)

    def score(self, histories: Histories) -> np.ndarray:
        seen = histories.to_csr(self.n_items)
        return (seen @ self.similarity_).toarray()

    def _state_items(self) -> int:
        return self.similarity_.shape[1]

    def _get_state(self) -> dict[str, np.ndarray]:
        return sparse_state("similarity", self.similarity_)

    def _set_state(self, state: SavedState) -> None:
        self.similarity_ = sparse_from_state("similarity", state)
