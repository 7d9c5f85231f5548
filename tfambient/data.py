"""The input path of every task: records to batches of model input (see docs/prepare.md).

As in the TF Model Garden's vision dataloaders, reading is split in two, joined by one
function, :func:`batches`, that every task's input goes through:

* a decoder turns a source into records {"image": JPEG bytes, "label": targets}:
  :class:`ShardDecoder` the prepared shard files of a split (parsed in batches with
  tf.io.parse_example and checked against the record counts of dataset.json, so that a damaged
  shard is named rather than reported as "corrupted record at 82989"); :class:`PairDecoder`
  a dataset of (JPEG, targets) pairs (the VOC images; image files, :func:`image_files`);
  :class:`ArrayDecoder` the rows of float16 .npy shards (a probe's cached features, the
  "image" of its records);
* a parser turns a record's JPEG and a seed into the model's input, a standardized float32
  image: :func:`train_crop` (a random crop, decoding only the crop, flip and colour jitter),
  :func:`eval_crop` (the central 87.5 %: at the stored short side of 256 that is ResNet's
  "resize to 256, centre-crop 224", with no resampling at image_size 224),
  :func:`any_eval_crop` (the same of an image file of any format), :func:`test_crops` (VOC's
  several random crops per test image) and :func:`feature_rows` (a cached row, as float32).

:func:`pretext_dataset` is the pretext task's input; tfambient.tasks.voc builds VOC's, and
tfambient.features and tfambient.tasks.probe the probe's, from the same pieces.

Distribution: under `distribute_datasets_from_function` each input pipeline reads a disjoint
part of the source: whole files when there are at least as many files as pipelines, else
(a few files, many hosts; or a single source such as VOC's) every file, keeping record j of
each file when j % pipelines is its id. It batches
`input_context.get_per_replica_batch_size(global_batch_size)`.

Determinism: training is nondeterministic (parallel reads and maps hand out whatever is ready
first) unless a seed is given, or `deterministic=True`; with a seed and deterministic, two runs
give the same batches. Each pipeline draws its file order, record order and augmentation from
three seeds derived from (seed, pipeline id). Every random draw is a stateless op keyed by a
per-record seed, from `tf.data.Dataset.random` in training and (seed, record index) in
evaluation, so parallelism alone never changes the result. Evaluation is always deterministic
and reads each record once. An iterator over a training pipeline is saved and restored by
tf.train.Checkpoint (the trainer checkpoints it): its position in the files, the shuffle
buffers, the random stream and the batches it prepared ahead; restored, a deterministic
pipeline goes on with the very batches it would have given.

Corrupt data. A shard that stops early (a CRC failure, a truncation) or holds a record whose
JPEG does not start with an SOI and end with an EOI marker is, by default, an error when the
pipeline finishes reading that file: `tf.errors.InvalidArgumentError`, whose message starts
"corrupt shard <path>". With `skip_corrupt=True` these records are skipped, a line naming the
shard is printed to stderr, and their number is added to `skipped`, a variable made by
`skip_counter()`; the loop reads it with `int(skipped.numpy())`. A record is counted each time
a pass meets it (once per epoch). Rarer JPEGs with intact markers that libjpeg still rejects (a
damaged header) cannot be told apart before decoding: they raise TensorFlow's "jpeg::Uncompress
failed" without the shard's name, or with `skip_corrupt=True` are dropped by `ignore_errors`,
which logs them but cannot count them. A listed shard that does not exist is a
FileNotFoundError as soon as the dataset is built, whatever skip_corrupt says.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import tensorflow as tf

from tfambient.contracts import records as keys
from tfambient.contracts.manifest import DATASET_FILE, SPLITS, Manifest

# ImageNet statistics of RGB in [0, 1]: the backbones and the VOC fine-tuning use the same
# standardization, so features transfer without re-normalising.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CENTRE_CROP = 0.875
SHUFFLE_BUFFER = 2048
# Records are parsed this many at a time: one parse_example call per batch costs far less
# than one parse per record.
_PARSE_BATCH = 64
_MAX_CYCLE = 16
_JPEG_START = b"\xff\xd8\xff"
_JPEG_END = b"\xff\xd9"


@dataclass(frozen=True)
class LabelSpec:
    """A label field of the schema: K cluster ids ("classes") or B sign bits ("bits")."""

    field: str
    kind: Literal["classes", "bits"]
    size: int

    @property
    def length(self) -> int:
        """Values per record in the shard."""
        return 1 if self.kind == "classes" else self.size

    def convert(self, values: tf.Tensor) -> tf.Tensor:
        """Parsed int64 (n, length) to the model's targets: int32 (n,) ids or float32 (n, B)."""
        if self.kind == "classes":
            return tf.cast(values[:, 0], tf.int32)
        return tf.cast(values, tf.float32)


@dataclass(frozen=True)
class Augment:
    """Training augmentation; evaluation uses only image_size.

    color_jitter is a strength in [0, 1] (0: off) scaling SimCLR's jitter: brightness ±0.8s,
    contrast and saturation ×[1 - 0.8s, 1 + 0.8s], hue ±0.2s, applied in that order.
    """

    image_size: int = 224
    area_range: tuple[float, float] = (0.08, 1.0)
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    color_jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, not {self.image_size}")
        if not 0 < self.area_range[0] <= self.area_range[1] <= 1:
            raise ValueError(f"area_range must be 0 < low <= high <= 1, not {self.area_range}")
        if not 0 < self.aspect_range[0] <= self.aspect_range[1]:
            raise ValueError(f"aspect_range must be 0 < low <= high, not {self.aspect_range}")
        if not 0 <= self.color_jitter <= 1:
            raise ValueError(f"color_jitter must be in [0, 1], not {self.color_jitter}")


@dataclass(frozen=True)
class _Share:
    """The part of the split one input pipeline reads: files, or records of every file."""

    pipelines: int
    index: int
    by_record: bool

    def mine(self, index: tf.Tensor) -> tf.Tensor:
        """Which of a file's records (by index in the file) this pipeline keeps."""
        if not self.by_record:
            return tf.ones_like(index, tf.bool)
        return tf.equal(index % self.pipelines, self.index)

    def mine_below(self, n: tf.Tensor) -> tf.Tensor:
        """How many of a file's first n records this pipeline keeps."""
        if not self.by_record:
            return n
        return (n - self.index + self.pipelines - 1) // self.pipelines


@dataclass(frozen=True)
class _Reading:
    """How one input pipeline reads a source: its share, its files in a shuffled order (by
    ``seed``) or not, once or repeated, in a deterministic order or as they come."""

    share: _Share
    shuffle_files: bool
    seed: int | None
    repeat: bool
    deterministic: bool


@dataclass(frozen=True)
class _Corrupt:
    """What to do about damaged records: raise, or skip them and count them in `skipped`."""

    skip: bool
    skipped: tf.Variable | None


def label_spec(data_dir: str | Path, label: str) -> LabelSpec:
    """The label named "texture_k30", "label/texture_k30" or "mfcc_bits30" in dataset.json."""
    name = Manifest.read(data_dir).label(label)
    return LabelSpec(name.key, "classes" if name.kind == "k" else "bits", name.size)


def _shards(data_dir: str | Path, split: str) -> list[tuple[str, int]]:
    """(path, records) of the split's non-empty shards, in dataset.json's order.

    Missing files are refused here: TFRecordDataset.ignore_errors would retry a file that
    cannot be opened forever (so a shard deleted during training hangs the pipeline, with a
    warning logged on every try).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    shards = [
        (str(Path(data_dir) / shard.path), shard.records)
        for shard in Manifest.read(data_dir).shards(split)
        if shard.records > 0
    ]
    if not shards:
        raise ValueError(f"{Manifest.path(data_dir)} lists no {split} records")
    missing = [path for path, _ in shards if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} {split} shards missing: {', '.join(missing)}")
    return shards


def shard_files(data_dir: str | Path, split: str) -> list[str]:
    """The split's non-empty shard files; empty ones would only cost interleave slots."""
    return [path for path, _ in _shards(data_dir, split)]


def skip_counter() -> tf.Variable:
    """A counter for skip_corrupt, on the host CPU where input pipelines run.

    Make it outside strategy.scope(), or it becomes a mirrored variable.
    """
    with tf.device("/cpu:0"):
        return tf.Variable(0, dtype=tf.int64, trainable=False, name="skipped_records")


def standardize(images: tf.Tensor) -> tf.Tensor:
    """RGB in [0, 255] (uint8 or float) to float32 standardized with ImageNet's mean and std."""
    mean = tf.constant(IMAGENET_MEAN) * 255.0
    scale = 1.0 / (tf.constant(IMAGENET_STD) * 255.0)
    return (tf.cast(images, tf.float32) - mean) * scale


def image_grid(images: tf.Tensor, n: int) -> tf.Tensor:
    """The first n standardized images back as uint8 (n, H, W, 3), for tf.summary.image."""
    rgb = images[:n] * tf.constant(IMAGENET_STD) + tf.constant(IMAGENET_MEAN)
    return tf.cast(tf.round(tf.clip_by_value(rgb * 255.0, 0.0, 255.0)), tf.uint8)


def _parse(serialized: tf.Tensor, label: LabelSpec | None) -> dict[str, tf.Tensor]:
    """A batch of records to {"image": JPEG bytes, "label": targets}; only these are parsed."""
    spec = {keys.IMAGE: tf.io.FixedLenFeature([], tf.string)}
    if label is not None:
        spec[label.field] = tf.io.FixedLenFeature([label.length], tf.int64)
    features = tf.io.parse_example(serialized, spec)
    parsed = {"image": features[keys.IMAGE]}
    if label is not None:
        parsed["label"] = label.convert(features[label.field])
    return parsed


def _whole_jpeg(encoded: tf.Tensor) -> tf.Tensor:
    """Whether each string starts like a JPEG and ends with its EOI marker (not truncated)."""
    length = tf.strings.length(encoded)
    two = tf.fill(tf.shape(length), 2)
    starts = tf.equal(tf.strings.substr(encoded, 0, len(_JPEG_START)), _JPEG_START)
    ends = tf.equal(tf.strings.substr(encoded, tf.maximum(length - 2, 0), two), _JPEG_END)
    return starts & ends


def _corrupt_message(
    path: tf.Tensor, expected: tf.Tensor, read: tf.Tensor, bad: tf.Tensor
) -> tf.Tensor:
    numbers = [tf.strings.as_string(x) for x in (expected, read, bad)]
    return tf.strings.join(
        [
            "corrupt shard ",
            path,
            f": {DATASET_FILE} lists ",
            numbers[0],
            " records, ",
            numbers[1],
            " could be read, ",
            numbers[2],
            " of them without a whole JPEG",
        ]
    )


def _end_of_file(
    path: tf.Tensor,
    expected: tf.Tensor,
    read: tf.Tensor,
    bad: tf.Tensor,
    share: _Share,
    corrupt: _Corrupt,
) -> tf.Operation:
    """Raise, or report and count, what this pipeline lost of a file."""
    lost = tf.maximum(share.mine_below(expected) - share.mine_below(read), 0) + bad
    damaged = tf.not_equal(read, expected) | (bad > 0)
    message = _corrupt_message(path, expected, read, bad)
    if not corrupt.skip:
        hint = " (skip_corrupt=True skips such records)"
        return tf.debugging.Assert(~damaged, [tf.strings.join([message, hint])])

    def report() -> tf.Operation:
        ops = [tf.print(tf.strings.join([message, "; skipped ", tf.strings.as_string(lost)]))]
        if corrupt.skipped is not None:
            ops.append(corrupt.skipped.assign_add(lost))
        return tf.group(ops)

    return tf.cond(damaged, report, tf.no_op)


def _file_records(
    path: tf.Tensor,
    expected: tf.Tensor,
    label: LabelSpec | None,
    share: _Share,
    corrupt: _Corrupt,
) -> tf.data.Dataset:
    """This pipeline's whole records of one file, checked against the count dataset.json lists.

    A TFRecordDataset stops at a file's first bad record (ignore_errors then goes on to the
    next file), so a damaged file shows as fewer records than listed. An empty batch marks
    the end of the file, where a scan that counted the records settles the account.
    """

    def step(state, batch):
        read, bad = state
        parsed, end = batch
        whole = _whole_jpeg(parsed["image"])
        mine = share.mine(read + tf.range(tf.size(whole, tf.int64)))
        read += tf.size(whole, tf.int64)
        bad += tf.math.count_nonzero(mine & ~whole)
        checked = tf.cond(
            end,
            lambda: _end_of_file(path, expected, read, bad, share, corrupt),
            tf.no_op,
        )
        with tf.control_dependencies([checked]):
            kept = tf.nest.map_structure(lambda x: tf.boolean_mask(x, mine & whole), parsed)
        return (read, bad), kept

    batches = (
        tf.data.TFRecordDataset(path)
        .ignore_errors(log_warning=True)
        .batch(_PARSE_BATCH)
        .map(lambda records: (_parse(records, label), False))
    )
    end = tf.data.Dataset.from_tensors((_parse(tf.zeros([0], tf.string), label), True))
    zero = tf.constant(0, tf.int64)
    return batches.concatenate(end).scan((zero, zero), step).unbatch()


def _pipeline_files(files: tf.data.Dataset, count: int, reading: _Reading) -> tf.data.Dataset:
    """The ``count`` files this pipeline reads: its share of them when pipelines take whole
    files, in a shuffled order in training, repeated if asked."""
    share = reading.share
    if share.pipelines > 1 and not share.by_record:
        files = files.shard(share.pipelines, share.index)
    if reading.shuffle_files:
        files = files.shuffle(count, seed=reading.seed, reshuffle_each_iteration=True)
    if reading.repeat:
        files = files.repeat()
    return files


class Decoder(Protocol):
    """Where records come from: ``files`` units that pipelines can be given whole, and
    ``records``, one pipeline's share of them as {"image": JPEG bytes, "label": targets}."""

    files: int

    def records(self, reading: _Reading) -> tf.data.Dataset: ...


@dataclass(frozen=True)
class ShardDecoder:
    """The prepared TFRecord shards of a split, parsed a batch at a time and checked against
    the record counts of dataset.json (see the module docstring)."""

    shards: list[tuple[str, int]]
    label: LabelSpec | None
    corrupt: _Corrupt = _Corrupt(skip=False, skipped=None)

    @property
    def files(self) -> int:
        return len(self.shards)

    def records(self, reading: _Reading) -> tf.data.Dataset:
        """This pipeline's records, its files interleaved (in a shuffled order in training)."""
        share = reading.share
        paths, counts = zip(*self.shards, strict=True)
        files = tf.data.Dataset.from_tensor_slices((list(paths), np.array(counts, np.int64)))
        files = _pipeline_files(files, self.files, reading)
        read_file = functools.partial(
            _file_records, label=self.label, share=share, corrupt=self.corrupt
        )
        return files.interleave(
            read_file,
            cycle_length=min(self.files, _MAX_CYCLE),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=reading.deterministic,
        )


@dataclass(frozen=True)
class PairDecoder:
    """A dataset of (JPEG bytes, targets) pairs made by ``pairs`` (VocSplit.dataset): one
    source, so pipelines share it record by record."""

    pairs: Callable[[], tf.data.Dataset]
    files: int = 1

    def records(self, reading: _Reading) -> tf.data.Dataset:
        """This pipeline's records, in the source's order (the record shuffle reorders them)."""
        pairs = self.pairs()
        if reading.share.by_record:
            pairs = pairs.shard(reading.share.pipelines, reading.share.index)
        if reading.repeat:
            pairs = pairs.repeat()
        return pairs.map(lambda image, label: {"image": image, "label": label})


def image_files(paths: Sequence[str], labels: np.ndarray) -> Callable[[], tf.data.Dataset]:
    """A PairDecoder's source of image files: (the file's bytes, its label) in list order."""

    def pairs() -> tf.data.Dataset:
        files = tf.data.Dataset.from_tensor_slices((list(paths), labels))
        return files.map(
            lambda path, label: (tf.io.read_file(path), label),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    return pairs


@dataclass(frozen=True)
class ArrayShard:
    """A float16 (rows, dims) .npy file: where its values start, and how many rows it has."""

    path: str
    offset: int
    rows: int
    dims: int

    @classmethod
    def of(cls, path: str | Path) -> ArrayShard:
        """The shard at ``path``, its header read (ValueError if it is no C-order float16
        matrix)."""
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is None:
                raise ValueError(f"{path}: .npy version {version} is not read here")
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if dtype != np.float16 or fortran or len(shape) != 2:
            raise ValueError(f"{path}: not a C-order float16 matrix ({dtype}, {shape})")
        return cls(str(path), offset, int(shape[0]), int(shape[1]))


@dataclass(frozen=True)
class ArrayDecoder:
    """Rows of float16 .npy shards (cached features), read in-graph: {"image": the row,
    "label": its label}. ``labels`` (and ``keep``, which rows are read) go over the shards'
    rows concatenated. Shards are files: pipelines take whole shards when there are enough."""

    shards: tuple[ArrayShard, ...]
    labels: np.ndarray
    keep: np.ndarray

    @property
    def files(self) -> int:
        return len(self.shards)

    def records(self, reading: _Reading) -> tf.data.Dataset:
        share = reading.share
        dims = self.shards[0].dims
        rows = np.array([shard.rows for shard in self.shards], np.int64)
        files = tf.data.Dataset.from_tensor_slices(
            (
                [shard.path for shard in self.shards],
                np.array([shard.offset for shard in self.shards], np.int64),
                np.cumsum(rows) - rows,
                rows,
            )
        )
        files = _pipeline_files(files, self.files, reading)
        labels, keep = tf.constant(self.labels), tf.constant(self.keep)

        def read(path, offset, start, count):
            raw = tf.strings.substr(tf.io.read_file(path), offset, count * dims * 2)
            values = tf.reshape(tf.io.decode_raw(raw, tf.float16), [count, dims])
            mine = share.mine(tf.range(count)) & keep[start : start + count]
            return tf.data.Dataset.from_tensor_slices(
                {
                    "image": tf.boolean_mask(values, mine),
                    "label": tf.boolean_mask(labels[start : start + count], mine),
                }
            )

        return files.interleave(
            read,
            # Evaluation reads the shards one after another: rows in order.
            cycle_length=min(self.files, _MAX_CYCLE) if reading.shuffle_files else 1,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=reading.deterministic,
        )


def _crop_and_decode(encoded: tf.Tensor, begin: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Decode only the window of the JPEG (libjpeg skips the rest), as uint8 RGB."""
    window = tf.stack([begin[0], begin[1], size[0], size[1]])
    return tf.io.decode_and_crop_jpeg(encoded, window, channels=3)


def _color_jitter(image: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """SimCLR's colour distortion, scaled by strength, on RGB in [0, 1]."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    change = 0.8 * strength
    image = tf.image.stateless_random_brightness(image, change, seeds[0])
    image = tf.image.stateless_random_contrast(image, 1 - change, 1 + change, seeds[1])
    image = tf.image.stateless_random_saturation(image, 1 - change, 1 + change, seeds[2])
    image = tf.image.stateless_random_hue(image, 0.2 * strength, seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def train_image(encoded: tf.Tensor, seed: tf.Tensor, augment: Augment) -> tf.Tensor:
    """Inception-style random crop of the JPEG, resized, flipped, jittered, standardized."""
    crop_seed, flip_seed, jitter_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.io.extract_jpeg_shape(encoded),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=crop_seed,
        min_object_covered=0.0,
        aspect_ratio_range=augment.aspect_range,
        area_range=augment.area_range,
        max_attempts=10,
    )
    image = _crop_and_decode(encoded, begin, size)
    image = tf.image.resize(image, [augment.image_size, augment.image_size])
    if augment.flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    if augment.color_jitter:
        image = _color_jitter(image / 255.0, augment.color_jitter, jitter_seed) * 255.0
    return standardize(image)


def _central_square(shape: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(top-left corner, side) of the central CENTRE_CROP square of an image of ``shape``."""
    short = tf.minimum(shape[0], shape[1])
    side = tf.maximum(tf.cast(CENTRE_CROP * tf.cast(short, tf.float32), tf.int32), 1)
    return tf.stack([(shape[0] - side) // 2, (shape[1] - side) // 2]), side


def eval_image(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """The central CENTRE_CROP square of the JPEG, resized and standardized."""
    begin, side = _central_square(tf.io.extract_jpeg_shape(encoded))
    image = _crop_and_decode(encoded, begin, tf.stack([side, side]))
    return standardize(tf.image.resize(image, [image_size, image_size]))


def any_eval_image(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """:func:`eval_image` of a file in any format TensorFlow decodes (JPEG, PNG, BMP, GIF's
    first frame), decoded whole: a folder of images is not always JPEGs."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    begin, side = _central_square(tf.shape(image))
    image = tf.image.crop_to_bounding_box(image, begin[0], begin[1], side, side)
    return standardize(tf.image.resize(image, [image_size, image_size]))


Parser = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (JPEG bytes, seed (2,)) -> input


def train_crop(augment: Augment) -> Parser:
    """Training's input: a random crop, flipped and jittered as ``augment`` says."""
    return lambda encoded, seed: train_image(encoded, seed, augment)


def eval_crop(image_size: int) -> Parser:
    """Evaluation's input: the central crop (the seed is not used)."""
    return lambda encoded, seed: eval_image(encoded, image_size)


def any_eval_crop(image_size: int) -> Parser:
    """Evaluation's input from an image file of any format: the central crop."""
    return lambda encoded, seed: any_eval_image(encoded, image_size)


def feature_rows() -> Parser:
    """A linear probe's input: a row of cached features, as float32 (the seed is not used)."""
    return lambda row, seed: tf.cast(row, tf.float32)


def test_crops(augment: Augment, crops: int) -> Parser:
    """VOC's test input, (crops, S, S, 3): ``crops`` random crops drawn as in training from
    the record's seed, so that a test is repeatable; one crop is the central one."""
    if crops == 1:
        return lambda encoded, seed: eval_image(encoded, augment.image_size)[None]

    def parse(encoded: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        seeds = tf.unstack(tf.random.experimental.stateless_split(seed, crops))
        return tf.stack([train_image(encoded, crop_seed, augment) for crop_seed in seeds])

    return parse


def _seeds(seed: int | None, pipeline: int) -> tuple[int | None, int | None, int | None]:
    """Independent seeds for file order, record order and augmentation of one pipeline."""
    if seed is None:
        return None, None, None
    files, records, augment = np.random.SeedSequence([seed, pipeline]).generate_state(3)
    return int(files), int(records), int(augment)


def _record_seeds(seed: int | None) -> tf.data.Dataset:
    """Evaluation's per-record seeds, (seed, index in the pass): the same every pass."""
    first = tf.constant(seed or 0, tf.int64)
    return tf.data.Dataset.counter().map(lambda index: tf.stack([first, index]))


def batches(
    decoder: Decoder,
    parse: Parser,
    global_batch_size: int,
    *,
    training: bool,
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    repeat: bool | None = None,
    deterministic: bool | None = None,
    drop_remainder: bool | None = None,
    shuffle_buffer: int = SHUFFLE_BUFFER,
    skip_errors: bool = False,
) -> tf.data.Dataset:
    """(parse(image, seed), label) batches of one input pipeline: every task's input path.

    The pipeline reads its share of the decoder's records (module docstring: Distribution) and
    batches ``input_context.get_per_replica_batch_size(global_batch_size)``. In training the
    records are shuffled and each gets a seed from the pipeline's random stream; in evaluation
    record i of a pass gets (seed, i). repeat and drop_remainder default to ``training``;
    deterministic to ``seed is not None`` for training and to True for evaluation.
    skip_errors drops the examples whose parsing fails (a JPEG libjpeg rejects).
    """
    if global_batch_size < 1:
        raise ValueError(f"global_batch_size must be positive, not {global_batch_size}")
    repeat = training if repeat is None else repeat
    drop_remainder = training if drop_remainder is None else drop_remainder
    if deterministic is None:
        deterministic = seed is not None or not training
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline = input_context.input_pipeline_id if input_context else 0
    files_seed, records_seed, augment_seed = _seeds(seed, pipeline)
    share = _Share(pipelines, pipeline, by_record=decoder.files < pipelines)
    reading = _Reading(
        share, shuffle_files=training, seed=files_seed, repeat=repeat, deterministic=deterministic
    )
    records = decoder.records(reading)
    if training:
        records = records.shuffle(shuffle_buffer, seed=records_seed)
        seeds = tf.data.Dataset.random(augment_seed, rerandomize_each_iteration=True).batch(2)
    else:
        seeds = _record_seeds(seed)
    examples = tf.data.Dataset.zip(records, seeds).map(
        lambda record, seed: (parse(record["image"], seed), record["label"]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if skip_errors:
        examples = examples.ignore_errors(log_warning=True)
    batch_size = (
        input_context.get_per_replica_batch_size(global_batch_size)
        if input_context
        else global_batch_size
    )
    batched = examples.batch(
        batch_size,
        drop_remainder=drop_remainder,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    ).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = deterministic
    # A checkpoint of the iterator leaves out the skip_corrupt counter, which the pipeline only
    # adds to (the trainer checkpoints the variable with the rest of the run).
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    return batched.with_options(options)


def pretext_dataset(
    data_dir: str | Path,
    split: str,
    label: LabelSpec,
    global_batch_size: int,
    *,
    training: bool,
    augment: Augment = Augment(),
    seed: int | None = None,
    input_context: tf.distribute.InputContext | None = None,
    skip_corrupt: bool = False,
    skipped: tf.Variable | None = None,
    repeat: bool | None = None,
    deterministic: bool | None = None,
    drop_remainder: bool | None = None,
    shuffle_buffer: int = SHUFFLE_BUFFER,
) -> tf.data.Dataset:
    """(images float32 (b, S, S, 3) standardized, labels) for the pretext task.

    Random crops for training, central crops for evaluation; the other arguments are
    :func:`batches`'. skipped: see skip_counter and the module docstring.
    """
    decoder = ShardDecoder(_shards(data_dir, split), label, _Corrupt(skip_corrupt, skipped))
    return batches(
        decoder,
        train_crop(augment) if training else eval_crop(augment.image_size),
        global_batch_size,
        training=training,
        seed=seed,
        input_context=input_context,
        repeat=repeat,
        deterministic=deterministic,
        drop_remainder=drop_remainder,
        shuffle_buffer=shuffle_buffer,
        skip_errors=skip_corrupt,
    )


def decode_only_dataset(data_dir: str | Path, split: str, batch_size: int) -> tf.data.Dataset:
    """One pass of parse + decode_jpeg, no augmentation: the bound on any pipeline's speed.

    uint8 RaggedTensor batches (b, None, None, 3): each image at its stored size.
    """
    reading = _Reading(
        _Share(1, 0, by_record=False),
        shuffle_files=False,
        seed=None,
        repeat=False,
        deterministic=False,
    )
    records = ShardDecoder(_shards(data_dir, split), None).records(reading)
    images = records.map(
        lambda record: tf.io.decode_jpeg(record["image"], channels=3),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    return images.ragged_batch(batch_size).prefetch(tf.data.AUTOTUNE)
