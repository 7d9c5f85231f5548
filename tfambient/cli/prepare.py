"""tfambient-prepare: AudioSet segment CSVs and their clips -> labelled TFRecord shards.

  tfambient-prepare --audioset balanced_train_segments.csv --media_dir clips/ --output_dir data/

For each segment found in --media_dir (recursively, under the names download tools give:
YTID_start.mp4, YTID_start_end.mp4, YTID_startms_endms.mp4, a leading Y, or yt-dlp's
"title [YTID].mp4"), takes --frames_per_clip frames, the --audio_window_s of audio around
each, and the sound descriptors of that audio; clusters the descriptors with k-means into
pseudo-labels; and writes data/shards/{train,val}-NNNNN-of-NNNNN.tfrecord, data/dataset.json,
data/failures.csv (every clip not used, and why), data/rejected_rows.csv (every CSV row
skipped and every label dropped, and why) and data/clusters/ (centroids, sizes and a montage
of each clustering, naming AudioSet classes).

Rerunning the same command resumes: finished clips are skipped, and a killed run loses only
the clips in flight. On many machines, run it with --engine=beam on a Beam runner (Dataflow,
Flink, Spark), or give each machine --task_index and the same --num_tasks, then run once with
--merge when all are done (see docs/prepare.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from absl import flags

from tfambient import audioset
from tfambient.cli import engine_flags, label_flags
from tfambient.cli.common import (
    UserError,
    dataclass_from_flags,
    define_dataclass_flags,
    load_tensorflow_for_records,
    worker_processes,
)
from tfambient.cli.common import run as run_app
from tfambient.configs import PrepareConfig
from tfambient.contracts.files import is_url
from tfambient.contracts.workdirs import DataDir
from tfambient.extract import ExtractSettings

FLAGS = flags.FLAGS
define_dataclass_flags(PrepareConfig, __name__)
define_dataclass_flags(ExtractSettings, __name__)


def extract_settings() -> ExtractSettings:
    try:
        return dataclass_from_flags(ExtractSettings)
    except ValueError as error:
        raise UserError(str(error)) from None


def read_segments(prepare, output_dir: Path) -> audioset.SegmentTable:
    """The CSV rows to use. Every row skipped and label dropped is listed in
    rejected_rows.csv; the log counts them and names the first few."""
    if any(map(is_url, FLAGS.audioset)):
        table = engine_flags.import_beam_engine().read_segments(FLAGS.audioset)
    else:
        table = audioset.read_segments(FLAGS.audioset)
    for warning in table.warnings:
        logging.warning("%s", warning)
    listing = DataDir(output_dir).rejected_rows
    prepare.write_rejected_rows(listing, table.listed())
    log = logging.warning if table.rejected or table.dropped_labels else logging.info
    for line in table.summary_lines():
        log("%s", line)
    if table.rejected or table.dropped_labels:
        log("every one, and why: %s", listing)
    if not table.segments:
        raise UserError(f"no usable rows in {', '.join(FLAGS.audioset)}; {listing} lists why")
    if FLAGS.max_clips:
        table.segments = table.segments[: FLAGS.max_clips]
    return table


def ontology_names() -> dict[str, str]:
    """--ontology, else class_labels_indices.csv beside the first CSV, else AudioSet's."""
    path = FLAGS.ontology
    if path is None and FLAGS.audioset and not is_url(FLAGS.audioset[0]):
        beside = Path(FLAGS.audioset[0]).with_name("class_labels_indices.csv")
        path = beside if beside.exists() else None
    return audioset.read_ontology(path) if path else audioset.default_ontology()


def downloader():
    if not FLAGS.download:
        return None
    from tfambient import download

    def fetch(segments) -> dict[str, str]:
        try:
            results = download.download_segments(
                segments,
                FLAGS.media_dir,
                url_template=FLAGS.url_template,
                workers=FLAGS.download_workers,
                retries=FLAGS.download_retries,
                cut_sections=FLAGS.download_mode == "sections",
                ffmpeg=FLAGS.ffmpeg,
                progress=FLAGS.progress,
            )
        except download.DownloaderMissing as error:
            raise UserError(str(error)) from None
        failed = {r.segment.clip_id: r.error for r in results if r.error}
        if failed:
            logging.warning(
                "%d of %d downloads failed (see failures.csv)", len(failed), len(results)
            )
        return failed

    return fetch


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.merge and not FLAGS.audioset:
        raise UserError("--audioset is required (a segments CSV)")
    engine = engine_flags.engine_config(FLAGS.output_dir, FLAGS.media_dir, *(FLAGS.audioset or []))
    if engine.engine == "beam" and FLAGS.num_tasks > 1:
        raise UserError(
            "--num_tasks splits the work between machines for --engine=local; "
            "with --engine=beam the runner spreads it"
        )
    if is_url(FLAGS.output_dir):
        with engine_flags.mirrored(FLAGS.output_dir) as mirror:
            prepare_into(mirror.local, mirror)
        return
    with removed_if_left_empty(FLAGS.output_dir):
        prepare_into(writable_dir(FLAGS.output_dir, "--output_dir"))


def prepare_into(output_dir: Path, mirror=None) -> None:
    """This task's extraction (unless --merge), then clustering and shards when all is done."""
    media_dir = None if FLAGS.merge else media_dir_flag()
    try:
        labels = label_flags.label_settings()
        names = ontology_names()  # now, not after days of extraction
        engine = engine_flags.make_engine(
            worker_processes(FLAGS.num_workers), mirror, clips_per_part=FLAGS.clips_per_part
        )
    except (audioset.AudioSetFormatError, ValueError) as error:
        raise UserError(str(error)) from None
    # Not at module level: worker processes re-import this module, and must not load
    # TensorFlow, which only this process needs (to write records).
    load_tensorflow_for_records()
    from tfambient import labelling, prepare

    try:
        if not FLAGS.merge:
            run_task(prepare, engine, media_dir, output_dir)
        if FLAGS.num_tasks > 1 and not FLAGS.merge:
            logging.info(
                "task %d of %d done; when every task is, run: tfambient-prepare "
                "--output_dir %s --merge",
                FLAGS.task_index,
                FLAGS.num_tasks,
                output_dir,
            )
            return
        manifest = prepare.finalize(
            output_dir,
            labels,
            names,
            num_shards=FLAGS.num_shards,
            val_fraction=FLAGS.val_fraction,
            progress=FLAGS.progress,
            engine=engine,
        )
    except labelling.SampleTooSmall as error:
        raise UserError(
            f"{error}; the extracted clips are kept: rerun with another value and they are "
            "not decoded again"
        ) from None
    except (prepare.PrepareError, audioset.AudioSetFormatError, ValueError) as error:
        raise UserError(str(error)) from None
    except OSError as error:  # a full disk, a lost mount: say which file, not a traceback
        raise UserError(f"I/O error: {error}") from None
    text = prepare.summary(output_dir, manifest)
    print(text.replace(str(output_dir), mirror.url) if mirror else text)


@contextlib.contextmanager
def removed_if_left_empty(value: str | None) -> Iterator[None]:
    """On failure, remove the directories that the run created and left empty (a CSV
    refused up front leaves nothing behind); others, and anything written, stay."""
    missing = []
    if value:
        path = Path(value).absolute()
        missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for directory in missing:  # deepest first
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if empty
        raise


def writable_dir(value: str | None, flag: str) -> Path:
    """The directory, created if needed; a path that cannot be one is a usage error."""
    if not value:
        raise UserError(f"{flag} is required")
    path = Path(value)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag} {path}: {error.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UserError(f"{flag} {path}: not writable")
    return path


def media_dir_flag() -> Path | str:
    if FLAGS.download and is_url(FLAGS.media_dir):
        raise UserError("--download fetches into a local --media_dir, not " + FLAGS.media_dir)
    if FLAGS.download:
        return writable_dir(FLAGS.media_dir, "--media_dir")
    if not FLAGS.media_dir:
        raise UserError("--media_dir is required")
    if is_url(FLAGS.media_dir):  # engine_config checked that the engine reaches it
        return FLAGS.media_dir
    media_dir = Path(FLAGS.media_dir)
    if not media_dir.is_dir():
        raise UserError(f"--media_dir {media_dir} is not a directory")
    return media_dir


def run_task(prepare, engine, media_dir: Path | str, output_dir: Path) -> None:
    """Extract this task's share of the CSV into parts."""
    settings, task = extract_settings(), prepare.Task(FLAGS.task_index, FLAGS.num_tasks)
    prepare.check_settings(output_dir, settings, task)  # before the long CSV read
    table = read_segments(prepare, output_dir)
    prepare.prepare_task(
        table.segments,
        media_dir,
        output_dir,
        settings,
        task,
        engine=engine,
        download=downloader(),
        retry_failed=FLAGS.retry_failed,
        rejected=table.rejected_counts(),
        labels_dropped=len(table.dropped_labels),
        progress=FLAGS.progress,
    )


def run() -> None:
    run_app(main, flag_modules=[label_flags.__name__, engine_flags.__name__])


if __name__ == "__main__":
    run()
