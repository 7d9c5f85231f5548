"""AudioSet segments and clips -> labelled shards: the tfambient-prepare stage.

Extraction (``prepare_task``) writes each clip's examples into committed parts;
``finalize`` then clusters them and writes the shards (labelling.py), failures.csv and
dataset.json; ``recluster`` relabels finished shards (tfambient-cluster).

The job is long (millions of clips) and runs on machines that get killed, so its unit of
durable progress is a *part*: the examples of a few hundred clips, written to
``parts/task-I-of-N/part-NNNNNN.tfrecord`` under a temporary name and renamed, then
committed by its sidecar ``part-NNNNNN.json``, which lists the clips the part finished
(used or failed), why each failure happened, and the frames dropped from used clips. A
rerun reads the sidecars and skips those clips, so a kill -9 loses at most the clips in
flight. Clips that were not found (or are audio-only files) are not committed: a rerun
looks for them again, after the user has downloaded more.

``--task_index/--num_tasks`` split the CSV between machines by a stable hash of the clip
id; each task writes its own parts and a manifest, and ``finalize`` (the last step, or
``--merge``) clusters and shards them all.
"""

from __future__ import annotations

import concurrent.futures as futures
import fcntl
import hashlib
import json
import logging
import multiprocessing
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tfambient import __version__, audioset, extract, labelling, sound
from tfambient.audioset import ClipFile, MediaIndex, RejectedRow, Segment
from tfambient.cluster import LabelSettings
from tfambient.configs import renamed_fields
from tfambient.contracts import records as keys
from tfambient.contracts.files import write_csv, write_json
from tfambient.contracts.manifest import Manifest
from tfambient.contracts.records import BASE_FIELDS, Field
from tfambient.contracts.workdirs import DataDir
from tfambient.extract import ClipResult, DroppedFrame, ExtractSettings, Failure
from tfrecords_tools import example as tfexample
from tfrecords_tools import writer as tfwriter

logger = logging.getLogger(__name__)

# Every CSV row skipped and every label dropped from a row, with the line as read.
REJECTED_ROW_COLUMNS = ("file", "line", "reason", "detail", "text")


class PrepareError(Exception):
    """A problem with what the user asked for (the CLI shows it as one line, exit 2)."""


@dataclass(frozen=True)
class Task:
    """This machine's share of the CSV: clips whose stable hash lands on ``index``."""

    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise PrepareError(f"--task_index must be in [0, {self.count}), got {self.index}")

    @property
    def name(self) -> str:
        return f"task-{self.index:05d}-of-{self.count:05d}"

    def owns(self, clip_id: str) -> bool:
        return self.count == 1 or tfwriter.shard_index(clip_id, self.count, "task") == self.index


@dataclass
class TaskReport:
    """What one task did; written as ``tasks/<task>.json`` and merged into dataset.json."""

    task: str
    segments: int = 0  # rows of the CSV this task owns
    found: int = 0  # of those, clips with a file (extracted now or before)
    failures: list[dict] = field(default_factory=list)  # uncommitted ones: not found, ...
    rejected: dict[str, int] = field(default_factory=dict)  # CSV rows skipped, by reason
    labels_dropped: int = 0  # not label ids, dropped from rows that are used
    complete: bool = False


def frame_example(segment: Segment, frame: extract.Frame) -> bytes:
    """The record of one frame, in the schema of docs/prepare.md (labels added later)."""
    features = {
        keys.CLIP_ID: segment.clip_id,
        keys.CLIP_YTID: segment.ytid,
        keys.CLIP_START: float(segment.start_s),
        keys.CLIP_END: float(segment.end_s),
        keys.FRAME_INDEX: frame.index,
        keys.FRAME_TIME: frame.time_s,
        keys.AUDIO_START: frame.audio_start_s,
        keys.IMAGE: frame.jpeg,
        keys.IMAGE_HEIGHT: frame.height,
        keys.IMAGE_WIDTH: frame.width,
        keys.AUDIOSET_LABELS: np.array(segment.labels, dtype=np.bytes_),
    }
    for name, values in frame.descriptors.items():
        features[keys.sound_key(name)] = values
    return tfexample.make_example(features).SerializeToString()


def read_sidecars(directory: Path) -> dict[Path, dict]:
    """The committed parts of a task directory: sidecar path -> sidecar, in part order.

    A part's records are ``part-NNNNNN.tfrecord`` beside its sidecar, or (a part the Beam
    engine wrote) the files its sidecar lists. Read-only, so that a merge may look at a
    task another process is still running.
    """
    sidecars = {}
    for path in sorted(directory.glob("part-*.json")):
        if path.with_suffix(".tfrecord").exists():
            sidecars[path] = json.loads(path.read_text())
        elif path.exists():
            sidecar = json.loads(path.read_text())
            if "files" in sidecar:
                sidecars[path] = sidecar
    return sidecars


class PartStore:
    """The parts of the task this process runs: what they finished, and new commits.

    Holds a lock on the task directory while open, so that two processes never run the
    same task (a requeued Slurm job beside one still alive) and number parts alike.
    """

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        # Held (and so left open) for as long as this store is.
        self._lock = open(directory / ".lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise PrepareError(f"another process is preparing {directory} now") from None
        tfwriter.remove_temporaries(directory)
        self._remove_uncommitted()
        self.sidecars = read_sidecars(directory)
        self._next = max((int(p.stem.split("-")[1]) + 1 for p in self.sidecars), default=0)

    def close(self) -> None:
        self._lock.close()

    def _remove_uncommitted(self) -> None:
        """Records whose sidecar never landed (a kill between the two renames), and a
        sidecar whose write a power loss cut short, are work to redo."""
        for records in self.directory.glob("part-*.tfrecord"):
            sidecar = records.with_suffix(".json")
            try:
                json.loads(sidecar.read_text())
            except (FileNotFoundError, json.JSONDecodeError):
                if sidecar.exists():
                    logger.warning("%s is damaged: its clips will be extracted again", sidecar)
                    sidecar.unlink()
                records.unlink()

    def done(self, retry_failed: bool = False) -> set[str]:
        """Clips finished by committed parts; with ``retry_failed``, only the used ones."""
        return {
            clip
            for sidecar in self.sidecars.values()
            for clip, frames in sidecar["clips"].items()
            if frames or not retry_failed
        }

    def commit(self, results: list[ClipResult]) -> None:
        records = self._next_sidecar().with_suffix(".tfrecord")
        with tfwriter.AtomicRecordWriter(records) as out:
            for result in results:
                for frame in result.frames:
                    out.write(frame_example(result.segment, frame))
        self._commit_sidecar(sidecar_of([outcome(r) for r in results]))

    def commit_files(self, files: list[str], outcomes: list[dict]) -> None:
        """Commit clips whose records another writer put in ``files`` (relative to the data
        directory): the Beam engine's records, written by its workers."""
        self._commit_sidecar(sidecar_of(outcomes) | {"files": files})

    def uncommitted(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` (relative to the data directory) that no sidecar commits."""
        committed = {f for sidecar in self.sidecars.values() for f in sidecar.get("files", ())}
        return [name for name in names if name not in committed]

    def _next_sidecar(self) -> Path:
        return self.directory / f"part-{self._next:06d}.json"

    def _commit_sidecar(self, sidecar: dict) -> None:
        path = self._next_sidecar()
        write_json(path, sidecar)  # the commit point
        self.sidecars[path] = sidecar
        self._next += 1


def outcome(result: ClipResult) -> dict:
    """What a part's sidecar records of one finished clip: its frames, or why it failed,
    and the frames dropped from it."""
    segment = result.segment
    return {
        "clip_id": segment.clip_id,
        "frames": len(result.frames),
        "failure": failure_row(segment, result.failure) if result.failure else None,
        "dropped_frames": [dropped_frame_row(segment, d) for d in result.dropped],
    }


def sidecar_of(outcomes: list[dict]) -> dict:
    """A part's sidecar: the outcome of each clip it finished."""
    return {
        "records": sum(o["frames"] for o in outcomes),
        "clips": {o["clip_id"]: o["frames"] for o in outcomes},
        "failures": [o["failure"] for o in outcomes if o["failure"]],
        "dropped_frames": [row for o in outcomes for row in o["dropped_frames"]],
    }


def failure_row(segment: Segment, failure: Failure) -> dict:
    return {
        "clip_id": segment.clip_id,
        "ytid": segment.ytid,
        "start_s": segment.start_s,
        "reason": failure.reason,
        "detail": failure.detail,
        "source": f"{segment.source}:{segment.line}",
    }


def dropped_frame_row(segment: Segment, frame: DroppedFrame) -> dict:
    """A row of dropped_frames.csv: failures.csv's columns, and which frame."""
    return failure_row(segment, frame.failure) | {
        "frame_index": frame.index,
        "frame_time_s": round(frame.time_s, 3),
    }


def check_settings(output_dir: Path, extract_settings: ExtractSettings, task: Task) -> None:
    """A rerun into the same directory must take the same frames the same way."""
    path = DataDir(output_dir).extraction_settings
    if not path.exists():
        return
    # A setting added since the directory was prepared took its default then.
    renamed = renamed_fields(ExtractSettings)  # a directory prepared before a rename
    recorded = {renamed.get(k, k): v for k, v in json.loads(path.read_text()).items()}
    before = extraction_settings(ExtractSettings(), task) | recorded
    settings = extraction_settings(extract_settings, task)
    changed = [k for k in sorted(set(before) | set(settings)) if before.get(k) != settings.get(k)]
    if changed:
        what = ", ".join(f"--{k}={before.get(k)} (now {settings.get(k)})" for k in changed)
        raise PrepareError(
            f"{output_dir} was prepared with {what}; rerun with the same settings "
            "or choose a new --output_dir"
        )


def record_settings(output_dir: Path, extract_settings: ExtractSettings, task: Task) -> None:
    """Fix the extraction settings of ``output_dir`` once its first clip is about to land."""
    check_settings(output_dir, extract_settings, task)
    path = DataDir(output_dir).extraction_settings
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, extraction_settings(extract_settings, task))


def extraction_settings(settings: ExtractSettings, task: Task) -> dict:
    out = asdict(settings)
    out["descriptors"] = ",".join(settings.descriptors)
    out["num_tasks"] = task.count
    return out


def locate(
    segments: Iterable[Segment],
    index: MediaIndex,
    report: TaskReport,
    download_errors: dict[str, str],
) -> list[Job]:
    """Segments with a usable video file; the others are listed as failures."""
    found = []
    for segment in segments:
        clip = index.find(segment)
        if clip is None and segment.clip_id in download_errors:
            failure = Failure("download_failed", download_errors[segment.clip_id])
        elif clip is None:
            failure = Failure("not_found", f"no file for {segment.clip_id} in the media dir")
        elif not clip.has_video:
            failure = Failure("no_video_stream", f"{clip.path}: an audio-only file")
        else:
            found.append((segment, clip))
            continue
        report.failures.append(failure_row(segment, failure))
    return found


def _pool(num_workers: int) -> futures.ProcessPoolExecutor:
    """Workers forked from a clean server that never imported TensorFlow (forking a
    process that has is unsafe, and spawning would re-import the command's main module)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tfambient.extract"])
    return futures.ProcessPoolExecutor(num_workers, context, initializer=extract.init_worker)


Job = tuple[Segment, ClipFile]
# What a worker does with a few clips (extract.extract_clips): their results, in order.
Work = Callable[[list[tuple[Segment, str]], ExtractSettings], list[ClipResult]]


class _PoolDied(Exception):
    def __init__(self, jobs: list[Job]):
        super().__init__(f"a worker died holding {len(jobs)} clips")
        self.jobs = jobs


def run_extraction(
    jobs: list[Job], settings: ExtractSettings, num_workers: int, work: Work = extract.extract_clips
) -> Iterator[ClipResult]:
    """Results in completion order, from ``num_workers`` processes (0: this one)."""
    if num_workers == 0:
        extract.quiet_decoders()
        for start in range(0, len(jobs), extract.CLIPS_PER_CALL):
            yield from work(_work_items(jobs[start : start + extract.CLIPS_PER_CALL]), settings)
        return
    with ExtractionPool(num_workers, settings, work) as pool:
        yield from pool.results(jobs)


class ExtractionPool:
    """Worker processes that extract clips, kept across calls of :meth:`results` (a
    process costs seconds to start where the parent is a big program, such as a Beam
    worker, that each child imports again). Each call of ``work`` in a worker takes a few
    clips (extract.CLIPS_PER_CALL), so that their windows are described together.

    A worker that dies (a decoder crashing on a bad file) must not take the job with it:
    the clips it was holding are retried one at a time in new processes, so that the one
    that kills a worker again is found and listed as failed ("crashed").
    """

    def __init__(self, num_workers: int, settings: ExtractSettings, work: Work):
        self.num_workers, self.settings, self.work = num_workers, settings, work
        self._executor = _pool(num_workers)

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def results(self, jobs: list[Job]) -> Iterator[ClipResult]:
        """The results of ``jobs``, in completion order."""
        queue, suspects = deque(jobs), deque()
        while queue or suspects:
            careful = bool(suspects)
            try:
                yield from self._results(
                    suspects if careful else queue,
                    1 if careful else 4 * self.num_workers,
                    1 if careful else extract.CLIPS_PER_CALL,
                )
            except _PoolDied as died:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = _pool(self.num_workers)
                if careful:
                    segment, clip = died.jobs[0]
                    failure = Failure("crashed", f"{clip.path}: a worker died decoding it")
                    yield ClipResult(segment, failure=failure)
                else:
                    logger.warning("%s; retrying them one at a time", died)
                    suspects.extend(died.jobs)

    def _results(self, source: deque[Job], limit: int, per_call: int) -> Iterator[ClipResult]:
        """Run the jobs of ``source``, up to ``per_call`` to a call of ``work`` (fewer as
        it runs out, so the workers finish together), with at most ``limit`` calls in
        flight, until it is empty."""
        in_flight: dict[futures.Future, list[Job]] = {}
        while source or in_flight:
            while source and len(in_flight) < limit:
                size = max(1, min(per_call, len(source) // self.num_workers))
                call = [source.popleft() for _ in range(size)]
                future = self._executor.submit(self.work, _work_items(call), self.settings)
                in_flight[future] = call
            done, _ = futures.wait(in_flight, return_when=futures.FIRST_COMPLETED)
            for future in done:
                try:
                    results = future.result()
                except futures.process.BrokenProcessPool:
                    raise _PoolDied([job for call in in_flight.values() for job in call]) from None
                del in_flight[future]
                yield from results


def _work_items(jobs: Iterable[Job]) -> list[tuple[Segment, str]]:
    """What ``work`` is given: each segment and the path of its file."""
    return [(segment, str(clip.path)) for segment, clip in jobs]


@dataclass
class _Batch:
    """Results waiting to be committed as one part."""

    results: list[ClipResult] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)

    def due(self, size: int, seconds: float) -> bool:
        return len(self.results) >= size or time.monotonic() - self.since >= seconds


def extract_task(
    jobs: list[Job],
    store: PartStore,
    settings: ExtractSettings,
    *,
    num_workers: int,
    clips_per_part: int,
    part_seconds: float,
    progress: bool,
) -> None:
    """Extract ``jobs``, committing a part every few hundred clips or once a minute."""
    batch = _Batch()
    bar = tqdm(
        total=len(jobs), unit="clip", desc="extracting", disable=not progress, smoothing=0.05
    )
    failed = 0
    with bar:
        for result in run_extraction(jobs, settings, num_workers):
            batch.results.append(result)
            failed += result.failure is not None
            bar.update()
            bar.set_postfix(failed=failed, refresh=False)
            if batch.due(clips_per_part, part_seconds):
                store.commit(batch.results)
                batch = _Batch()
        if batch.results:
            store.commit(batch.results)


class LocalEngine:
    """This machine does the work: extraction in ``num_workers`` processes (0: this one),
    committed every ``clips_per_part`` clips or ``part_seconds``, so a kill -9 loses only
    the clips in flight; labelling in this process. The Beam engine (beam_engine.py) has
    the same methods and calls the same functions on other machines."""

    name = "local"

    def __init__(self, num_workers: int = 0, clips_per_part: int = 256, part_seconds=60.0):
        self.num_workers = num_workers
        self.clips_per_part = clips_per_part
        self.part_seconds = part_seconds

    def path(self, data_dir: Path, relative: str) -> Path:
        """Where a data directory's big file (records, shards) is."""
        return data_dir / relative

    def total_bytes(self, paths: Iterable[Path]) -> int:
        return sum(Path(p).stat().st_size for p in paths)

    def index_media(self, media_dir: Path) -> MediaIndex:
        return audioset.index_media(media_dir)

    def extract(
        self, jobs: list[Job], store: PartStore, settings: ExtractSettings, progress: bool
    ) -> None:
        extract_task(
            jobs,
            store,
            settings,
            num_workers=self.num_workers,
            clips_per_part=self.clips_per_part,
            part_seconds=self.part_seconds,
            progress=progress,
        )

    def relabel(self, sources: list[Path], data_dir: Path, *args, **kwargs) -> dict:
        """labelling.relabel: fit on the hashed sample, write the shards and clusters/."""
        return labelling.relabel(sources, data_dir, *args, **kwargs)


def descriptor_table(names: Iterable[str]) -> dict:
    """Name -> dimension, parameters and meaning: how every sound/ field was computed."""
    return {
        n: {
            "dim": sound.DESCRIPTORS[n].dim,
            "doc": sound.DESCRIPTORS[n].doc,
            "params": dict(sound.DESCRIPTORS[n].params),
        }
        for n in names
    }


def prepare_task(
    segments: list[Segment],
    media_dir: Path,
    output_dir: Path,
    settings: ExtractSettings,
    task: Task,
    *,
    engine: LocalEngine,
    download: Callable[[list[Segment]], dict[str, str]] | None = None,
    retry_failed: bool = False,
    rejected: dict[str, int] | None = None,
    labels_dropped: int = 0,
    progress: bool = True,
) -> TaskReport:
    """Extract this task's clips into committed parts and write its manifest.

    ``download`` fetches missing segments into ``media_dir`` and returns, by clip id, why
    those it could not fetch failed. Clips that failed before (to decode, or to download)
    are tried again only with ``retry_failed``.
    """
    record_settings(output_dir, settings, task)
    manifest = DataDir(output_dir).tasks / f"{task.name}.json"
    previous = json.loads(manifest.read_text()) if manifest.exists() else {}
    report = TaskReport(task.name, rejected=dict(rejected or {}), labels_dropped=labels_dropped)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    write_json(manifest, asdict(report))  # not complete: --merge waits for this task
    store = PartStore(DataDir(output_dir).parts / task.name)
    try:
        mine = [s for s in segments if task.owns(s.clip_id)]
        report.segments = len(mine)
        done = store.done(retry_failed)
        index = engine.index_media(media_dir)
        download_errors = {} if retry_failed else earlier_download_failures(previous)
        if download is not None:
            missing = [
                s
                for s in mine
                if s.clip_id not in done
                and s.clip_id not in download_errors
                and index.find(s) is None
            ]
            if missing:
                download_errors |= download(missing)
                index = engine.index_media(media_dir)
        todo = [s for s in mine if s.clip_id not in done]
        found = locate(todo, index, report, download_errors)
        report.found = len(found) + sum(1 for s in mine if s.clip_id in done)
        logger.info(
            "%s: %d segments; %s%d found to extract, %d not usable",
            task.name,
            len(mine),
            f"resuming: {len(done)} clips already done, " if done else "",
            len(found),
            len(todo) - len(found),
        )
        engine.extract(found, store, settings, progress)
    finally:
        store.close()
    report.complete = True
    write_json(manifest, asdict(report))
    return report


def earlier_download_failures(previous: dict) -> dict[str, str]:
    """Clips an earlier run of the task could not download: not probed again (a dead
    video stays dead, and re-probing hundreds of thousands costs hours)."""
    return {
        row["clip_id"]: row["detail"]
        for row in previous.get("failures", [])
        if row["reason"] == "download_failed"
    }


FAILURE_COLUMNS = ("clip_id", "ytid", "start_s", "reason", "detail", "source")
DROPPED_FRAME_COLUMNS = (*FAILURE_COLUMNS[:3], "frame_index", "frame_time_s", *FAILURE_COLUMNS[3:])


def read_task_reports(output_dir: Path) -> list[dict]:
    """Every task's manifest; all of one run's tasks must have finished."""
    tasks = DataDir(output_dir).tasks
    paths = sorted(tasks.glob("task-*.json"))
    if not paths:
        raise PrepareError(f"{output_dir}: nothing extracted yet (no {tasks}/task-*.json)")
    reports = [json.loads(p.read_text()) for p in paths]
    counts = {int(r["task"].rsplit("-", 1)[1]) for r in reports}
    if len(counts) > 1:
        raise PrepareError(
            f"{output_dir}: tasks of runs with different --num_tasks ({sorted(counts)}); "
            f"remove {tasks} and rerun the tasks"
        )
    count = counts.pop()
    finished = {r["task"] for r in reports if r["complete"]}
    missing = [Task(i, count).name for i in range(count) if Task(i, count).name not in finished]
    if missing:
        raise PrepareError(f"{output_dir}: tasks not finished yet: {', '.join(missing)}")
    return reports


@dataclass(frozen=True)
class Part:
    """A committed part: ``name`` (its records file, or the sidecar of a part whose records
    are several files), its record files, both relative to the data directory, and its
    sidecar."""

    name: str
    files: list[str]
    sidecar: dict


def committed_parts(output_dir: Path) -> list[Part]:
    """Every committed part of every task, in a stable order."""
    layout, parts = DataDir(output_dir), []
    for task_dir in sorted(layout.parts.glob("task-*")):
        for path, sidecar in read_sidecars(task_dir).items():
            if "files" in sidecar:
                parts.append(Part(layout.relative(path), sidecar["files"], sidecar))
            else:
                name = layout.relative(path.with_suffix(".tfrecord"))
                parts.append(Part(name, [name], sidecar))
    return parts


@dataclass
class Outcomes:
    """What extraction made of every clip: frames per extracted clip, the failure of every
    clip not used, and the frames dropped from clips that are used."""

    frames: dict[str, int]
    failures: list[dict]
    dropped_frames: list[dict]


def outcomes(parts: list[Part], reports: list[dict]) -> Outcomes:
    """The outcome of every clip; a clip retried with --retry_failed appears in several
    parts, and its last try counts."""
    frames, failures, dropped = {}, {}, {}
    for sidecar in (part.sidecar for part in parts):
        failed = {row["clip_id"]: row for row in sidecar["failures"]}
        dropped_here: dict[str, list[dict]] = {}
        for row in sidecar.get("dropped_frames", []):  # parts of older versions have none
            dropped_here.setdefault(row["clip_id"], []).append(row)
        for clip, count in sidecar["clips"].items():
            frames[clip] = count
            _set_or_remove(failures, clip, failed.get(clip))
            _set_or_remove(dropped, clip, dropped_here.get(clip))
    for report in reports:  # this run's: not found, audio-only, not downloaded
        failures.update({row["clip_id"]: row for row in report["failures"]})
    rows = [row for clip_rows in dropped.values() for row in clip_rows]
    return Outcomes(frames, list(failures.values()), rows)


def _set_or_remove(outcome: dict, clip: str, value) -> None:
    if value:
        outcome[clip] = value
    else:
        outcome.pop(clip, None)


def write_failures(path: Path, rows: list[dict]) -> None:
    """failures.csv: every clip not used, and why, sorted by clip id."""
    write_csv(path, FAILURE_COLUMNS, sorted(rows, key=lambda r: (r["clip_id"], r["reason"])))


def write_dropped_frames(path: Path, rows: list[dict]) -> None:
    """dropped_frames.csv: every frame left out of a used clip, and why, in clip order."""
    write_csv(
        path, DROPPED_FRAME_COLUMNS, sorted(rows, key=lambda r: (r["clip_id"], r["frame_index"]))
    )


def write_rejected_rows(path: Path, rows: Iterable[RejectedRow]) -> None:
    """rejected_rows.csv: every CSV row skipped and every label dropped, as read."""

    def columns(row: RejectedRow) -> dict:
        values = (row.source, row.line, row.reason, row.detail, row.text)
        return dict(zip(REJECTED_ROW_COLUMNS, values, strict=True))

    write_csv(path, REJECTED_ROW_COLUMNS, map(columns, rows))


def finalize(
    output_dir: Path,
    settings: LabelSettings,
    names: dict[str, str],
    *,
    num_shards: int,
    val_fraction: float,
    progress: bool,
    engine: LocalEngine,
) -> dict:
    """Cluster and shard everything the tasks extracted; write failures.csv and dataset.json.

    The labelling pass is skipped when its inputs (parts, settings, descriptors, class
    names) are those dataset.json records, so rerunning a finished command is cheap; the
    counts and failures are always rewritten.
    """
    reports = read_task_reports(output_dir)
    parts = committed_parts(output_dir)
    done = outcomes(parts, reports)
    frames, failures = done.frames, done.failures
    layout = DataDir(output_dir)
    write_failures(layout.failures, failures)
    write_dropped_frames(layout.dropped_frames, done.dropped_frames)
    records = sum(part.sidecar["records"] for part in parts)
    if not records:
        reasons = Counter(row["reason"] for row in failures)
        raise PrepareError(
            f"no clip could be used ({_counts_text(reasons) or 'no segments'}); "
            f"{layout.failures} lists why"
        )
    extraction = json.loads(layout.extraction_settings.read_text())
    descriptors = extraction["descriptors"].split(",")
    sources = [engine.path(output_dir, name) for part in parts for name in part.files]
    splits = labelling.Splits.sized(val_fraction, num_shards, engine.total_bytes(sources))
    inputs = {
        "parts": {part.name: part.sidecar["records"] for part in parts},
        "labels": labelling.settings_json(settings),
        "splits": asdict(splits),
        "descriptors": descriptors,
        "class_names": names_digest(names),
    }
    previous = Manifest.read_if_exists(output_dir)
    if previous is not None and previous.data.get("labelling_inputs") == inputs:
        logger.info("%s is up to date", layout.manifest)
        labelled = labelled_view(previous)
    else:
        num_train = sum(n for clip, n in frames.items() if not splits.is_val(clip))
        if not num_train:
            raise PrepareError(
                f"no train frames: all {records} frames fall in the validation split; "
                "lower --val_fraction"
            )
        mark_stale(output_dir, previous)
        labelled = engine.relabel(
            sources,
            output_dir,
            descriptors,
            settings,
            splits,
            num_train=num_train,
            total=records,
            names=names,
            progress=progress,
        )
    manifest = Manifest(
        {
            "tfambient_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "extraction": extraction,
            "descriptors": descriptor_table(descriptors),
            "schema": schema(descriptors) | labelled["label_fields"],
            "counts": {
                "segments": sum(r["segments"] for r in reports),
                "rejected_rows": reports[0]["rejected"],  # every task reads the whole CSV
                # .get: task manifests written by earlier versions do not count them
                "labels_dropped": reports[0].get("labels_dropped", 0),
                "clips_found": sum(r["found"] for r in reports),
                "clips_used": sum(1 for n in frames.values() if n),
                "clips_failed": dict(sorted(Counter(row["reason"] for row in failures).items())),
                "frames": labelled["frames"],
                "frames_dropped": dict(
                    sorted(Counter(row["reason"] for row in done.dropped_frames).items())
                ),
            },
            "shards": labelled["shards"],
            "clusters": labelled["clusters"],
            "splits": inputs["splits"],
            "labelling_inputs": inputs,
        }
    )
    manifest.write(output_dir)
    return manifest.data


def names_digest(names: dict[str, str]) -> str:
    return hashlib.sha1(json.dumps(names, sort_keys=True).encode()).hexdigest()[:12]


def labelled_view(manifest: Manifest) -> dict:
    """What the labelling pass returned, as a finished dataset.json records it."""
    base = manifest.base_schema()
    return {
        "shards": manifest.data["shards"],
        "frames": manifest.data["counts"]["frames"],
        "clusters": manifest.data["clusters"],
        "label_fields": {k: v for k, v in manifest.data["schema"].items() if k not in base},
    }


def mark_stale(data_dir: Path, manifest: Manifest | None) -> None:
    """Before the shards change: a kill from here on leaves a dataset.json that no rerun
    takes for finished, and that training refuses."""
    if manifest is not None:
        Manifest(manifest.data | {"labelling_inputs": None, "stale": True}).write(data_dir)


def _counts_text(counts: Counter) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())


def schema(descriptors: Iterable[str]) -> dict[str, dict]:
    """Every field of a record but its labels: kind, length (None: varies) and meaning."""
    fields = dict(BASE_FIELDS)
    for name in descriptors:
        described = sound.DESCRIPTORS[name]
        fields[keys.sound_key(name)] = Field("float", described.dim, described.doc)
    return {key: field.to_json() for key, field in fields.items()}


def summary(output_dir: Path, manifest: dict) -> str:
    """What a person wants to read at the end of the command."""
    counts = manifest["counts"]
    failed = counts["clips_failed"]
    lines = [
        f"prepared {output_dir}: {counts['clips_used']} clips used of {counts['segments']} "
        f"segments; frames: " + ", ".join(f"{k} {v}" for k, v in counts["frames"].items()),
        f"  failed: {_counts_text(Counter(failed)) or 'none'} (see {DataDir(output_dir).failures})",
    ]
    dropped = counts.get("frames_dropped")
    if dropped:
        lines.append(
            f"  frames dropped from used clips: {_counts_text(Counter(dropped))} "
            f"(see {DataDir(output_dir).dropped_frames})"
        )
    labels_dropped = counts.get("labels_dropped", 0)  # dataset.json of earlier versions lacks it
    if counts["rejected_rows"] or labels_dropped:
        lines.append(
            f"  CSV rows skipped: {_counts_text(Counter(counts['rejected_rows'])) or 'none'}; "
            f"labels dropped: {labels_dropped} (see {DataDir(output_dir).rejected_rows})"
        )
    lines.append(f"  label fields: {', '.join(manifest['clusters']['fields'])}")
    for reduced in manifest["clusters"].get("reduced_defaults", []):
        lines.append(
            f"  {reduced['flag']} {reduced['default']} (the default) reduced to "
            f"{reduced['used']} for {reduced['descriptor']}: {reduced['why']}"
        )
    lines.append(f"  montages: {DataDir(output_dir).clusters}/*.png")
    return "\n".join(lines)


def recluster(
    data_dir: Path,
    settings: LabelSettings,
    descriptors: list[str] | None,
    names: dict[str, str],
    progress: bool,
    engine: LocalEngine,
) -> dict:
    """New label fields for prepared shards, without touching media (tfambient-cluster).

    The label fields after this are exactly the ones asked for now; images and descriptors
    are copied unchanged.
    """
    try:
        manifest = Manifest.read(data_dir)
    except ValueError as error:
        raise PrepareError(str(error)) from None
    if manifest.stale:
        raise PrepareError(
            f"{data_dir} was left half-labelled by a killed run: rerun that command first"
        )
    data = manifest.data
    stored = list(data["descriptors"])
    descriptors = descriptors or stored
    unknown = sorted(set(descriptors) - set(stored))
    if unknown:
        raise PrepareError(
            f"{data_dir} has no {', '.join(unknown)} descriptors (it has {', '.join(stored)})"
        )
    shards = [engine.path(data_dir, shard.path) for shard in manifest.shards()]
    mark_stale(data_dir, manifest)
    labelled = engine.relabel(
        shards,
        data_dir,
        descriptors,
        settings,
        labelling.Splits(**data["splits"]),
        num_train=data["counts"]["frames"]["train"],
        total=sum(shard.records for shard in manifest.shards()),
        names=names,
        progress=progress,
    )
    data["schema"] = manifest.base_schema() | labelled["label_fields"]
    data["shards"] = labelled["shards"]
    data["clusters"] = labelled["clusters"]
    data["counts"]["frames"] = labelled["frames"]
    data["labelling_inputs"] |= {
        "labels": labelling.settings_json(settings),
        "descriptors": descriptors,
        "class_names": names_digest(names),
    }
    manifest.write(data_dir)
    return data
