"""Cold-start item evaluation: hold a random share of items out of training entirely.

The split is the ordinary protocol's (`make_split`), so every test target is the same event the
normal evaluation uses; then every event of a cold item is taken out of training and out of the
validation and test input histories, and validation targets on cold items are dropped (they would
leak the held-out items into early stopping). The catalog stays complete: cold items are still
ranked among all items, they just have no events a model could learn from. Test metrics are then
reported separately on rows whose target is cold and on the rest, next to the hit rate a uniformly
random ranking would get on the cold rows. A model that reads item text can score a cold item; an
id-only model cannot, which is what the comparison shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from driftrec.data.dataset import NO_ITEM, Dataset
from driftrec.data.histories import Histories
from driftrec.data.split import EvalSet, Split, make_split
from driftrec.errors import InputError
from driftrec.evaluation.evaluator import evaluate
from driftrec.models.base import Recommender


@dataclass(frozen=True)
class ColdStartSplit:
    """A split whose training data never mentions ``cold_items``, plus what was removed."""

    split: Split  # train / valid / test, ready for model.fit(split.train, valid=split.valid)
    cold_items: np.ndarray  # (n_cold,) int64 sorted item indices held out of training
    # What each test user really consumed before the target, cold items included: the model
    # never sees those events, but they are still not candidates (seen items are excluded).
    test_seen: Histories
    info: dict[str, Any] = field(default_factory=dict)  # counts, see `hold_out_items`


def cold_item_split(
    dataset: Dataset, share: float = 0.1, seed: int = 0, protocol: str = "loo"
) -> ColdStartSplit:
    """Hold ``round(share * n)`` items, drawn uniformly (``numpy.random.default_rng(seed)``) among
    the ``n`` items with at least one item event, out of training; see `hold_out_items`."""
    if not 0 < share < 1:
        raise InputError(f"share must be in (0, 1), got {share}")
    eligible = _eligible_items(dataset)
    n_cold = round(share * len(eligible))
    cold = np.random.default_rng(seed).choice(eligible, size=n_cold, replace=False)
    return hold_out_items(dataset, cold, protocol, share=share, seed=seed)


def hold_out_items(
    dataset: Dataset,
    cold_items: np.ndarray,
    protocol: str = "loo",
    *,
    share: float | None = None,
    seed: int | None = None,
) -> ColdStartSplit:
    """The ``protocol`` split of ``dataset`` with the given items held out of training.

    Every event of a cold item leaves the training data and the validation and test input
    histories (users left with an empty history stay: the model scores an empty history).
    Validation targets on cold items are dropped, and a validation row left without targets with
    them. Test rows keep all their targets. ``share`` and ``seed`` are only recorded in ``info``.
    """
    cold_items = np.unique(np.asarray(cold_items, np.int64))
    if len(cold_items) and (cold_items[0] < 0 or cold_items[-1] >= dataset.n_items):
        raise InputError(f"cold_items must be item indices in [0, {dataset.n_items})")
    is_cold = _item_mask(cold_items, dataset.n_items)
    base = make_split(dataset, protocol)

    events = base.train.events
    item = events["item"].to_numpy()
    removed = (item != NO_ITEM) & is_cold[np.where(item == NO_ITEM, 0, item)]
    train = base.train.with_events(events[~removed])
    users_emptied = np.setdiff1d(_item_users(base.train), _item_users(train)).size

    valid_hist, valid_hist_removed = _without_items(base.valid.histories, is_cold)
    valid_cold = is_cold[base.valid.target_items]
    valid = _keep_targets(
        EvalSet(
            valid_hist,
            base.valid.target_indptr,
            base.valid.target_items,
            base.valid.target_values,
            seen=base.valid.histories,
        ),
        ~valid_cold,
    )
    had_targets = np.diff(base.valid.target_indptr) > 0
    lost = had_targets & (np.diff(valid.target_indptr) == 0)
    valid = valid.take(np.flatnonzero(~lost))

    test_hist, test_hist_removed = _without_items(base.test.histories, is_cold)
    test = EvalSet(
        test_hist, base.test.target_indptr, base.test.target_items, base.test.target_values
    )
    rows_cold = cold_target_rows(test, cold_items)
    rows_warm = _rows_with(test, ~is_cold[test.target_items])

    if share is None:
        share = len(cold_items) / max(1, _eligible_items(dataset).size)
    info = {
        "cold_items": len(cold_items),
        "share": share,
        "seed": seed,
        "train_events_removed": int(removed.sum()),
        "users_with_empty_train_history": int(users_emptied),
        "valid_rows_dropped": int(lost.sum()),
        "valid_targets_dropped": int(valid_cold.sum()),
        "valid_history_events_removed": valid_hist_removed,
        "test_history_events_removed": test_hist_removed,
        "test_rows": len(test),
        "test_rows_cold": int(rows_cold.sum()),
        "test_rows_warm": int(rows_warm.sum()),
        "test_rows_mixed": int((rows_cold & rows_warm).sum()),
    }
    split = Split(
        train=train,
        valid=valid,
        test=test,
        protocol=f"{base.protocol}+cold-items",
        info={**base.info, "train_events": len(train.events), "cold_start": dict(info)},
    )
    return ColdStartSplit(split, cold_items, base.test.histories, info)


def cold_target_rows(eval_set: EvalSet, cold_items: np.ndarray) -> np.ndarray:
    """(n,) boolean: which rows have at least one target among ``cold_items``."""
    return _rows_with(eval_set, np.isin(eval_set.target_items, cold_items))


def evaluate_cold_start(
    model: Recommender,
    cold: ColdStartSplit,
    ks: tuple[int, ...] = (10,),
    exclude_seen: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Test metrics on rows with a cold target ("cold") and on rows with a warm one ("warm").

    A row with both (temporal protocol) counts in both parts, with only its cold targets in the
    first and only its warm targets in the second. ``random_hr@k`` is the expected HR@k of a
    uniformly random ranking of the candidates (the catalog less the row's seen items when
    ``exclude_seen``) on the cold rows, and ``cold_hr_over_random@k`` the cold HR@k divided by it.
    ``rows`` counts the rows each part's metrics average over; ``rows_skipped`` the rows left out
    because every target of theirs was already seen (a repeat), as the evaluator leaves them out.
    A part without rows gets empty metrics and a line in ``notes``.
    """
    test, train = cold.split.test, cold.split.train
    n_items = model.n_items
    target_cold = np.isin(test.target_items, cold.cold_items)
    metrics: dict[str, dict[str, float]] = {}
    rows: dict[str, int] = {}
    random_hr: dict[int, float] = {}
    ratio: dict[int, float | None] = {}
    infos: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    skipped: dict[str, int] = {}
    for part, keep in (("cold", target_cold), ("warm", ~target_cold)):
        part_rows = np.flatnonzero(_rows_with(test, keep))
        rows[part], skipped[part] = len(part_rows), 0
        if not len(part_rows):
            metrics[part] = {}
            notes.append(f"no test row has a {part} target: its metrics are empty")
            continue
        part_set = _keep_targets(test, keep).take(part_rows)
        seen = cold.test_seen.take(part_rows)
        result = evaluate(
            model, part_set, train, ks=ks, exclude_seen=exclude_seen, seen=seen, progress=progress
        )
        metrics[part] = result.metrics
        infos[part] = result.info
        # Rows whose every target was seen before (a repeat) are skipped by the evaluator.
        rows[part], skipped[part] = result.n_users, len(part_rows) - result.n_users
        if part == "cold" and result.n_users:
            for k in ks:
                hr_random = random_hit_rate(part_set, n_items, k, exclude_seen, seen)
                random_hr[k] = float(np.nanmean(hr_random))
                hr = result.metrics[f"HR@{k}"]
                ratio[k] = hr / random_hr[k] if random_hr[k] > 0 else None
    rows["both"] = int((_rows_with(test, target_cold) & _rows_with(test, ~target_cold)).sum())
    return {
        "cold": metrics["cold"],
        "warm": metrics["warm"],
        "rows": rows,
        "rows_skipped": skipped,
        "random_hr@k": random_hr,
        "cold_hr_over_random@k": ratio,
        "notes": notes,
        "evaluation_info": infos,
    }


def random_hit_rate(
    eval_set: EvalSet,
    n_items: int,
    k: int,
    exclude_seen: bool = True,
    seen: Histories | None = None,
) -> np.ndarray:
    """(n,) expected HR@k per row of a uniformly random ranking of the candidate items.

    With ``m`` candidates (``n_items``, less the row's distinct seen items when ``exclude_seen``)
    and ``t`` distinct targets among them, P(hit) = 1 - C(m - t, k) / C(m, k); for one target
    that is min(1, k / m). Targets that are seen are not counted (the evaluator drops them); a row
    left with none is NaN (the evaluator skips it).
    ``seen`` overrides the rows' histories as what was seen, as in `evaluate`.
    """
    n = len(eval_set)
    m = np.full(n, n_items, np.int64)
    rows, items = eval_set.target_rows(), eval_set.target_items.astype(np.int64)
    if exclude_seen:
        seen_matrix = (eval_set.histories if seen is None else seen).to_csr(n_items)
        m -= seen_matrix.getnnz(axis=1)
        unseen = np.asarray(seen_matrix[rows, items]).ravel() == 0
        rows, items = rows[unseen], items[unseen]
    keys = np.unique(rows * n_items + items)
    t = np.bincount(keys // n_items, minlength=n)
    miss = np.ones(n)
    for j in range(int(t.max(initial=0))):
        active = j < t
        miss[active] *= np.clip(m[active] - k - j, 0, None) / (m[active] - j)
    return np.where(t > 0, 1.0 - miss, np.nan)


def _item_users(dataset: Dataset) -> np.ndarray:
    """Distinct users with at least one item event."""
    return np.unique(dataset.item_events()["user"].to_numpy())


def _eligible_items(dataset: Dataset) -> np.ndarray:
    """Items with at least one item event (the ones that can be held out)."""
    return np.unique(dataset.item_events()["item"].to_numpy()).astype(np.int64)


def _item_mask(items: np.ndarray, n_items: int) -> np.ndarray:
    mask = np.zeros(n_items, bool)
    mask[np.asarray(items, np.int64)] = True
    return mask


def _rows_with(eval_set: EvalSet, target_mask: np.ndarray) -> np.ndarray:
    """(n,) boolean: rows with at least one target where ``target_mask`` is True."""
    counts = np.bincount(eval_set.target_rows()[target_mask], minlength=len(eval_set))
    return counts > 0


def _without_items(histories: Histories, is_cold: np.ndarray) -> tuple[Histories, int]:
    """The same rows (and users) with every event of a cold item removed; and how many were."""
    keep = ~is_cold[histories.items]
    indptr = np.zeros(len(histories) + 1, np.int64)
    np.cumsum(np.bincount(histories.event_rows()[keep], minlength=len(histories)), out=indptr[1:])
    kept = Histories(
        indptr=indptr,
        items=histories.items[keep],
        timestamps=histories.timestamps[keep],
        events=histories.events[keep],
        values=histories.values[keep],
        users=histories.users.copy(),
    )
    return kept, int((~keep).sum())


def _keep_targets(eval_set: EvalSet, keep: np.ndarray) -> EvalSet:
    """The same rows with only the targets where ``keep`` is True (a row may end up empty)."""
    indptr = np.zeros(len(eval_set) + 1, np.int64)
    counts = np.bincount(eval_set.target_rows()[keep], minlength=len(eval_set))
    np.cumsum(counts, out=indptr[1:])
    return EvalSet(
        eval_set.histories,
        indptr,
        eval_set.target_items[keep],
        eval_set.target_values[keep],
        eval_set.seen,
    )
