"""VOC07 AP metrics (tfambient.voc.metrics) against hand-worked numbers, the devkit oracle in
tests/voc_ap_oracle.py and scikit-learn; and the table, CSV and JSON writers."""

from __future__ import annotations

import csv
import io
import json
import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from voc_ap_oracle import matlab_colon, oracle_voc07_ap

from tfambient.voc import CLASSES
from tfambient.voc.metrics import (
    DEVKIT_THRESHOLDS,
    PUBLISHED,
    SHORT_NAMES,
    APResult,
    class_aps,
    published_markdown,
    sklearn_ap,
    voc07_ap,
)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """No metric may leak a warning (scikit-learn's 'no positive class' above all)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---- hand-worked cases -------------------------------------------------------------------

# (scores, targets, VOC07 AP, sklearn AP), each worked out by hand in its comment.
HAND_CASES = [
    pytest.param([0.9, 0.8, 0.7, 0.1], [1, 1, -1, -1], 1.0, 1.0, id="perfect ranking"),
    # Ranked: neg, neg, pos, pos. rec = 0, 0, .5, 1; prec = 0, 0, 1/3, 1/2.
    # VOC07: every threshold sees max(prec[rec >= t]) = 1/2. sklearn: .5/3 + .5/2 = 5/12.
    pytest.param([0.9, 0.8, 0.2, 0.1], [-1, -1, 1, 1], 0.5, 5 / 12, id="fully reversed"),
    # VOC07 ranks a tie in index order (the devkit's sort is stable): a negative listed first
    # gives rec 0, 1 / prec 0, 1/2 -> 0.5; a positive listed first gives prec 1 at rec 1 -> 1.
    # sklearn takes the tie as one threshold: 0.5 either way.
    pytest.param([0.5, 0.5], [-1, 1], 0.5, 0.5, id="tie, negative first"),
    pytest.param([0.5, 0.5], [1, -1], 1.0, 0.5, id="tie, positive first"),
    # Without the ignored images: pos .9, neg .8, pos .6 -> rec .5, .5, 1; prec 1, .5, 2/3.
    # VOC07: t <= .5 (6 thresholds) -> 1, t > .5 (5) -> 2/3: (6 + 10/3) / 11 = 28/33.
    # sklearn: .5 * 1 + .5 * 2/3 = 5/6. The three cases differ only in the ignored scores.
    pytest.param([0.99, 0.9, 0.8, 0.7, 0.6], [0, 1, -1, 0, 1], 28 / 33, 5 / 6, id="ignored"),
    pytest.param([-5, 0.9, 0.8, -5, 0.6], [0, 1, -1, 0, 1], 28 / 33, 5 / 6, id="ignored low"),
    pytest.param([0.8, 0.9, 0.8, 0.9, 0.6], [0, 1, -1, 0, 1], 28 / 33, 5 / 6, id="ignored tied"),
    pytest.param([0.1, 0.9, 0.5], [1, 1, 0], 1.0, 1.0, id="no negatives"),
    pytest.param([0.3, 0.2, 0.1], [-1, -1, 0], math.nan, math.nan, id="no positives"),
    pytest.param([0.3, 0.2, 0.1], [0, 0, 0], math.nan, math.nan, id="all ignored"),
]


@pytest.mark.parametrize(("scores", "targets", "voc07", "sk"), HAND_CASES)
def test_hand_worked_cases(scores, targets, voc07, sk):
    nan_ok = {"nan_ok": True, "abs": 1e-15}
    assert voc07_ap(scores, targets) == pytest.approx(voc07, **nan_ok)
    assert oracle_voc07_ap(scores, targets) == pytest.approx(voc07, **nan_ok)
    assert sklearn_ap(scores, targets) == pytest.approx(sk, **nan_ok)


def test_recall_exactly_three_tenths_misses_matlabs_fourth_threshold():
    # 10 positives: 3 found first, then 7 negatives, then the other 7 positives.
    # At recall exactly 0.3 the precision reaches 1, but MATLAB's 0:0.1:1 has 3*0.1 =
    # 0.30000000000000004 as its fourth threshold, so only t = 0, .1, .2 see it; the other
    # 8 thresholds see the best later point, 10/17 (the k-th positive after: k / (k + 7)).
    # AP = (3 * 1 + 8 * 10/17) / 11 = 131/187 (with a decimal 0.3 it would be 138/187).
    targets = [1] * 3 + [-1] * 7 + [1] * 7
    scores = np.linspace(1, 0, len(targets))
    assert voc07_ap(scores, targets) == pytest.approx(131 / 187, abs=1e-15)
    assert oracle_voc07_ap(scores, targets) == pytest.approx(131 / 187, abs=1e-15)


def test_thresholds_are_matlabs_colon_range():
    assert DEVKIT_THRESHOLDS.tolist() == matlab_colon(0.0, 0.1, 1.0)
    assert DEVKIT_THRESHOLDS[3] == 0.30000000000000004
    assert np.count_nonzero(np.arange(11) / 10 == DEVKIT_THRESHOLDS) == 10  # all but 0.3


# ---- random cases against the oracle and scikit-learn ------------------------------------


def random_class(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores on a coarse grid (many ties) and targets with every kind, ignored included."""
    scores = rng.integers(0, 12, size=n) / 11.0
    targets = rng.choice([-1, 0, 1], size=n, p=[0.6, 0.1, 0.3])
    return scores, targets


@pytest.mark.parametrize("seed", range(8))
def test_voc07_ap_matches_devkit_oracle(seed):
    rng = np.random.default_rng(seed)
    for n in (1, 2, 5, 17, 100, 400):
        scores, targets = random_class(rng, n)
        expected = oracle_voc07_ap(scores, targets)
        got = voc07_ap(scores, targets)
        if math.isnan(expected):
            assert math.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12, rel=0)


@pytest.mark.parametrize("seed", range(8))
def test_sklearn_ap_matches_scikit_learn_on_kept_images(seed):
    rng = np.random.default_rng(100 + seed)
    for n in (3, 30, 300):
        scores, targets = random_class(rng, n)
        targets[0] = 1  # at least one positive, so scikit-learn's AP is defined
        kept = targets != 0
        expected = average_precision_score(targets[kept] == 1, scores[kept])
        assert sklearn_ap(scores, targets) == pytest.approx(expected, abs=1e-12, rel=0)


def test_class_aps_columns_match_oracle_and_leave_out_classes_without_positives():
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(60, 20)).round(1)
    targets = rng.choice([-1, 0, 1], size=(60, 20), p=[0.6, 0.1, 0.3])
    targets[:, 3] = -1  # boat: no positives at all
    targets[:, 11] = np.where(targets[:, 11] == 1, 0, targets[:, 11])  # dog: only ignored ones
    result = class_aps(scores, targets)

    expected = np.array([oracle_voc07_ap(scores[:, c], targets[:, c]) for c in range(20)])
    np.testing.assert_allclose(result.voc07, expected, atol=1e-12, rtol=0)
    assert result.missing == ("boat", "dog")
    assert np.isnan(result.sklearn[[3, 11]]).all()
    finite = np.delete(np.arange(20), [3, 11])
    assert result.map_voc07 == pytest.approx(expected[finite].mean(), abs=1e-12)
    assert result.map_sklearn == pytest.approx(result.sklearn[finite].mean(), abs=1e-12)
    assert 0 < result.map_sklearn < 1


def test_class_aps_with_no_positives_anywhere_has_nan_maps():
    result = class_aps(np.zeros((4, 20)), -np.ones((4, 20)))
    assert math.isnan(result.map_voc07) and math.isnan(result.map_sklearn)
    assert result.missing == CLASSES


# ---- input validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "targets", "message"),
    [
        ([0.1, 0.2], [1, -1, 1], "differ in shape"),
        ([[0.1, 0.2]], [[1, -1]], "1-d"),
        ([0.1, math.nan], [1, -1], "NaN"),
        ([0.1, math.inf], [1, -1], "NaN or Inf"),
        ([0.1, 0.2], [1, 2], r"found \[2\]"),
        ([0.1, 0.2], [1, 0.5], "targets must be"),
    ],
)
def test_one_class_rejects_bad_input(scores, targets, message):
    for metric in (voc07_ap, sklearn_ap):
        with pytest.raises(ValueError, match=message):
            metric(scores, targets)


def test_class_aps_rejects_bad_input():
    with pytest.raises(ValueError, match="20 class columns"):
        class_aps(np.zeros((3, 19)), np.ones((3, 19)))
    with pytest.raises(ValueError, match="differ in shape"):
        class_aps(np.zeros((3, 20)), np.ones((4, 20)))
    with pytest.raises(ValueError, match="2-d"):
        class_aps(np.zeros(20), np.ones(20))


# ---- tables and files ---------------------------------------------------------------------


@pytest.fixture
def result() -> APResult:
    rng = np.random.default_rng(3)
    targets = rng.choice([-1, 0, 1], size=(40, 20), p=[0.6, 0.1, 0.3])
    targets[:, 7] = -1  # cat: no positives
    return class_aps(rng.random((40, 20)), targets)


def test_result_is_immutable(result):
    with pytest.raises(ValueError, match="read-only"):
        result.voc07[0] = 1.0
    with pytest.raises(AttributeError):
        result.map_voc07 = 1.0


def test_dict_is_json_and_round_trips(result):
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert list(data["per_class"]) == list(CLASSES)
    assert data["per_class"]["cat"] == {"voc07": None, "sklearn": None}
    assert data["missing"] == ["cat"]
    back = APResult.from_dict(data)
    np.testing.assert_array_equal(back.voc07, result.voc07)
    np.testing.assert_array_equal(back.sklearn, result.sklearn)
    assert (back.map_voc07, back.map_sklearn) == (result.map_voc07, result.map_sklearn)
    assert back.missing == result.missing


def test_from_dict_needs_every_class(result):
    data = result.to_dict()
    del data["per_class"]["tvmonitor"]
    with pytest.raises(ValueError, match="20 VOC classes"):
        APResult.from_dict(data)


def test_markdown_is_table_2_layout(result):
    lines = result.markdown("sound").splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["", *SHORT_NAMES, "mAP"]
    assert len(cells) == 4 and all(len(row) == 22 for row in cells)
    assert [row[0] for row in cells[2:]] == ["sound, VOC07 11-point", "sound, sklearn AP"]
    cat = 1 + CLASSES.index("cat")
    assert cells[2][cat] == cells[3][cat] == "–"
    assert cells[2][1] == f"{100 * result.voc07[0]:.1f}"
    assert cells[3][-1] == f"{100 * result.map_sklearn:.1f}"


def test_csv_is_the_same_table(result):
    rows = list(csv.reader(io.StringIO(result.csv_text())))
    assert rows[0] == ["method", *SHORT_NAMES, "mAP"]
    assert [row[0] for row in rows[1:]] == ["ours, VOC07 11-point", "ours, sklearn AP"]
    assert rows[1][1 + CLASSES.index("cat")] == ""
    assert float(rows[2][-1]) == pytest.approx(100 * result.map_sklearn, abs=0.05)


def test_write_leaves_three_complete_files_and_no_temporaries(result, tmp_path):
    out = tmp_path / "report"
    for _ in range(2):  # a rerun replaces the files
        paths = result.write(out)
    assert sorted(p.name for p in out.iterdir()) == ["ap_table.csv", "ap_table.json", "ap_table.md"]
    assert paths["md"].read_text(encoding="utf-8") == result.markdown()
    assert paths["csv"].read_text(encoding="utf-8") == result.csv_text()
    back = APResult.from_dict(json.loads(paths["json"].read_text(encoding="utf-8")))
    np.testing.assert_array_equal(back.voc07, result.voc07)


def test_published_rows_are_the_specs():
    assert [(r.method, r.head_pct, r.all_pct) for r in PUBLISHED] == [
        ("ImageNet labels", 78.9, 79.9),
        ("random init", 29.0, 33.2),
        ("Owens et al., sound texture", 52.3, 61.3),
        ("2019 reproduction, sound texture", 52.8, 55.1),
    ]


def test_published_markdown_with_and_without_ours():
    plain = published_markdown(None).splitlines()
    assert len(plain) == 2 + len(PUBLISHED)
    assert "| random init | 29 | 33.2 |" in plain[3]
    ours = published_markdown({"head": 0.41}).splitlines()
    assert ours[:-1] == plain
    assert ours[-1] == "| ours | 41.0 | – |  |"
    with pytest.raises(ValueError, match="svm"):
        published_markdown({"svm": 0.3})
