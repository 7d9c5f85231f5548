"""tfambient.cluster: standardization, k-means labels, PCA sign codes, summaries, montages."""

from __future__ import annotations

import io
import itertools
import json

import matplotlib.image
import numpy as np
import pytest
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from tfambient import cluster
from tfambient.cluster import (
    BinaryCoder,
    ClusterSummary,
    KMeansLabeler,
    Standardizer,
    plot_montage,
)


def _blobs(rng: np.random.Generator, centres: np.ndarray, per_blob: int, constant_dims: int = 5):
    """Gaussian blobs around ``centres`` with very different scales per dim, plus constant
    dims; returns (descriptors float32, true blob of each row)."""
    d = centres.shape[1]
    scales = 10.0 ** rng.uniform(-3, 3, size=d)
    truth = np.repeat(np.arange(len(centres)), per_blob)
    x = (centres[truth] + rng.standard_normal((truth.size, d))) * scales
    constants = np.broadcast_to(rng.uniform(-5, 5, size=constant_dims), (truth.size, constant_dims))
    order = rng.permutation(truth.size)
    return np.hstack([x, constants]).astype(np.float32)[order], truth[order]


@pytest.fixture(scope="module")
def three_blobs():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((3, 50)) * 3.0
    return _blobs(rng, centres, per_blob=200)


@pytest.fixture(scope="module")
def labeler(three_blobs):
    return KMeansLabeler.fit(three_blobs[0], k=3, seed=0)


# ---- Standardizer ---------------------------------------------------------------------


def test_standardizer_drops_constant_columns_and_whitens_the_rest():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6)) * [1e-4, 1.0, 1e3, 1.0, 1.0, 1.0] + [0, 5, -7, 0, 0, 0]
    x[:, 3] = 0.0  # zero column
    x[:, 4] = 1234.5  # constant column
    x[:, 5] = 1234.5 + rng.choice([0, 1e-4], size=500)  # varies by ~1 float32 ulp: noise
    x = x.astype(np.float32)
    standardizer = Standardizer.fit(x)
    assert standardizer.keep.tolist() == [True, True, True, False, False, False]
    assert (standardizer.input_dim, standardizer.output_dim) == (6, 3)
    z = standardizer.transform(x)
    assert z.dtype == np.float32 and z.shape == (500, 3)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (np.zeros((0, 4), np.float32), "empty"),
        (np.zeros((3, 0), np.float32), "empty"),
        (np.zeros(4, np.float32), "2-d"),
        (np.array([[1.0, 2.0], [np.nan, 3.0], [2.0, 1.0]], np.float32), r"NaN or Inf .*row 1"),
        (np.array([[1.0, 2.0], [1.0, np.inf]], np.float32), r"NaN or Inf .*row 1"),
        (np.tile(np.float32([1.0, -2.0, 0.0]), (10, 1)), "no dimension .* varies"),
        (np.ones((1, 3), np.float32), "no dimension .* varies"),
    ],
    ids=["no-rows", "no-dims", "1d", "nan", "inf", "all-constant", "one-row"],
)
def test_standardizer_refuses_unusable_samples(sample, message):
    with pytest.raises(ValueError, match=message):
        Standardizer.fit(sample)


def test_transform_checks_width_and_finiteness(three_blobs):
    standardizer = Standardizer.fit(three_blobs[0])
    with pytest.raises(ValueError, match="has 54 dims, expected 55"):
        standardizer.transform(three_blobs[0][:, :-1])
    bad = three_blobs[0][:20].copy()
    bad[13, 2] = np.nan
    with pytest.raises(ValueError, match="row 13"):
        standardizer.transform(bad)


# ---- KMeansLabeler --------------------------------------------------------------------


def test_kmeans_recovers_well_separated_blobs_despite_scales(three_blobs, labeler):
    x, truth = three_blobs
    labels, sq_distances = labeler.assign(x)
    assert labels.dtype == np.int64 and sq_distances.dtype == np.float32
    assert adjusted_rand_score(truth, labels) == 1.0
    assert (labeler.k, labeler.seed, labeler.fit_size) == (3, 0, 600)
    assert labeler.standardizer.output_dim == 50
    assert labeler.n_iter >= 1
    # sklearn's inertia on the sample is the sum of our squared distances.
    np.testing.assert_allclose(sq_distances.sum(), labeler.inertia, rtol=1e-4)


def _brute_force_assign(labeler: KMeansLabeler, x: np.ndarray):
    """Every row against every centroid by explicit differences, in float64."""
    z = labeler.standardizer.transform(x).astype(np.float64)
    diff = z[:, None, :] - labeler.centroids.astype(np.float64)[None, :, :]
    distances = np.square(diff).sum(axis=2)
    return distances.argmin(axis=1), distances.min(axis=1)


@pytest.mark.parametrize("chunk_rows", [1, 7, 128, cluster.CHUNK_ROWS])
def test_chunked_assign_equals_brute_force(chunk_rows):
    rng = np.random.default_rng(2)
    sample = rng.standard_normal((400, 12)).astype(np.float32)
    labeler = KMeansLabeler.fit(sample, k=9, seed=3, n_init=1)
    x = rng.standard_normal((cluster.CHUNK_ROWS + 37, 12)).astype(np.float32) * 1.5
    labels, sq_distances = labeler.assign(x, chunk_rows=chunk_rows)
    expected_labels, expected_distances = _brute_force_assign(labeler, x)
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(sq_distances, expected_distances, rtol=1e-5, atol=1e-5)
    assert len(np.unique(labels)) == 9


def test_assign_clips_rounding_below_zero():
    # Each centroid assigned to itself: ||c||^2 - 2 c.c + ||c||^2 rounds to about -1e-13
    # for some of these (with an identity standardizer the descriptors are the centroids).
    centroids = (np.random.default_rng(0).standard_normal((64, 40)) * 3).astype(np.float32)
    identity = Standardizer(mean=np.zeros(40), scale=np.ones(40), keep=np.ones(40, bool))
    labeler = KMeansLabeler(identity, centroids, seed=0, fit_size=64, inertia=0.0, n_iter=1)
    labels, sq_distances = labeler.assign(centroids)
    np.testing.assert_array_equal(labels, np.arange(64))
    assert (sq_distances >= 0).all() and (sq_distances < 1e-9).all()


def test_kmeans_save_load_round_trip(tmp_path, three_blobs, labeler):
    path = tmp_path / "kmeans.npz"
    labeler.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["kmeans.npz"]
    loaded = KMeansLabeler.load(path)
    for name in ("k", "seed", "fit_size", "inertia", "n_iter"):
        assert getattr(loaded, name) == getattr(labeler, name), name
    for name in ("mean", "scale", "keep"):
        np.testing.assert_array_equal(
            getattr(loaded.standardizer, name), getattr(labeler.standardizer, name)
        )
    rng = np.random.default_rng(4)
    x = three_blobs[0] + rng.standard_normal(three_blobs[0].shape).astype(np.float32)
    for got, want in zip(loaded.assign(x), labeler.assign(x), strict=True):
        np.testing.assert_array_equal(got, want)


def test_loading_the_wrong_kind_of_model_is_refused(tmp_path, three_blobs):
    path = tmp_path / "coder.npz"
    BinaryCoder.fit(three_blobs[0], bits=4, seed=0).save(path)
    with pytest.raises(ValueError, match=r"BinaryCoder.* expected .*KMeansLabeler"):
        KMeansLabeler.load(path)


def test_too_few_distinct_rows_for_k():
    rng = np.random.default_rng(5)
    rows = rng.standard_normal((4, 6)).astype(np.float32)
    # Column 5 is +-1 for rows 0 and 1 (so its mean is exactly 0) and 0.0 or -0.0 for rows
    # 2 and 3: standardized, -0.0 stays -0.0, which is equal to 0.0 but not byte-equal.
    rows[:, 5] = [1.0, -1.0, 0.0, 0.0]
    sample = np.repeat(rows, 10, axis=0)
    sample[20:40:2, 5] = -0.0
    with pytest.raises(ValueError, match=r"cannot make 5 clusters.* only 4 distinct"):
        KMeansLabeler.fit(sample, k=5, seed=0)
    assert KMeansLabeler.fit(sample, k=4, seed=0).k == 4


def test_k_must_be_positive(three_blobs):
    with pytest.raises(ValueError, match="k must be at least 1"):
        KMeansLabeler.fit(three_blobs[0], k=0, seed=0)


# ---- BinaryCoder ----------------------------------------------------------------------


def test_binary_codes_shape_determinism_and_sign_convention(three_blobs):
    x = three_blobs[0]
    first = BinaryCoder.fit(x, bits=6, seed=7)
    second = BinaryCoder.fit(x, bits=6, seed=7)
    codes = first.encode(x)
    assert codes.shape == (len(x), 6) and codes.dtype == np.uint8
    assert set(np.unique(codes)) <= {0, 1}
    np.testing.assert_array_equal(codes, second.encode(x))
    components = first.components
    largest = components[np.arange(6), np.abs(components).argmax(axis=1)]
    assert (largest > 0).all()
    ratio = first.explained_variance_ratio
    assert ratio.shape == (6,) and (np.diff(ratio) <= 0).all() and 0 < ratio.sum() <= 1


def test_binary_codes_are_the_signs_of_sklearn_s_principal_components(three_blobs):
    x = three_blobs[0]
    coder = BinaryCoder.fit(x, bits=6, seed=7)
    z = coder.standardizer.transform(x)
    pca = PCA(n_components=6, random_state=7).fit(z)
    projections = pca.transform(z)
    for j, component in enumerate(pca.components_):
        if component[np.abs(component).argmax()] < 0:
            projections[:, j] *= -1
    np.testing.assert_array_equal(coder.encode(x), projections > 0)


class _FlippedPCA(cluster.PCA):
    """PCA whose components come out with the opposite signs, as another solver's may."""

    def fit(self, x, y=None):
        super().fit(x, y)
        self.components_ = -self.components_
        return self


def test_binary_codes_do_not_depend_on_the_solver_s_signs(three_blobs, monkeypatch):
    x = three_blobs[0]
    codes = BinaryCoder.fit(x, bits=4, seed=0).encode(x)
    monkeypatch.setattr(cluster, "PCA", _FlippedPCA)
    np.testing.assert_array_equal(BinaryCoder.fit(x, bits=4, seed=0).encode(x), codes)


def test_two_blobs_along_the_first_component_get_different_first_bits():
    rng = np.random.default_rng(8)
    # Standardizing gives every dim unit variance, so the blobs must differ along many
    # dims at once for their separation to be the direction of largest variance.
    centres = np.zeros((2, 20))
    centres[:, :10] = [[-4.0], [4.0]]
    x, truth = _blobs(rng, centres, per_blob=150)
    coder = BinaryCoder.fit(x, bits=2, seed=0)
    first_bit = coder.encode(x)[:, 0]
    assert len(np.unique(first_bit[truth == 0])) == 1
    assert len(np.unique(first_bit[truth == 1])) == 1
    assert first_bit[truth == 0][0] != first_bit[truth == 1][0]
    # 10 of 20 unit-variance dims share the separation: about 9.5 / 20 of the variance.
    assert coder.explained_variance_ratio[0] > 4 * coder.explained_variance_ratio[1]


def test_binary_coder_save_load_and_limits(tmp_path, three_blobs):
    x = three_blobs[0]
    coder = BinaryCoder.fit(x, bits=5, seed=1)
    coder.save(tmp_path / "coder.npz")
    loaded = BinaryCoder.load(tmp_path / "coder.npz")
    np.testing.assert_array_equal(loaded.encode(x), coder.encode(x, chunk_rows=13))
    np.testing.assert_array_equal(loaded.explained_variance_ratio, coder.explained_variance_ratio)
    assert (loaded.bits, loaded.seed, loaded.fit_size) == (5, 1, 600)
    with pytest.raises(ValueError, match="bits must be between 1 and 50"):
        BinaryCoder.fit(x, bits=51, seed=0)  # 55 dims, 5 of them constant
    with pytest.raises(ValueError, match="bits must be between"):
        BinaryCoder.fit(x, bits=0, seed=0)


# ---- ClusterSummary -------------------------------------------------------------------


def _stream(rng: np.random.Generator, n: int, k: int):
    labels = rng.integers(0, k, size=n)
    # Few distinct distances, so that ties are common and must go to the earlier example.
    sq_distances = rng.integers(0, 6, size=n).astype(np.float32) / 2
    is_val = rng.random(n) < 0.2
    thumbnails = [f"jpeg-{i}".encode() for i in range(n)]
    return labels, sq_distances, is_val, thumbnails


def test_nearest_examples_match_a_sort_of_everything_fed():
    rng = np.random.default_rng(9)
    k, per_cluster, n = 5, 4, 300
    labels, sq_distances, is_val, thumbnails = _stream(rng, n, k)
    summary = ClusterSummary(k, per_cluster=per_cluster)
    bounds = [0, 1, 40, 41, 150, 151, 300]  # uneven batches, one of a single example
    for start, stop in itertools.pairwise(bounds):
        summary.update(
            labels[start:stop],
            sq_distances[start:stop],
            is_val[start:stop],
            thumbnails[start:stop],
        )
    for c in range(k):
        members = [i for i in range(n) if labels[i] == c and not is_val[i]]
        expected = sorted(members, key=lambda i: (sq_distances[i], i))[:per_cluster]
        nearest = summary.nearest(c)
        assert [near.index for near in nearest] == expected
        assert [near.thumbnail for near in nearest] == [thumbnails[i] for i in expected]
        assert [near.sq_distance for near in nearest] == [sq_distances[i] for i in expected]
    assert summary.per_cluster == per_cluster


def test_merged_summaries_equal_one_fed_everything():
    """What a Beam CombineFn does: summaries of parts of the stream, merged in order, are
    the summary of the whole stream."""
    rng = np.random.default_rng(11)
    k, per_cluster, n = 5, 3, 240
    labels, sq_distances, is_val, thumbnails = _stream(rng, n, k)
    tags = [[f"/m/{label}", "/m/all"] for label in labels]
    whole = ClusterSummary(k, per_cluster=per_cluster)
    parts = [ClusterSummary(k, per_cluster=per_cluster) for _ in range(3)]
    for summary, (start, stop) in [
        (whole, (0, n)),
        *zip(parts, [(0, 7), (7, 100), (100, n)], strict=True),
    ]:
        summary.update(
            labels[start:stop],
            sq_distances[start:stop],
            is_val[start:stop],
            thumbnails[start:stop],
            tags[start:stop],
        )
    merged = ClusterSummary(k, per_cluster=per_cluster)
    for part in parts:
        merged.merge(part)
    assert merged.to_json() == whole.to_json()
    assert [merged.nearest(c) for c in range(k)] == [whole.nearest(c) for c in range(k)]
    with pytest.raises(ValueError, match="cannot merge"):
        merged.merge(ClusterSummary(k + 1, per_cluster=per_cluster))


def test_sizes_per_split_and_mean_distance():
    rng = np.random.default_rng(10)
    k, n = 4, 200
    labels, sq_distances, is_val, _ = _stream(rng, n, k)
    summary = ClusterSummary(k)
    assert summary.mean_sq_distance is None
    summary.update(labels[:90], sq_distances[:90], is_val[:90])
    summary.update(labels[90:], sq_distances[90:], is_val[90:])
    for c in range(k):
        assert summary.train_sizes[c] == np.sum((labels == c) & ~is_val)
        assert summary.val_sizes[c] == np.sum((labels == c) & is_val)
    assert summary.sizes.sum() == n
    assert summary.mean_sq_distance == pytest.approx(sq_distances.mean())
    assert summary.clusters_by_size() == sorted(range(k), key=lambda c: (-summary.sizes[c], c))
    assert all(near.thumbnail is None for near in summary.nearest(0))


def test_tag_counts_top_tags_and_json():
    summary = ClusterSummary(3, per_cluster=2)
    summary.update(
        np.array([0, 0, 1, 0, 2]),
        np.array([1.0, 2.0, 3.0, 0.5, 1.0], np.float32),
        np.array([False, True, False, False, False]),
        tags=[["/m/rain", "/m/wind"], ["/m/rain"], ["/m/car"], ["/m/wind", "/m/zzz"], []],
    )
    summary.update(
        np.array([0, 1]),
        np.array([4.0, 0.0], np.float32),
        np.array([False, False]),
        tags=[["/m/rain", "/m/aaa"], ["/m/car", "/m/engine"]],
    )
    # zzz was seen before aaa; the tie is broken by tag id, not by arrival.
    assert summary.top_tags(0) == [("/m/rain", 3), ("/m/wind", 2), ("/m/aaa", 1)]
    assert summary.top_tags(2) == []
    report = summary.to_json({"/m/rain": "Rain", "/m/car": "Car"})
    json.dumps(report)
    assert report["k"] == 3
    assert report["examples"] == {"train": 6, "val": 1, "total": 7}
    assert report["mean_sq_distance"] == pytest.approx(11.5 / 7)
    first = report["clusters"][0]
    assert (first["train"], first["val"], first["total"]) == (3, 1, 4)
    assert first["mean_sq_distance"] == pytest.approx(7.5 / 4)
    assert first["top_tags"][:2] == [
        {"id": "/m/rain", "name": "Rain", "count": 3},
        {"id": "/m/wind", "name": "/m/wind", "count": 2},
    ]
    assert first["nearest"] == [{"index": 3, "sq_distance": 0.5}, {"index": 0, "sq_distance": 1.0}]
    assert [t["name"] for t in report["clusters"][1]["top_tags"]] == ["Car", "/m/engine"]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (([0, 3], [0.0, 0.0], [False, False]), r"lie in \[0, 3\)"),
        (([0, -1], [0.0, 0.0], [False, False]), r"lie in \[0, 3\)"),
        (([0, 1], [0.0], [False, False]), "one length"),
        (([0.0, 1.0], [0.0, 0.0], [False, False]), "integers"),
        (([0, 1], [0.0, 0.0], [0, 1]), "booleans"),
    ],
    ids=["too-big", "negative", "length", "float-labels", "int-is-val"],
)
def test_summary_refuses_malformed_batches(batch, message):
    with pytest.raises(ValueError, match=message):
        ClusterSummary(3).update(*batch)


def test_summary_refuses_thumbnails_of_another_length():
    with pytest.raises(ValueError, match="thumbnails has 1 entries for 2"):
        ClusterSummary(3).update([0, 1], [0.0, 0.0], [False, False], thumbnails=[b"x"])


# ---- plot_montage ---------------------------------------------------------------------


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_montage_writes_a_png_with_every_row(tmp_path):
    red, blue, green = _jpeg((230, 20, 20)), _jpeg((20, 20, 230), (40, 60)), _jpeg((20, 200, 20))
    rows = [
        ("cluster 3 (120)", [red, blue, green, red]),
        ("cluster 0 (80)", [blue]),  # fewer thumbnails than columns: the rest stay blank
        ("cluster 1 (2)", [green, green]),
    ]
    path = tmp_path / "montage.png"
    plot_montage(rows, path, "k-means on texture, k=4")
    assert [p.name for p in tmp_path.iterdir()] == ["montage.png"]
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    # Canvas of 3 rows x 4 columns of 128 x 96 cells, plus titles around it.
    assert width >= 4 * 128 and height >= 3 * 96
    # Locate the canvas by its top-left (red) cell; pixels map 1:1 onto it, so each
    # cell's centre shows its thumbnail's colour, and the missing ones are white.
    rgb = np.round(image[..., :3] * 255).astype(int)
    top, left = np.argwhere(np.abs(rgb - (230, 20, 20)).max(axis=2) < 20).min(axis=0)
    expected = [
        ["red", "blue", "green", "red"],
        ["blue", "white", "white", "white"],
        ["green", "green", "white", "white"],
    ]
    colours = {"red": (230, 20, 20), "blue": (20, 20, 230), "green": (20, 200, 20)}
    colours["white"] = (255, 255, 255)
    for r, names in enumerate(expected):
        for c, name in enumerate(names):
            centre = rgb[top + r * 100 + 48, left + c * 132 + 64]
            assert np.abs(centre - colours[name]).max() < 20, (r, c, name, centre)


def test_montage_of_thirty_rows_of_eight(tmp_path):
    frames = [_jpeg((i * 8, 255 - i * 8, (i * 50) % 256), (160, 120)) for i in range(30)]
    rows = [(f"cluster {i} ({1000 - i})", frames[i : i + 8]) for i in range(30)]
    plot_montage(rows, tmp_path / "big.png", "30 x 8")
    assert matplotlib.image.imread(tmp_path / "big.png").shape[0] >= 30 * 96


def test_a_thumbnail_that_does_not_decode_is_a_grey_cell(tmp_path):
    plot_montage([("broken", [b"not a jpeg"])], tmp_path / "m.png", "one broken frame")
    rgb = np.round(matplotlib.image.imread(tmp_path / "m.png")[..., :3] * 255).astype(int)
    assert (np.abs(rgb - 160).max(axis=2) < 3).sum() > 0.9 * 128 * 96


def test_montage_needs_rows(tmp_path):
    with pytest.raises(ValueError, match="at least one row"):
        plot_montage([], tmp_path / "none.png", "empty")
    assert list(tmp_path.iterdir()) == []
