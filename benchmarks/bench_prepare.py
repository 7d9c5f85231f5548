"""Preparation throughput per clip: decoding alone vs everything a worker does for a clip.

Clips: generated 10 s 640x360 H.264 (libx264 defaults: keyint 250, i.e. one keyframe per
clip, so the centre frame costs decoding about half the clip) at 25 fps with 44.1 kHz stereo
AAC: a camera pan over a noise landscape, a drifting colour gradient, a moving disc and
film grain; coloured noise with tones. They are encoded on one thread, so each frame is one
slice as in files cut by the ffmpeg command (PyAV's default slice threading would cut it
into as many slices as the generating machine has threads). Cached (--clip_dir) and reused.

Measured in this process on one core (threadpoolctl limit 1; with one slice per frame
FFmpeg's decoder threads have nothing to share out, and the CPU/wall column, <= 1, shows
that nothing ran in parallel), best of --repeats passes over all clips, each configuration
once per round so drift hits them all alike:

* decode alone: what preparation must decode for a clip: open, the centre frame
  (``frame_at``) and the 3.75 s audio window at the native rate (``audio_window``).
* full prepare: ``extract_clips`` on every clip, extract.CLIPS_PER_CALL clips a call (as a
  worker does: their windows described together), then one ``PartStore.commit`` of them
  all (``frame_example`` serialisation, TFRecord write, fsync, sidecar). Its time is split
  into decode / descriptors / JPEG (``ClipResult.seconds``), write (the commit) and other
  (what ``extract_clips`` does outside those). "serialise" is frame_example alone, timed
  apart: a part of write, for information.
* extract with one descriptor (texture, mfcc, mfcc_summary): which descriptor dominates.

Then ``run_extraction`` (the preparation's process pool) with 1 and os.cpu_count() workers,
in the same rounds: clips/s from the results of the k-th call to the last (so pool start-up
and each worker's first, cache-filling call are left out), per worker, and with start-up.

Then the two engines of tfambient-prepare on the same clips, two workers each: the local
engine (``LocalEngine.extract``: a process pool, parts committed) and the Apache Beam engine
(``BeamEngine.extract``: a pipeline on the Python DirectRunner with direct_num_workers=2,
records through Beam's TFRecord sink, the part committed), each on n and on 2n clips: the
steady rate is n / (t(2n) - t(n)), the fixed start-up cost t(n) - n / rate. Goal: Beam's
steady rate >= 0.8 of the local engine's. ``--engines_only`` measures just this.

Then issue 12's comparisons, on the same clips, one core, in rounds of their own:

* (a) clips/s per core of preparation (extraction and one commit, as "full prepare")
  before issue 12 against now, with the default --frame_at=exact and with
  --frame_at=keyframe. The library no longer holds the code from before, so the benchmark
  puts it back around today's extract_clip (``before_issue12``): each frame decoded by a
  seek to the keyframe before it and every frame up to it (``MediaFile._nearest_frame``,
  which is what ``frame_at`` did then), the audio decoded over the segment's whole span
  (here the whole file), the texture module as it was before its speed-up (float64 band
  stage), read with ``git show`` from commit 117d629 (skipped, with the reason printed,
  where that fails), and each clip's windows described on their own (one clip a call).
  Goal >= 1.5x.
* (b) the 2019 reproduction's way of extracting: per clip an ffmpeg process writes the
  centre frame as a JPEG of the stored size and another the 3.75 s of audio as PCM (the
  ffmpeg of the imageio-ffmpeg wheel; skipped, with the reason printed, where it is
  missing), then the texture of tests/texture_oracle.py and librosa's MFCCs. The oracle
  stands in for the published texture code, which runs ~1.25x as fast: the line "with the
  published texture code" divides the oracle's time by 1.25. The 2019 way writes nothing,
  tfambient's figure includes its commit. Pinned to one CPU (ffmpeg's threads too); its
  CPU time includes the ffmpeg processes'. Goal: tfambient >= 4x.

Every ratio is printed by wall time of the best passes, by CPU time, and per round.

Read it as: the ratio full/decode-alone throughput is the share of a worker's time that
decoding takes; the goal is >= 0.5 (describing, encoding and writing cost no more than
decoding). Ratios compare passes of the same run; "per-round ratio" pairs the passes of
each round. On a shared machine other processes take the CPU from under a wall-clock
timing (CPU/wall well below 1): the ratio of CPU times, also printed, is then the steadier
figure. Media files are read from the page cache (they were just written or read).

    .venv/bin/python benchmarks/bench_prepare.py [--clips 16] [--repeats 5] [--clip_dir DIR]
    .venv/bin/python benchmarks/bench_prepare.py --quick    # smoke run: 4 clips, 1 repeat
    .venv/bin/python benchmarks/bench_prepare.py --engines_only --repeats 2  # engines only
    .venv/bin/python benchmarks/bench_prepare.py --versus_only  # (a) and (b) only
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import av
import librosa
import numpy as np
import threadpoolctl
from PIL import Image
from printing import progress, table

from tfambient import extract, media, sound
from tfambient.audioset import ClipFile, Segment, names_segment_start, segment_span
from tfambient.extract import ExtractSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from texture_oracle import oracle_texture

# tfambient.prepare is imported in main(): pool workers import this script as __mp_main__,
# and prepare pulls in TensorFlow (for the record writer), which real workers never load.

SECONDS = 10.0
FPS = 25
HEIGHT, WIDTH = 360, 640
RATE = 44_100
CACHE_NAME = "tfambient_bench_prepare_v2"  # bump when the generator changes
GOAL = 0.5
BEAM_GOAL = 0.8
BEFORE_GOAL = 1.5  # issue 12: clips/s per core against preparation before it
REPRODUCTION_GOAL = 4.0  # issue 12: against the 2019 reproduction's way of extracting
BEFORE = "before issue 12"
EXACT = "now, --frame_at=exact (default)"
KEYFRAME = "now, --frame_at=keyframe"
REPRODUCTION = "2019 reproduction"
PUBLISHED_VS_ORACLE = 1.25  # the published texture code runs ~1.25x as fast as the oracle
# The texture module before issue 12's speed-up (float64 band stage), kept in git history.
TEXTURE_BEFORE = ("117d62943abe86a71f44ff705c0bdcedf1ec30c6", "tfambient/sound/texture.py")
REPO = Path(__file__).resolve().parents[1]
ENGINE_WORKERS = 2


# ---------------------------------------------------------------------------- clips


def landscape(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(height, width, 3) float32 in [0, 255]: noise at three scales, smooth to fine."""
    total = np.zeros((height, width, 3), np.float32)
    for scale, weight in ((48, 1.0), (12, 0.5), (3, 0.25)):
        small = rng.integers(0, 256, (height // scale + 2, width // scale + 2, 3), np.uint8)
        big = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
        total += weight * np.asarray(big, np.float32)
    total -= total.min()
    return total * (255.0 / total.max())


def clip_frames(rng: np.random.Generator) -> np.ndarray:
    """(T, H, W, 3) uint8: something H.264 has to work for, with global and local motion."""
    count = round(SECONDS * FPS)
    speed = rng.uniform([25.0, 5.0], [70.0, 25.0])  # pan, pixels per second (x, y)
    ground = landscape(
        rng, HEIGHT + int(speed[1] * SECONDS) + 2, WIDTH + int(speed[0] * SECONDS) + 2
    )
    xs = np.arange(WIDTH, dtype=np.float32)
    ys = np.arange(HEIGHT, dtype=np.float32)[:, None]
    phases = rng.uniform(0, 2 * np.pi, 3)
    drift = rng.uniform(0.05, 0.3)  # gradient cycles per second
    lighting = (ys / HEIGHT - 0.5)[..., None] * rng.uniform(-40, 40)
    radius = rng.uniform(25, 60)
    colour = rng.uniform(0, 255, 3).astype(np.float32)
    orbit = rng.uniform(0.05, 0.2, 2), rng.uniform(0, 2 * np.pi, 2)
    frames = np.empty((count, HEIGHT, WIDTH, 3), np.uint8)
    for i in range(count):
        t = i / FPS
        x0, y0 = (speed * t).astype(int)
        image = ground[y0 : y0 + HEIGHT, x0 : x0 + WIDTH].copy()
        wave = 2 * np.pi * (1.5 * xs / WIDTH - drift * t)
        image += 30 * np.sin(wave[:, None] + phases)  # (W, 3), the same on every row
        image += lighting
        cx = WIDTH * (0.5 + 0.35 * np.sin(2 * np.pi * orbit[0][0] * t + orbit[1][0]))
        cy = HEIGHT * (0.5 + 0.3 * np.sin(2 * np.pi * orbit[0][1] * t + orbit[1][1]))
        inside = np.clip((radius - np.hypot(xs - cx, ys - cy)) / 3, 0, 1)[..., None]
        image += inside * (colour - image)
        image += rng.integers(-6, 7, image.shape, np.int8)
        np.clip(image, 0, 255, out=image)
        frames[i] = image
    return frames


def clip_audio(rng: np.random.Generator) -> np.ndarray:
    """(n, 2) float32: partly correlated coloured noise that swells, plus a few wavering tones."""
    n = round(SECONDS * RATE)
    t = np.arange(n) / RATE
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    freqs[0] = freqs[1]
    tilt = freqs ** -rng.uniform(0.15, 0.5)  # between white and pink

    def coloured() -> np.ndarray:
        return np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * tilt, n)

    shared = coloured()
    noise = np.stack([shared + 0.4 * coloured(), shared + 0.4 * coloured()], axis=1)
    noise /= noise.std()
    noise *= (1 + 0.6 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t + rng.uniform(0, 6)))[:, None]
    tones = np.zeros_like(noise)
    for _ in range(rng.integers(2, 5)):
        pitch = rng.uniform(150, 3000)
        level = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 4) * t + rng.uniform(0, 6))
        pan = rng.uniform(0.2, 0.8)
        tone = level * np.sin(2 * np.pi * pitch * t + rng.uniform(0, 6))
        tones += tone[:, None] * np.array([pan, 1 - pan])
    mix = 0.5 * noise + 0.4 * tones
    return (mix * (rng.uniform(0.4, 0.8) / np.abs(mix).max())).astype(np.float32)


def ytid(i: int) -> str:
    return f"bench{i:06d}"  # 11 characters, like a YouTube id


@contextlib.contextmanager
def one_cpu() -> Iterator[None]:
    """The process on one CPU, where the OS allows: x264 then starts a single thread."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def ensure_clips(directory: Path, count: int) -> list[Path]:
    """The first ``count`` clips of the cache, generating those missing (seeded by index)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{ytid(i)}.mp4" for i in range(count)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        progress(f"generating {len(missing)} clip(s) in {directory} (reused next time)")
    for done, (i, path) in enumerate(missing, 1):
        start = time.perf_counter()
        rng = np.random.default_rng(1000 + i)
        frames, audio = clip_frames(rng), clip_audio(rng)
        with one_cpu():  # x264 on one thread: one slice per frame
            media.write_video(path, frames, FPS, audio, RATE, "h264", "aac")
        mb = path.stat().st_size / 1e6
        progress(
            f"  {done}/{len(missing)} {path.name}: {mb:.1f} MB, {time.perf_counter() - start:.1f} s"
        )
    return paths


def keyframes(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size and p.is_keyframe)


def clip_jobs(paths: list[Path]) -> list[tuple[Segment, ClipFile]]:
    """Each file holds just its segment (what downloaders that cut segments write)."""
    jobs = []
    for i, path in enumerate(paths):
        segment = Segment(ytid(i), 30.0, 40.0, ("/m/0bench",), "bench", i + 1, "30.000", "40.000")
        jobs.append((segment, ClipFile(path, has_video=True, naming="ytid")))
    return jobs


# ---------------------------------------------------------------------------- passes


@dataclass
class Pass:
    """One pass over all clips: wall and CPU seconds, and seconds per phase (summed)."""

    wall: float
    cpu: float
    phases: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)  # timed apart, not in wall


def decode_alone(segment: Segment, path: Path, settings: ExtractSettings) -> None:
    """What extract_clip decodes: the same frames and audio windows, and nothing else."""
    with media.MediaFile(path) as clip:
        info = clip.info
        named_cut = names_segment_start(path, segment)
        first_s, last_s = segment_span(info.duration_s, segment, named_cut=named_cut)
        clip.restrict_audio(first_s, last_s)  # as extract_clip does (a no-op for these files)
        times = extract.frame_times(first_s, last_s, settings.frames_per_clip)
        centres = extract.audio_centres(times, first_s, last_s, settings.audio_window_s)
        for t in times:
            clip.frame_at(float(t))
        for c in centres:
            clip.audio_window(float(c), settings.audio_window_s, info.audio_rate)


def decode_pass(jobs, settings: ExtractSettings) -> Pass:
    wall, cpu = time.perf_counter(), time.process_time()
    for segment, clip in jobs:
        decode_alone(segment, clip.path, settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Pass(wall, cpu, {"decode": wall})


def extract_all(
    jobs, settings: ExtractSettings, per_call: int = extract.CLIPS_PER_CALL
) -> tuple[list[extract.ClipResult], Pass]:
    """extract_clips on ``per_call`` clips at a time, as a worker does."""
    items = [(segment, str(clip.path)) for segment, clip in jobs]
    wall, cpu = time.perf_counter(), time.process_time()
    results = [
        result
        for start in range(0, len(items), per_call)
        for result in extract.extract_clips(items[start : start + per_call], settings)
    ]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    failed = [r for r in results if r.failure is not None]
    if failed:
        raise SystemExit(f"extraction failed: {failed[0].failure}")
    phases = {
        k: sum(r.seconds.get(k, 0.0) for r in results) for k in ("decode", "describe", "jpeg")
    }
    return results, Pass(wall, cpu, phases)


def full_pass(
    jobs, settings: ExtractSettings, scratch: Path, prepare, per_call=extract.CLIPS_PER_CALL
) -> Pass:
    """extract_all, then one committed part holding all of the clips."""
    results, timing = extract_all(jobs, settings, per_call)
    parts = Path(tempfile.mkdtemp(dir=scratch))
    try:
        store = prepare.PartStore(parts)
        wall, cpu = time.perf_counter(), time.process_time()
        store.commit(results)
        write, write_cpu = time.perf_counter() - wall, time.process_time() - cpu
        part_bytes = sum(p.stat().st_size for p in parts.glob("part-*.tfrecord"))
    finally:
        shutil.rmtree(parts)
    start = time.perf_counter()
    for r in results:
        for frame in r.frames:
            prepare.frame_example(r.segment, frame)
    serialise = time.perf_counter() - start
    timing.wall += write
    timing.cpu += write_cpu
    timing.phases["write"] = write
    timing.extra = {"serialise": serialise, "part_bytes": part_bytes}
    return timing


def pool_pass(jobs, settings: ExtractSettings, workers: int, prepare) -> tuple[float, float]:
    """(steady clips/s from the workers-th call's results to the last, clips/s with start-up).

    A worker returns the clips of a call together (extract.CLIPS_PER_CALL), so results come
    in bursts: a result less than a millisecond after the one before (a clip takes ~100 ms)
    belongs to its burst, and the clips of the first ``workers`` bursts are left out.
    """
    start = time.perf_counter()
    stamps = []
    for result in prepare.run_extraction(jobs, settings, workers):
        if result.failure is not None:
            raise SystemExit(f"extraction failed: {result.failure}")
        stamps.append(time.perf_counter())
    burst_ends = [i for i in range(len(stamps)) if i + 1 == len(stamps) or
                  stamps[i + 1] - stamps[i] > 1e-3]  # fmt: skip
    first = burst_ends[min(workers, len(burst_ends)) - 1]
    steady = (len(stamps) - 1 - first) / (stamps[-1] - stamps[first])
    return steady, len(stamps) / (stamps[-1] - start)


def engine_seconds(engine, jobs, settings: ExtractSettings, scratch: Path, prepare) -> float:
    """Wall seconds for ``engine`` to extract and commit ``jobs`` into a fresh part store."""
    parts = Path(tempfile.mkdtemp(dir=scratch)) / "parts" / "task-00000-of-00001"
    store = prepare.PartStore(parts)
    start = time.perf_counter()
    try:
        engine.extract(jobs, store, settings, False)
        seconds = time.perf_counter() - start
        failed = [f for s in store.sidecars.values() for f in s["failures"]]
        if failed:
            raise SystemExit(f"extraction failed: {failed[0]}")
    finally:
        store.close()
        shutil.rmtree(parts.parent.parent)
    return seconds


def renamed_jobs(jobs, count: int) -> list[tuple[Segment, ClipFile]]:
    """``count`` jobs cycling through the clips, each with a clip id of its own."""
    cycled = itertools.islice(itertools.cycle(jobs), count)
    return [(replace(s, ytid=f"e{i:05d}{s.ytid[6:]}"), c) for i, (s, c) in enumerate(cycled)]


def engines(jobs, settings: ExtractSettings, scratch: Path, args, prepare) -> None:
    """Local vs Beam engine, two workers each: steady clips/s and fixed start-up seconds."""
    from tfambient import beam_engine

    local = prepare.LocalEngine(ENGINE_WORKERS)
    options = beam_engine.pipeline_options(
        f"runner=DirectRunner,direct_num_workers={ENGINE_WORKERS},"
        "direct_running_mode=multi_processing"
    )
    beam = beam_engine.BeamEngine(options)
    n = args.engine_clips
    sizes = {n: renamed_jobs(jobs, n), 2 * n: renamed_jobs(jobs, 2 * n)}
    times: dict[str, dict[int, list[float]]] = {"local": {}, "beam": {}}
    for round_ in range(args.repeats):
        progress(
            f"engines, round {round_ + 1}/{args.repeats}: local and Beam on {n} and {2 * n} clips"
        )
        for name, engine in (("local", local), ("beam", beam)):
            for size, batch in sizes.items():
                seconds = engine_seconds(engine, batch, settings, scratch, prepare)
                times[name].setdefault(size, []).append(seconds)
    rows, rates = [], {}
    for name, by_size in times.items():
        small, large = min(by_size[n]), min(by_size[2 * n])
        rates[name] = n / (large - small)
        startup = small - n / rates[name]
        rows.append([name, f"{small:.1f}", f"{large:.1f}", f"{rates[name]:.2f}", f"{startup:.1f}"])
    print()
    print(f"engines, {ENGINE_WORKERS} workers each, best of {args.repeats}: t(n) and t(2n) for "
          f"n={n} clips, steady rate n/(t(2n)-t(n)), start-up t(n)-n/rate")  # fmt: skip
    table(["engine", "t(n) s", "t(2n) s", "steady clips/s", "start-up s"], rows)
    ratio = rates["beam"] / rates["local"]
    verdict = "PASS" if ratio >= BEAM_GOAL else "below goal"
    print(f"Beam/local steady throughput: {ratio:.2f} (goal >= {BEAM_GOAL}): {verdict}")


def compare_engines(jobs, settings: ExtractSettings, args, prepare) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="engines-", dir=args.clip_dir))
    try:
        engines(jobs, settings, scratch, args, prepare)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# ---------------------------------------------------------------------------- baselines


def texture_before() -> types.ModuleType:
    """The texture module as it was before issue 12 (float64 band stage at 32x bandwidth),
    read from this repository's history: the library no longer holds it."""
    commit, path = TEXTURE_BEFORE
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("texture_before")
    exec(compile(source, f"{commit[:7]}:{path}", "exec"), module.__dict__)
    return module


def frames_by_seeking(clip: media.MediaFile, times_s, at: str = "exact"):
    """MediaFile.frame_at before issue 12, for each time: a seek to the keyframe before it
    and every frame decoded up to it (no frames_at, no skipping of unreferenced frames)."""
    out = []
    for time_s in times_s:
        frame, frame_s, _ = clip._nearest_frame(clip._video, float(time_s), seek_s=float(time_s))
        out.append(media.DecodedFrame(frame.to_ndarray(format="rgb24"), frame_s))
    return out


@contextlib.contextmanager
def before_issue12(texture_module: types.ModuleType) -> Iterator[None]:
    """extract_clip as it ran before issue 12: frames by seeking, audio decoded over the
    segment's whole span (each of these files holds just its segment: the whole file),
    the float64 texture code. Descriptors were computed per clip then as now."""
    saved = media.MediaFile.frames_at, media.MediaFile.restrict_audio, sound.DESCRIPTORS
    restrict = saved[1]
    media.MediaFile.frames_at = frames_by_seeking
    media.MediaFile.restrict_audio = lambda clip, *_: restrict(clip, 0.0, clip.info.duration_s)
    texture = replace(saved[2]["texture"], features=texture_module.texture_of_mono)
    sound.DESCRIPTORS = {**saved[2], "texture": texture}
    try:
        yield
    finally:
        media.MediaFile.frames_at, media.MediaFile.restrict_audio, sound.DESCRIPTORS = saved


def run_ffmpeg(ffmpeg: str, *args: str) -> bytes:
    return subprocess.run([ffmpeg, "-v", "error", *args], capture_output=True, check=True).stdout


def extract_2019(ffmpeg: str, path: Path, settings: ExtractSettings, phases: dict) -> None:
    """One clip the 2019 reproduction's way: an ffmpeg process writes the centre frame as a
    JPEG of the stored size, another the audio window as PCM; then the texture (the oracle,
    standing in for the published code) and librosa's MFCCs at 22.05 kHz."""
    info = media.probe(path)
    centre, window = info.duration_s / 2, settings.audio_window_s
    side = settings.short_side
    scale = f"scale='if(lt(iw,ih),{side},-2)':'if(lt(iw,ih),-2,{side})'"
    with extract._timed(phases, "ffmpeg frame"):
        run_ffmpeg(ffmpeg, "-ss", f"{centre:.3f}", "-i", str(path), "-frames:v", "1", "-vf",
                   scale, "-q:v", "2", "-f", "image2pipe", "-c:v", "mjpeg", "-")  # fmt: skip
    with extract._timed(phases, "ffmpeg audio"):
        pcm = run_ffmpeg(ffmpeg, "-ss", f"{centre - window / 2:.3f}", "-t", f"{window}", "-i",
                         str(path), "-vn", "-f", "f32le", "-c:a", "pcm_f32le", "-")  # fmt: skip
    audio = np.frombuffer(pcm, np.float32).reshape(-1, info.audio_channels)
    with extract._timed(phases, "texture"):
        oracle_texture(audio, info.audio_rate)
    with extract._timed(phases, "mfcc"):
        mono = librosa.resample(audio.mean(axis=1), orig_sr=info.audio_rate, target_sr=22_050)
        mfcc = librosa.feature.mfcc(y=mono, sr=22_050, n_mfcc=20)
        np.concatenate([mfcc.ravel(), mfcc.mean(axis=1), mfcc.std(axis=1)])


def pass_2019(ffmpeg: str, jobs, settings: ExtractSettings) -> Pass:
    """extract_2019 for every clip; CPU time includes the ffmpeg processes'."""

    def cpu() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    phases: dict[str, float] = {}
    wall, used = time.perf_counter(), cpu()
    for _, clip in jobs:
        extract_2019(ffmpeg, clip.path, settings, phases)
    return Pass(time.perf_counter() - wall, cpu() - used, phases)


def load_texture_before() -> tuple[types.ModuleType | None, str]:
    """(the texture module before issue 12, "") or (None, why it cannot be had)."""
    try:
        return texture_before(), ""
    except (OSError, subprocess.CalledProcessError) as error:
        return None, f"git show {TEXTURE_BEFORE[0][:7]}:{TEXTURE_BEFORE[1]} failed: {error}"


def find_ffmpeg() -> tuple[str | None, str]:
    """(the imageio-ffmpeg wheel's ffmpeg, "") or (None, why it cannot be used)."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe(), ""
    except (ImportError, RuntimeError) as error:
        return None, f"{type(error).__name__}: {error}"


def versus_rounds(jobs, settings: ExtractSettings, args, prepare) -> dict[str, list[Pass]]:
    """Per round on one core: before issue 12, now (exact and keyframe), the 2019 way."""
    old, old_why = load_texture_before()
    ffmpeg, ffmpeg_why = find_ffmpeg()
    if old is None:
        print(f"before issue 12: skipped ({old_why})")
    if ffmpeg is None:
        print(f"2019 reproduction: skipped, no ffmpeg from imageio-ffmpeg ({ffmpeg_why})")
    scratch = Path(tempfile.mkdtemp(prefix="versus-", dir=args.clip_dir))
    keyframe = replace(settings, frame_at="keyframe")

    def before(batch) -> Pass:
        with before_issue12(old):
            return full_pass(batch, settings, scratch, prepare, per_call=1)

    def reproduction(batch) -> Pass:
        with one_cpu():  # ffmpeg's threads too
            return pass_2019(ffmpeg, batch, settings)

    runs = {
        BEFORE: before if old is not None else None,
        EXACT: lambda batch: full_pass(batch, settings, scratch, prepare),
        KEYFRAME: lambda batch: full_pass(batch, keyframe, scratch, prepare),
        REPRODUCTION: reproduction if ffmpeg is not None else None,
    }
    runs = {name: run for name, run in runs.items() if run is not None}
    passes: dict[str, list[Pass]] = {name: [] for name in runs}
    try:
        with threadpoolctl.threadpool_limits(1):
            progress("warming up (filter banks, codecs, the oracle) ...")
            for run in runs.values():
                run(jobs[:1])
            for round_ in range(args.repeats):
                progress(f"versus, round {round_ + 1}/{args.repeats}: {'; '.join(runs)}")
                for name, run in runs.items():
                    passes[name].append(run(jobs))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return passes


def versus(jobs, settings: ExtractSettings, args, prepare) -> None:
    """(a) clips/s per core now against before issue 12; (b) against the 2019 way."""
    passes = versus_rounds(jobs, settings, args, prepare)
    clips = len(jobs)
    print()
    print(f"preparation on one core, {clips} clips, best of {args.repeats}, ms per clip "
          "(extract_clips and the commit of one part; the 2019 way writes nothing)")  # fmt: skip
    header = ["configuration", "clips/s", "ms/clip", "decode", "descriptors", "JPEG", "write",
              "other", "CPU/wall"]  # fmt: skip
    table(header, [pass_row(n, best(p), clips) for n, p in passes.items() if n != REPRODUCTION])
    now = passes[EXACT]
    for name in (EXACT, KEYFRAME):
        if BEFORE in passes:
            print_ratio(f"{name} vs before issue 12", passes[name], passes[BEFORE], BEFORE_GOAL)
    if REPRODUCTION not in passes:
        return
    old = best(passes[REPRODUCTION])
    print()
    print("the 2019 reproduction's way, per clip (ms): ffmpeg processes for the frame and the "
          "audio, the texture oracle, librosa MFCCs; CPU includes ffmpeg's")  # fmt: skip
    steps = list(old.phases)
    table(["configuration", "clips/s", "ms/clip", *steps, "CPU/wall"],
          [[REPRODUCTION, f"{clips / old.wall:.2f}", f"{1000 * old.wall / clips:.1f}",
            *(f"{1000 * old.phases[k] / clips:.1f}" for k in steps),
            f"{old.cpu / old.wall:.2f}"]])  # fmt: skip
    print_ratio(f"{EXACT} vs {REPRODUCTION}", now, passes[REPRODUCTION], REPRODUCTION_GOAL)
    print_ratio(f"{KEYFRAME} vs {REPRODUCTION}", passes[KEYFRAME], passes[REPRODUCTION],
                REPRODUCTION_GOAL)  # fmt: skip
    published = old.wall - old.phases["texture"] * (1 - 1 / PUBLISHED_VS_ORACLE)
    ratio = published / best(now).wall
    print(f"{EXACT} vs {REPRODUCTION} with the published texture code in place of the oracle "
          f"(its texture time / {PUBLISHED_VS_ORACLE}): {ratio:.2f}x (estimated)")  # fmt: skip


def print_ratio(label: str, faster: list[Pass], slower: list[Pass], goal: float) -> None:
    """Throughput ratio of the best passes by wall and by CPU time, and per round."""
    wall = best(slower).wall / best(faster).wall
    cpu = min(p.cpu for p in slower) / min(p.cpu for p in faster)
    paired = [s.wall / f.wall for f, s in zip(faster, slower, strict=True)]
    verdict = "PASS" if wall >= goal else "below goal"
    print(f"{label}: {wall:.2f}x clips/s per core (goal >= {goal}x): {verdict}; by CPU time "
          f"{cpu:.2f}x; per round median {statistics.median(paired):.2f}x "
          f"(range {min(paired):.2f}-{max(paired):.2f})")  # fmt: skip


def best(passes: list[Pass]) -> Pass:
    return min(passes, key=lambda p: p.wall)


# ---------------------------------------------------------------------------- output


PHASES = ("decode", "describe", "jpeg", "write")


def pass_row(name: str, p: Pass, clips: int) -> list[str]:
    ms = {k: 1000 * v / clips for k, v in p.phases.items()}
    other = 1000 * p.wall / clips - sum(ms.values())
    cells = [f"{ms[k]:.1f}" if k in ms else "-" for k in PHASES]
    if "serialise" in p.extra:
        cells[3] += f" ({1000 * p.extra['serialise'] / clips:.1f})"
    return [
        name,
        f"{clips / p.wall:.2f}",
        f"{1000 * p.wall / clips:.1f}",
        *cells,
        f"{other:.1f}" if len(ms) > 1 else "-",
        f"{p.cpu / p.wall:.2f}",
    ]


def shares(p: Pass) -> dict[str, float]:
    out = {k: 100 * p.phases.get(k, 0.0) / p.wall for k in PHASES}
    out["other"] = 100 - sum(out.values())
    return out


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16, help="distinct generated clips")
    parser.add_argument("--repeats", type=int, default=5, help="passes per figure (best kept)")
    parser.add_argument(
        "--clip_dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / CACHE_NAME,
        help="where the generated clips are cached (default: %(default)s)",
    )
    parser.add_argument(
        "--max_workers", type=int, default=os.cpu_count() or 1, help="largest pool measured"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 clips, 1 repeat")
    parser.add_argument(
        "--engines_only", action="store_true", help="only local engine vs Beam engine"
    )
    parser.add_argument(
        "--versus_only",
        action="store_true",
        help="only now against before issue 12 and against the 2019 reproduction's way",
    )
    parser.add_argument(
        "--engine_clips", type=int, default=48, help="n of the engines' t(n) and t(2n)"
    )
    args = parser.parse_args()
    if args.quick:
        args.clips, args.repeats = 4, 1
    if args.clips < 2 or args.repeats < 1 or args.max_workers < 1:
        parser.error("--clips must be >= 2, --repeats and --max_workers >= 1")

    began = time.perf_counter()
    progress("importing tfambient.prepare (TensorFlow) ...")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its start-up chatter is not ours
    from tfambient import prepare

    paths = ensure_clips(args.clip_dir, args.clips)
    jobs = clip_jobs(paths)
    info = media.probe(paths[0])
    keys = sorted({keyframes(p) for p in paths})
    size_mb = np.mean([p.stat().st_size for p in paths]) / 1e6
    settings = ExtractSettings()
    singles = {name: replace(settings, descriptors=(name,)) for name in settings.descriptors}
    clips = len(jobs)

    print(
        f"{clips} clips: {info.duration_s:.2f} s {info.width}x{info.height} H.264 at "
        f"{info.fps:g} fps, keyframes per clip {'/'.join(map(str, keys))} (x264 default keyint "
        f"250), {info.audio_rate} Hz {info.audio_channels}-channel AAC, {size_mb:.1f} MB each"
    )
    print(
        f"settings: {settings.frames_per_clip} frame per clip, {settings.audio_window_s} s "
        f"window, short_side {settings.short_side}, jpeg_quality {settings.jpeg_quality}, "
        f"descriptors {','.join(settings.descriptors)}; {args.repeats} pass(es) per figure, "
        f"best kept; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )

    if args.engines_only:
        compare_engines(jobs, settings, args, prepare)
        return
    if args.versus_only:
        versus(jobs, settings, args, prepare)
        return

    counts = sorted({1, args.max_workers})
    calls = 4 * extract.CLIPS_PER_CALL * max(counts)  # several calls per worker
    pool_jobs = list(itertools.islice(itertools.cycle(jobs), max(clips, calls)))
    scratch = Path(tempfile.mkdtemp(prefix="parts-", dir=args.clip_dir))
    decoded: list[Pass] = []
    full: list[Pass] = []
    single: dict[str, list[Pass]] = {name: [] for name in singles}
    steady: dict[int, list[float]] = {k: [] for k in counts}
    cold: dict[int, list[float]] = {k: [] for k in counts}
    try:
        with threadpoolctl.threadpool_limits(1):
            progress("warming up (filter banks, codecs) ...")
            decode_pass(jobs[:1], settings)
            full_pass(jobs[:1], settings, scratch, prepare)
            for s in singles.values():
                extract_all(jobs[:1], s)
        for round_ in range(args.repeats):
            progress(
                f"round {round_ + 1}/{args.repeats}: one core, then pools of "
                f"{' and '.join(map(str, counts))} worker(s) on {len(pool_jobs)} clips"
            )
            with threadpoolctl.threadpool_limits(1):
                decoded.append(decode_pass(jobs, settings))
                full.append(full_pass(jobs, settings, scratch, prepare))
                for name, s in singles.items():
                    single[name].append(extract_all(jobs, s)[1])
            for k in counts:
                rate, with_start = pool_pass(pool_jobs, settings, k, prepare)
                steady[k].append(rate)
                cold[k].append(with_start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    dec, ful = best(decoded), best(full)
    print()
    print("one core, per clip (ms); write = commit of one part of all clips (serialise alone)")
    header = ["pass", "clips/s", "ms/clip", "decode", "descriptors", "JPEG", "write", "other",
              "CPU/wall"]  # fmt: skip
    rows = [pass_row("decode alone", dec, clips), pass_row("full prepare", ful, clips)]
    rows += [pass_row(f"extract, {n} only", best(single[n]), clips) for n in singles]
    table(header, rows)
    print(f"part file: {ful.extra['part_bytes'] / clips / 1e3:.1f} kB per clip")

    print()
    print(f"run_extraction pool, {len(pool_jobs)} clips, best of {args.repeats}; steady = from "
          "the k-th call's results to the last")  # fmt: skip
    one = max(steady[1])
    rows = [
        [
            str(k),
            f"{max(steady[k]):.2f}",
            f"{max(steady[k]) / k:.2f}",
            f"{max(steady[k]) / one:.2f}x",
            f"{max(cold[k]):.2f}",
        ]
        for k in counts
    ]
    table(
        ["workers", "clips/s", "clips/s per worker", "vs 1 worker", "clips/s with start-up"], rows
    )

    x, y = clips / dec.wall, clips / ful.wall
    ratio = y / x
    paired = [d.wall / f.wall for d, f in zip(decoded, full, strict=True)]
    split = shares(ful)
    verdict = "PASS" if ratio >= GOAL else "below goal"
    print()
    print(
        f"decode alone: {x:.2f} clips/s/core; full prepare: {y:.2f} clips/s/core (decode "
        f"{split['decode']:.0f}%, descriptors {split['describe']:.0f}%, JPEG "
        f"{split['jpeg']:.0f}%, write {split['write']:.0f}%, other {split['other']:.0f}%); "
        f"ratio Y/X = {ratio:.2f} (goal >= {GOAL}): {verdict}"
    )
    print(
        f"per-round ratio: median {statistics.median(paired):.2f} "
        f"(range {min(paired):.2f}-{max(paired):.2f})"
    )
    dec_cpu, full_cpu = min(p.cpu for p in decoded), min(p.cpu for p in full)
    print(
        f"by CPU time: decode alone {clips / dec_cpu:.2f} clips/s, full prepare "
        f"{clips / full_cpu:.2f} clips/s, ratio {dec_cpu / full_cpu:.2f}"
    )
    top = max(counts)
    print(
        f"pool: {max(steady[top]):.2f} clips/s with {top} worker(s), "
        f"{max(steady[top]) / top:.2f} clips/s per worker (1 worker: {one:.2f})"
    )
    print(
        f"run: {time.perf_counter() - began:.0f} s wall; load average at the end "
        f"{os.getloadavg()[0]:.2f} (other processes on these CPUs skew the pool figures most)"
    )
    versus(jobs, settings, args, prepare)
    compare_engines(jobs, settings, args, prepare)


if __name__ == "__main__":
    main()
