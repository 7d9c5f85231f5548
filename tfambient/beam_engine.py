"""The Apache Beam engine: tfambient-prepare and tfambient-cluster on any Beam runner.

The same stage as the local engine (prepare.LocalEngine), calling the same functions, as
Beam pipelines that a runner schedules, retries and scales: the Python DirectRunner on
this machine, or Dataflow, Flink, Spark on many.

* Extraction: one pipeline takes the clips the launcher found (``prepare.locate``), copies
  each to the worker's local disk when it lives on another filesystem, and extracts it with
  the local engine's ``prepare.ExtractionPool``: ``extract.extract_clips`` in a child
  process, so a decoder that kills its process costs that clip only ("crashed"), never the
  worker or the job. The records go through Beam's TFRecord sink, each clip's outcome to
  a JSON-lines file; when the pipeline has finished, the launcher commits them as one part
  (a sidecar listing the files), so a run killed part-way leaves nothing committed and a
  rerun does that work again, neither losing nor doubling a record.
* Labelling: a pipeline gathers the frames of the bounded hashed fit sample
  (``labelling.sampled``); the launcher fits the labelers on them (``labelling.fit``, the
  same sample as the local engine's); a second pipeline labels every record with the
  models as a side input (``labelling.label_batch``), routes it to its split and shard by
  the same hash, writes each shard whole (sorted by clip and frame, so the shards do not
  depend on the runner's order), and combines the cluster summaries the montages need
  (``ClusterSummary.merge`` in a CombineFn). The launcher then writes clusters/ and
  dataset.json as the local engine does.

Nothing assumes one shared disk: the CSV, the media and the output may be on any
filesystem Beam's FileSystems reads (gs://, s3://, hdfs://, or a plugin's, named with the
option beam_plugins). For an output there, the launcher keeps the small files (dataset.json,
the CSV lists, sidecars, clusters/) in a local mirror and copies them back; workers write
the records and shards there directly.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from tfambient import audioset, extract, labelling, prepare
from tfambient.audioset import ClipFile, MediaIndex
from tfambient.cluster import ClusterSummary, LabelSettings
from tfambient.contracts import records as keys
from tfambient.contracts.files import is_partial, is_url, temporary_name
from tfambient.contracts.workdirs import DataDir
from tfambient.extract import ClipResult, ExtractSettings, Failure

_level = logging.getLogger().level
try:
    logging.getLogger().setLevel(logging.ERROR)  # Beam's import warns of clients we do not use
    import apache_beam as beam
    from apache_beam.io.filesystem import BeamIOError
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.tfrecordio import _TFRecordUtil
    from apache_beam.options.pipeline_options import (
        PipelineOptions,
        SetupOptions,
        StandardOptions,
    )
except ImportError as error:  # the CLI turns this into one line
    raise ImportError(
        "--engine=beam needs Apache Beam: pip install 'tfambient[beam]' "
        f"(apache-beam[tfrecord]); {error}"
    ) from None
finally:
    logging.getLogger().setLevel(_level)

logger = logging.getLogger(__name__)
# The runner's and the workers' INFO lines (every bundle, every worker start) would bury
# the command's own; their warnings and errors still show.
logging.getLogger("apache_beam").setLevel(logging.WARNING)

# What the user names the Python DirectRunner by. Beam's own "DirectRunner" first tries
# the Prism runner, whose binary it downloads at run time: never on a machine offline.
DIRECT_RUNNERS = ("directrunner", "direct")
# Clips handed to a worker's extraction child at a time (at least a few, to keep it busy),
# and records labelled together.
MIN_EXTRACT_BATCH = 4
EXTRACT_BATCH = 16
LABEL_BATCH = 256
# The launcher's own files of a data directory, mirrored when it is on another filesystem.
SMALL_SUFFIXES = (".json", ".csv", ".npz", ".png")
# Every file the engine's pipelines write outside the final layout lives under a
# directory so named, and is removed when its run is committed or by the next run.
RUN_PREFIX = "beam-"


class BeamOptionsError(ValueError):
    """--beam_pipeline_options that cannot be read."""


# ---------------------------------------------------------------------- options, runner


def pipeline_options(text: str, num_workers: int = 0) -> PipelineOptions:
    """Beam options from TensorFlow Datasets' comma-separated ``key=value`` list.

    No runner named means the Python DirectRunner in ``num_workers`` processes (0: one
    per core); beam_plugins are imported here too, so that a FileSystem they register
    serves the launcher as it serves the workers.
    """
    pairs = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, equals, value = item.partition("=")
        if not equals or not key:
            raise BeamOptionsError(
                f"--beam_pipeline_options: {item!r} is not key=value "
                "(e.g. runner=DirectRunner,direct_num_workers=2)"
            )
        pairs[key.strip().removeprefix("--")] = value.strip()
    pairs.setdefault("runner", "DirectRunner")
    pairs.setdefault("default_sdk_harness_log_level", "ERROR")
    if pairs["runner"].lower() in DIRECT_RUNNERS:
        pairs.setdefault("direct_running_mode", "multi_processing")
        pairs.setdefault("direct_num_workers", str(num_workers))
    options = PipelineOptions([f"--{key}={value}" for key, value in pairs.items()])
    for plugin in options.view_as(SetupOptions).beam_plugins or []:
        try:
            importlib.import_module(plugin)
        except ImportError as error:
            raise BeamOptionsError(f"beam_plugins: cannot import {plugin}: {error}") from None
    return options


def runner_name(options: PipelineOptions) -> str:
    return options.view_as(StandardOptions).runner or "DirectRunner"


def make_runner(options: PipelineOptions):
    """The runner the options name; for the DirectRunner, Beam's Python FnApiRunner as
    Beam's DirectRunner would pick it, without first trying (and downloading) Prism."""
    name = runner_name(options)
    if name.lower() not in DIRECT_RUNNERS:
        return name
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options(drop_default=True))
    info = beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(info))


# ---------------------------------------------------------------------- filesystems


def join(root: str | Path, relative: str) -> str | Path:
    return FileSystems.join(root, relative) if is_url(root) else Path(root) / relative


def list_files(root: str | Path) -> list[tuple[str, int]]:
    """(path, size) of every file under ``root``, recursively, sorted."""
    pattern = FileSystems.join(str(root), "**")
    found = FileSystems.match([pattern])[0].metadata_list
    return sorted((m.path, m.size_in_bytes) for m in found)


def relative_to(root: str | Path, path: str) -> str:
    return path[len(str(root)) :].lstrip("/")


def copy_to(path: str, local: Path) -> Path:
    """A local copy of ``path`` (any filesystem) at ``local``."""
    local.parent.mkdir(parents=True, exist_ok=True)
    with FileSystems.open(path) as source, open(local, "wb") as out:
        shutil.copyfileobj(source, out, 2**20)
    return local


def upload(local: Path, path: str) -> None:
    """Write ``local``'s content to ``path``: complete or not at all on object stores, and
    under a temporary name renamed into place where the filesystem has directories."""
    temporary = temporary_name(path)
    with open(local, "rb") as source, FileSystems.create(temporary) as out:
        shutil.copyfileobj(source, out, 2**20)
    FileSystems.rename([temporary], [path])


def delete(paths: Sequence[str | Path]) -> None:
    if paths:
        FileSystems.delete([str(p) for p in paths])


def remove_tree(root: str | Path) -> None:
    """Every file under ``root``, and the directories where the filesystem has them."""
    delete([p for p, _ in list_files(root)])
    with contextlib.suppress(BeamIOError):  # an object store has no directory to delete
        delete([root])


@contextlib.contextmanager
def local_copies(paths: Sequence[str]) -> Iterator[list[Path]]:
    """Local paths of ``paths``: the files themselves, or temporary copies of remote ones."""
    with tempfile.TemporaryDirectory(prefix="tfambient-") as tmp:
        yield [
            copy_to(p, Path(tmp, str(i), p.rsplit("/", 1)[-1])) if is_url(p) else Path(p)
            for i, p in enumerate(paths)
        ]


def read_segments(paths: Sequence[str]) -> audioset.SegmentTable:
    """audioset.read_segments of CSVs on any filesystem; rows keep naming the CSV given."""
    with local_copies(paths) as local:
        table = audioset.read_segments(local)
    names = {str(copy): str(given) for copy, given in zip(local, paths, strict=True)}
    table.segments = [replace(s, source=names[s.source]) for s in table.segments]
    table.rejected = [replace(r, source=names[r.source]) for r in table.rejected]
    table.dropped_labels = [replace(r, source=names[r.source]) for r in table.dropped_labels]
    table.sources = [names[s] for s in table.sources]
    return table


def index_media(media_dir: str | Path) -> MediaIndex:
    """audioset.index_media, on any filesystem (hidden entries left out as it does)."""
    if not is_url(media_dir):
        return audioset.index_media(media_dir)
    files = [path for path, _ in list_files(media_dir)]
    visible = [
        p for p in files if not any(c.startswith(".") for c in relative_to(media_dir, p).split("/"))
    ]
    if not files:
        raise FileNotFoundError(f"{media_dir}: no media files there")
    return MediaIndex(visible)


class Mirror:
    """A data directory on another filesystem, as the launcher works on it: its small
    files (SMALL_SUFFIXES) in a local directory, copied from there when it opens and back
    (with the ones removed here removed there) when it pushes."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.local = Path(tempfile.mkdtemp(prefix="tfambient-mirror-"))
        self._pulled: set[str] = set()

    def pull(self) -> None:
        for path, _ in list_files(self.url):
            relative = relative_to(self.url, path)
            if self._is_small(relative):
                copy_to(path, self.local / relative)
                self._pulled.add(relative)

    def push(self) -> None:
        here = {
            p.relative_to(self.local).as_posix()
            for p in self.local.rglob("*")
            if p.is_file() and self._is_small(p.relative_to(self.local).as_posix())
        }
        for relative in sorted(here):
            upload(self.local / relative, join(self.url, relative))
        delete([join(self.url, r) for r in sorted(self._pulled - here)])
        self._pulled = here

    @staticmethod
    def _is_small(relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]
        return name.endswith(SMALL_SUFFIXES) and not name.startswith(".")


@contextlib.contextmanager
def mirrored(url: str) -> Iterator[Mirror]:
    """A Mirror of ``url``, pushed back when the block ends (also after an error: what was
    committed stays committed), then removed."""
    mirror = Mirror(url)
    try:
        mirror.pull()
        yield mirror
    finally:
        try:
            mirror.push()
        finally:
            shutil.rmtree(mirror.local, ignore_errors=True)


# ---------------------------------------------------------------------- the engine


class BeamEngine:
    """prepare.LocalEngine's methods as Beam pipelines. ``mirror``: the data directory is
    on another filesystem, and the launcher works on this local mirror of it."""

    name = "beam"

    def __init__(
        self,
        options: PipelineOptions,
        mirror: Mirror | None = None,
        work: prepare.Work = extract.extract_clips,
    ):
        self.options = options
        self.mirror = mirror
        self.work = work

    def root(self, data_dir: Path) -> str | Path:
        return self.mirror.url if self.mirror else data_dir

    def path(self, data_dir: Path, relative: str) -> str | Path:
        return join(self.root(data_dir), relative)

    def total_bytes(self, paths: Iterable[str | Path]) -> int:
        found = FileSystems.match([str(p) for p in paths])
        return sum(m.size_in_bytes for result in found for m in result.metadata_list)

    def index_media(self, media_dir: str | Path) -> MediaIndex:
        return index_media(media_dir)

    def _pipeline(self) -> beam.Pipeline:
        return beam.Pipeline(runner=make_runner(self.options), options=self.options)

    # ------------------------------------------------------------------ extraction

    def extract(
        self,
        jobs: list[prepare.Job],
        store: prepare.PartStore,
        settings: ExtractSettings,
        progress: bool,
    ) -> None:
        """One pipeline over ``jobs``; its records and outcomes committed as one part."""
        data_dir = store.directory.parent.parent  # DATA_DIR/parts/<task>
        task = DataDir(data_dir).relative(store.directory)
        self._remove_uncommitted(data_dir, task, store)
        if not jobs:
            return
        run = f"{task}/{RUN_PREFIX}{uuid.uuid4().hex[:12]}"
        out = self.path(data_dir, run)
        logger.info(
            "extracting %d clips with Apache Beam (%s) into %s",
            len(jobs),
            runner_name(self.options),
            out,
        )
        clips = str(join(out, "clips.jsonl"))
        _write_lines(clips, [job_line(segment, str(clip.path)) for segment, clip in jobs])
        with self._pipeline() as pipeline:
            results = (
                pipeline
                | "clips" >> beam.io.ReadFromText(clips)
                | "parse" >> beam.Map(parse_job)
                | "spread" >> beam.Reshuffle()
                | "batch clips"
                >> beam.BatchElements(
                    min_batch_size=MIN_EXTRACT_BATCH, max_batch_size=EXTRACT_BATCH
                )
                | "extract"
                >> beam.ParDo(ExtractClips(settings, self.work)).with_outputs(
                    "outcomes", main="records"
                )
            )
            _ = results.records | "write records" >> beam.io.WriteToTFRecord(
                str(join(out, "records")), file_name_suffix=".tfrecord"
            )
            _ = results.outcomes | "write outcomes" >> beam.io.WriteToText(
                str(join(out, "outcomes")), file_name_suffix=".jsonl"
            )
        written = [path for path, _ in list_files(out)]
        named = {kind: [p for p in written if p.rsplit("/", 1)[-1].startswith(kind)]
                 for kind in ("records-", "outcomes-")}  # fmt: skip
        root = self.root(data_dir)
        outcomes = [json.loads(line) for path in named["outcomes-"] for line in _read_lines(path)]
        store.commit_files([relative_to(root, p) for p in named["records-"]], outcomes)
        delete([clips, *named["outcomes-"]])

    def _remove_uncommitted(self, data_dir: Path, task: str, store: prepare.PartStore) -> None:
        """What runs killed before their commit left: work to redo, never to count."""
        files = [
            relative_to(self.root(data_dir), p)
            for p, _ in list_files(self.path(data_dir, task))
            if f"/{RUN_PREFIX}" in p
        ]
        leftovers = store.uncommitted(files)
        if leftovers:
            logger.warning("removing %d files of an unfinished Beam run", len(leftovers))
            delete([self.path(data_dir, f) for f in leftovers])

    # ------------------------------------------------------------------ labelling

    def relabel(
        self,
        sources: list[str | Path],
        data_dir: Path,
        descriptors: Sequence[str],
        settings: LabelSettings,
        splits: labelling.Splits,
        *,
        num_train: int,
        total: int,
        names: dict[str, str],
        progress: bool,
    ) -> dict:
        """labelling.relabel's result, the work done by pipelines: gather the fit sample,
        fit on this machine, label and shard."""
        if self.mirror:
            self.mirror.push()  # dataset.json marked stale before the shards change
        self._recover(data_dir)
        work = self.path(data_dir, f"{RUN_PREFIX}work-{uuid.uuid4().hex[:12]}")
        try:
            labelers = self._fit(sources, work, descriptors, settings, splits, num_train, progress)
            labelled = self._label(sources, work, data_dir, labelers, splits, settings)
        finally:
            remove_tree(work)
        return labelling.labelled_view(data_dir, labelers, labelled, names, settings)

    def _fit(self, sources, work, descriptors, settings, splits, num_train, progress):
        """The launcher fits on the frames the sample pipeline gathered: a superset of the
        sample the local engine takes, of which fit_sample keeps the same frames. When the
        sample is every train frame and the records are on this machine's disk, it reads
        them itself, as the local engine does, and saves a pipeline's start."""
        keep = labelling.sample_threshold(settings.max_samples, num_train)
        if keep >= 1.0 and not any(map(is_url, sources)):
            return labelling.fit(sources, descriptors, settings, splits, num_train, progress)
        dims = labelling.descriptor_dims(descriptors)
        logger.info("gathering the fit sample with Apache Beam")
        with self._pipeline() as pipeline:
            _ = (
                _read_batches(pipeline, sources)
                | "sample" >> beam.ParDo(SampleFrames(descriptors, dims, splits, keep))
                | "write sample"
                >> beam.io.WriteToTFRecord(str(join(work, "sample")), file_name_suffix=".tfrecord")
            )
        gathered = [p for p, _ in list_files(work) if p.endswith(".tfrecord")]
        with local_copies(gathered) as local:
            return labelling.fit(local, descriptors, settings, splits, num_train, progress)

    def _label(self, sources, work, data_dir, labelers, splits, settings):
        descriptors = sorted(set(labelers.descriptor_of.values()))
        dims = labelling.descriptor_dims(descriptors)
        staged = self.path(
            data_dir, f"{DataDir.STAGED_SHARDS_PREFIX}{RUN_PREFIX}{uuid.uuid4().hex[:8]}"
        )
        logger.info("labelling and sharding with Apache Beam into %s", staged)
        with self._pipeline() as pipeline:
            models = pipeline | "labelers" >> beam.Create([labelers])
            labelled = _read_batches(pipeline, sources) | "label" >> beam.ParDo(
                LabelRecords(descriptors, dims, splits), beam.pvalue.AsSingleton(models)
            ).with_outputs("summaries", main="records")
            _ = (
                labelled.records
                | "by shard" >> beam.GroupByKey()
                | "write shards" >> beam.ParDo(WriteShard(str(staged)))
                | "write counts"
                >> beam.io.WriteToText(str(join(work, "counts")), file_name_suffix=".jsonl")
            )
            _ = (
                labelled.summaries
                | "summaries" >> beam.CombineGlobally(MergeSummaries(labelers, settings))
                | "write summaries" >> beam.Map(_write_pickle, str(join(work, "summaries.pickle")))
            )
        counts = {}
        for path, _ in list_files(work):
            if path.endswith(".jsonl"):
                counts |= {
                    row["name"]: row["records"] for row in map(json.loads, _read_lines(path))
                }
        for _, name in splits.shard_names():
            if name not in counts:  # a shard no record hashed to: a valid empty file
                FileSystems.create(str(join(staged, name))).close()
        self._swap_in(data_dir, staged)
        with FileSystems.open(str(join(work, "summaries.pickle"))) as f:
            summaries = pickle.load(f)
        shards, frames = labelling.shard_list(splits, counts)
        return labelling.LabelledShards(shards, frames, summaries)

    def _recover(self, data_dir: Path) -> None:
        if not self.mirror:
            labelling.recover(data_dir)
            return
        root = self.mirror.url
        stale = [
            p
            for p, _ in list_files(root)
            if relative_to(root, p).startswith(DataDir.STAGED_SHARDS_PREFIX)
        ]
        delete(stale)

    def _swap_in(self, data_dir: Path, staged: str | Path) -> None:
        """The new shards in place of the old: two renames on a local disk
        (labelling.swap_in); elsewhere old ones deleted, new ones renamed in, while
        dataset.json says the directory is stale."""
        if not self.mirror:
            labelling.swap_in(data_dir, Path(staged))
            return
        shards = str(self.path(data_dir, DataDir.SHARDS_DIR))
        delete([p for p, _ in list_files(shards)])
        with contextlib.suppress(OSError):  # object stores have no directories to make
            FileSystems.mkdirs(shards)
        new = [p for p, _ in list_files(staged) if not is_partial(p)]  # not a failed try's
        FileSystems.rename(new, [str(join(shards, p.rsplit("/", 1)[-1])) for p in new])
        remove_tree(staged)


def job_line(segment: audioset.Segment, path: str) -> str:
    """A clip to extract, as the pipeline reads it: a file, not the pipeline's own graph,
    carries the millions of them (runners cap a job's size)."""
    return json.dumps({"segment": asdict(segment), "path": path})


def parse_job(line: str) -> tuple[audioset.Segment, str]:
    job = json.loads(line)
    fields = job["segment"] | {"labels": tuple(job["segment"]["labels"])}
    return audioset.Segment(**fields), job["path"]


def _write_lines(path: str, lines: Iterable[str]) -> None:
    with FileSystems.create(path) as f:
        for line in lines:
            f.write(line.encode("utf-8") + b"\n")


def _read_lines(path: str) -> list[str]:
    with FileSystems.open(path) as f:
        return [line for line in f.read().decode("utf-8").splitlines() if line.strip()]


def _read_batches(pipeline: beam.Pipeline, sources: Sequence[str | Path]):
    return (
        pipeline
        | "files" >> beam.Create([str(s) for s in sources])
        | "read" >> beam.io.ReadAllFromTFRecord()
        | "batch records" >> beam.BatchElements(min_batch_size=1, max_batch_size=LABEL_BATCH)
    )


def _write_pickle(value, path: str) -> None:
    with FileSystems.create(path) as f:
        f.write(pickle.dumps(value))


# ---------------------------------------------------------------------- the workers' part


class ExtractClips(beam.DoFn):
    """Clips -> their records and outcomes, through the local engine's ExtractionPool: each
    clip is extracted in a child process (kept for the worker's life), so a decoder crash
    costs that clip only."""

    def __init__(self, settings: ExtractSettings, work: prepare.Work):
        self.settings = settings
        self.work = work
        self._pool = None

    def setup(self):
        self._pool = prepare.ExtractionPool(1, self.settings, self.work)

    def teardown(self):
        if self._pool is not None:
            self._pool.close()

    def process(self, batch: list[tuple[audioset.Segment, str]]):
        with tempfile.TemporaryDirectory(prefix="tfambient-clips-") as tmp:
            jobs, given = [], {}
            for i, (segment, path) in enumerate(batch):
                local = (
                    copy_to(path, Path(tmp, str(i), path.rsplit("/", 1)[-1]))
                    if is_url(path)
                    else Path(path)
                )
                jobs.append((segment, ClipFile(local, has_video=True, naming="")))
                given[segment.clip_id] = (str(local), path)
            for result in self._pool.results(jobs):
                result = _naming_the_given_path(result, *given[result.segment.clip_id])
                yield beam.pvalue.TaggedOutput("outcomes", json.dumps(prepare.outcome(result)))
                for frame in result.frames:
                    yield prepare.frame_example(result.segment, frame)


def _naming_the_given_path(result: ClipResult, local: str, given: str) -> ClipResult:
    """Failures name the file the user gave, not the worker's temporary copy of it."""
    if local == given:
        return result

    def renamed(failure: Failure) -> Failure:
        return replace(failure, detail=failure.detail.replace(local, given))

    if result.failure:
        result.failure = renamed(result.failure)
    result.dropped = [replace(d, failure=renamed(d.failure)) for d in result.dropped]
    return result


class SampleFrames(beam.DoFn):
    """The records of a batch that the fit sample may take (labelling.sampled)."""

    def __init__(self, descriptors, dims, splits: labelling.Splits, keep: float):
        self.descriptors, self.dims, self.splits, self.keep = descriptors, dims, splits, keep

    def process(self, records: list[bytes]):
        batch = labelling.parse_records(records, self.descriptors, self.dims)
        chosen, _ = labelling.sampled(batch, self.splits, self.keep)
        yield from (records[i] for i in np.flatnonzero(chosen))


class LabelRecords(beam.DoFn):
    """A batch of records -> each with its label fields, keyed by its shard's file name;
    and what the cluster summaries need of the batch."""

    def __init__(self, descriptors, dims, splits: labelling.Splits):
        self.descriptors, self.dims, self.splits = descriptors, dims, splits

    def process(self, records: list[bytes], labelers: labelling.Labelers):
        batch = labelling.parse_records(records, self.descriptors, self.dims)
        labelled = labelling.label_batch(batch, labelers, self.splits)
        yield beam.pvalue.TaggedOutput("summaries", labelled.summary_input(batch))
        clips, frames = batch[keys.CLIP_ID], batch[keys.FRAME_INDEX]
        for i, record in enumerate(labelled.records):
            name = self.splits.shard_name(bool(labelled.is_val[i]), int(labelled.shards[i]))
            yield name, (clips[i], int(frames[i]), record)


class WriteShard(beam.DoFn):
    """One shard, whole: its records sorted by clip and frame, written under a temporary
    name and renamed; a retry writes the same file again."""

    def __init__(self, directory: str):
        self.directory = directory

    def process(self, element):
        name, rows = element
        rows = sorted(rows, key=lambda row: row[:2])
        final = str(join(self.directory, name))
        temporary = temporary_name(final)
        with FileSystems.create(temporary) as out:
            for _, _, record in rows:
                _TFRecordUtil.write_record(out, record)
        FileSystems.rename([temporary], [final])
        yield json.dumps({"name": name, "records": len(rows)})


class MergeSummaries(beam.CombineFn):
    """The cluster summaries of every labelled batch, one per k-means field."""

    def __init__(self, labelers: labelling.Labelers, settings: LabelSettings):
        self.labelers, self.settings = labelers, settings

    def create_accumulator(self) -> dict[str, ClusterSummary]:
        return labelling.new_summaries(self.labelers, self.settings)

    def add_input(self, summaries, batch: labelling.SummaryInput):
        return labelling.update_summaries(summaries, batch)

    def merge_accumulators(self, accumulators):
        merged, *others = accumulators
        for other in others:
            for field, summary in other.items():
                merged[field].merge(summary)
        return merged

    def extract_output(self, summaries):
        return summaries
