"""Decoding alone, per clip: one seek per frame time (before) vs MediaFile.frames_at.

Clips: bench_prepare.py's generated 10 s 640x360 H.264 clips (x264 defaults: one keyframe
per clip, B-frames) with 44.1 kHz AAC, from its cache (generated there if missing). Per
clip, what preparation decodes: open, the frames at the centres of --frames equal parts of
the clip, and the 3.75 s audio window at the native rate around the middle.

* before: for each time, a seek to the keyframe before it and every frame decoded up to it
  (what MediaFile.frame_at did for each time before frames_at).
* exact: frames_at(times): one forward pass for all times, skipping the frames that no
  other frame refers to unless they lie near a time; pixel-identical to before.
* exact, frame threads: the same with FFmpeg's frame threading on 2 threads.
* keyframe: frames_at(times, at="keyframe"): the nearest keyframe only.

Clips/s by CPU time (all threads of this process) and by wall time, best of --repeats
rounds, each round measuring every configuration; pinned to one CPU unless --cores 2.

    .venv/bin/python benchmarks/bench_decode.py [--clips 8] [--repeats 3] [--cores 1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_prepare import CACHE_NAME, SECONDS, ensure_clips
from printing import progress, table

from tfambient import media

WINDOW_S = 3.75


def decode_clip(path: Path, frames: int, mode: str) -> None:
    times = [float(t) for t in (np.arange(frames) + 0.5) * SECONDS / frames]
    with media.MediaFile(path) as clip:
        stream = clip._video
        if mode == "before":
            for t in times:
                frame, _, _ = clip._nearest_frame(stream, t, seek_s=t)
                frame.to_ndarray(format="rgb24")
        elif mode == "exact, frame threads":
            stream.codec_context.thread_type, stream.codec_context.thread_count = "FRAME", 2
            clip.frames_at(times)
        else:
            clip.frames_at(times, at=mode)
        clip.audio_window(SECONDS / 2, WINDOW_S, clip.info.audio_rate)


MODES = ("before", "exact", "exact, frame threads", "keyframe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="distinct generated clips")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per figure (best kept)")
    parser.add_argument("--cores", type=int, default=1, choices=(1, 2), help="CPUs to run on")
    parser.add_argument(
        "--clip_dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / CACHE_NAME,
        help="where bench_prepare.py caches its generated clips (default: %(default)s)",
    )
    args = parser.parse_args()
    if args.clips < 1 or args.repeats < 1:
        parser.error("--clips and --repeats must be >= 1")
    paths = ensure_clips(args.clip_dir, args.clips)
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, set(allowed[: args.cores]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{len(paths)} clips of {SECONDS:g} s, {cores} CPU(s), best of {args.repeats} rounds; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    rows = []
    for frames in (1, 4):
        best = {mode: (np.inf, np.inf) for mode in MODES}
        for round_ in range(args.repeats):
            progress(f"{frames} frame(s) per clip: round {round_ + 1}/{args.repeats}")
            for mode in MODES:
                wall, cpu = time.perf_counter(), time.process_time()
                for path in paths:
                    decode_clip(path, frames, mode)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                best[mode] = (min(best[mode][0], wall), min(best[mode][1], cpu))
        before_cpu = len(paths) / best["before"][1]
        for mode in MODES:
            wall, cpu = best[mode]
            rows.append(
                [
                    f"{frames} frame(s): {mode}",
                    f"{len(paths) / cpu:.1f}",
                    f"{len(paths) / cpu / before_cpu:.2f}x",
                    f"{len(paths) / wall:.1f}",
                    f"{1000 * cpu / len(paths):.0f}",
                ]
            )
    table(["decode", "clips/s (CPU)", "vs before", "clips/s (wall)", "CPU ms/clip"], rows)


if __name__ == "__main__":
    main()
