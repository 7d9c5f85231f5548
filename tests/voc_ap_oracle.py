"""Independent oracle for the VOC07 11-point AP: the devkit's VOCevalcls, line by line.

The devkit (VOCdevkit/VOCcode/VOCevalcls.m) does, for one class with scores `out` and
ground truth `gt` in {1, 0, -1}:

    [so, si] = sort(-out);           % stable: ties keep their order
    tp = gt(si) > 0;  fp = gt(si) < 0;
    fp = cumsum(fp);  tp = cumsum(tp);
    rec = tp / sum(gt > 0);
    prec = tp ./ (fp + tp);          % 0/0 = NaN before the first non-ignored image
    ap = 0;
    for t = 0:0.1:1
        p = max(prec(rec >= t));     % MATLAB's max skips NaN
        if isempty(p), p = 0; end
        ap = ap + p / 11;
    end

Written with plain Python loops and lists, sharing nothing with tfambient.voc.metrics. One
deliberate difference: with no positives the devkit says 0 (rec is NaN everywhere); this
returns NaN, the project's convention for "no AP".
"""

from __future__ import annotations

import math


def matlab_colon(start: float, step: float, stop: float) -> list[float]:
    """MATLAB's start:step:stop for a range that lands on stop: half counted up from start,
    half counted down from stop, the middle element (if any) the midpoint."""
    n = round((stop - start) / step)
    values = [0.0] * (n + 1)
    for k in range(n // 2 + 1):
        values[k] = start + k * step
        values[n - k] = stop - k * step
    if n % 2 == 0:
        values[n // 2] = (start + stop) / 2
    return values


def matlab_max(values: list[float]) -> float | None:
    """max() that skips NaN, as MATLAB's does; None for an empty (or all-NaN) list."""
    best = None
    for value in values:
        if not math.isnan(value) and (best is None or value > best):
            best = value
    return best


def oracle_voc07_ap(scores, targets) -> float:
    """VOCevalcls' AP for one class (scores and targets: sequences of numbers)."""
    scores = [float(s) for s in scores]
    targets = [int(g) for g in targets]
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # Python's sort is stable
    num_positives = sum(1 for g in targets if g > 0)
    if num_positives == 0:
        return math.nan

    rec, prec = [], []
    tp = fp = 0
    for i in order:
        if targets[i] > 0:
            tp += 1
        if targets[i] < 0:
            fp += 1
        rec.append(tp / num_positives)
        prec.append(tp / (tp + fp) if tp + fp > 0 else math.nan)

    ap = 0.0
    for t in matlab_colon(0.0, 0.1, 1.0):
        p = matlab_max([p for p, r in zip(prec, rec, strict=True) if r >= t])
        if p is None:
            p = 0.0
        ap = ap + p / 11
    return ap
