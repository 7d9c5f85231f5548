"""Flags shared by tfambient-prepare and tfambient-cluster: how sounds become labels."""

from __future__ import annotations

from absl import flags

from tfambient.cluster import REDUCIBLE_SETTINGS, LabelSettings

_DEFAULTS = LabelSettings()

flags.DEFINE_list(
    "num_clusters",
    [str(k) for k in _DEFAULTS.num_clusters],
    "K of k-means, one label field label/<descriptor>_k<K> per descriptor and K "
    "(e.g. 2,5,10,30,60 for the cluster-count sweep). Left at the default, K is lowered to "
    "the distinct descriptors of a smaller sample, with a warning; a K given that the "
    "sample cannot support is an error.",
)
flags.DEFINE_integer(
    "num_bits",
    _DEFAULTS.num_bits,
    "Bits of Owens' binary codes (PCA to this many dimensions, sign of each): the field "
    "label/<descriptor>_bits<B>. 0 turns them off. Left at the default, B is lowered to "
    "what a smaller sample allows (its size or varying dims), with a warning; a B given "
    "that the sample cannot support is an error.",
    lower_bound=0,
)
flags.DEFINE_integer(
    "kmeans_max_samples",
    _DEFAULTS.max_samples,
    "Fit the scaler, k-means and PCA on at most this many train frames, chosen by a hash of "
    "their id (memory: this many x the descriptor's size x 4 bytes); every frame is then "
    "labelled in a streaming pass.",
    lower_bound=1,
)
flags.DEFINE_integer(
    "kmeans_n_init", _DEFAULTS.n_init, "k-means restarts; the best is kept.", lower_bound=1
)
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Random seed of k-means and PCA.")
flags.DEFINE_integer(
    "montage_per_cluster",
    _DEFAULTS.montage_per_cluster,
    "Frames shown per cluster in clusters/<descriptor>_k<K>.png (the frames nearest the centroid).",
    lower_bound=1,
)


def label_settings() -> LabelSettings:
    """The parsed flags as settings; a bad K is a user error (ValueError). A K or a number
    of bits not given (on the command line or in a flagfile) is a default, which the fit
    lowers where the sample cannot support it."""
    values = flags.FLAGS
    try:
        ks = tuple(int(k) for k in values.num_clusters)
    except ValueError as error:
        raise ValueError(f"--num_clusters must be integers: {error}") from None
    return LabelSettings(
        num_clusters=ks,
        num_bits=values.num_bits,
        max_samples=values.kmeans_max_samples,
        n_init=values.kmeans_n_init,
        seed=values.seed,
        montage_per_cluster=values.montage_per_cluster,
        reducible=frozenset(name for name in REDUCIBLE_SETTINGS if not values[name].present),
    )
