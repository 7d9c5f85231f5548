"""tfambient-describe FILE...: the sound descriptors of the audio around a time in each file.

Prints, per file, each descriptor's size and a short summary (the texture vector by slot
range), or writes them as .npy files with --output_dir. A file that cannot be read is
reported on its own line and skipped; the exit status is 2 if any file failed.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from absl import flags
from tqdm import tqdm

from tfambient import media, sound
from tfambient.cli.common import UserError, define_dataclass_flags
from tfambient.cli.common import run as run_app
from tfambient.configs import option
from tfambient.contracts.files import write_atomically
from tfambient.sound import texture

FLAGS = flags.FLAGS


@dataclass(frozen=True)
class DescribeConfig:
    """Which window of each file is described, and how."""

    time_s: float | None = option(
        None,
        "Centre of the audio window, in seconds from the start of each clip. "
        "Default: the middle of the clip.",
    )
    window_s: float = option(
        3.75,
        "Length of the audio window in seconds (Owens et al. use 3.75 s).",
        lower=sound.audio.MIN_WINDOW_S,
    )
    descriptors: str = option(
        "texture,mfcc_summary",
        f"Comma-separated descriptors to compute; known: {', '.join(sound.DESCRIPTORS)}.",
    )
    rate: int | None = option(
        None,
        "Decode audio at this rate (Hz) before describing. Default: the file's own rate.",
        lower=sound.audio.MIN_RATE,
    )
    output_dir: str | None = option(
        None, "If set, write <file stem>.<descriptor>.npy here instead of printing summaries."
    )


define_dataclass_flags(DescribeConfig, __name__)


def describe_file(path: str, names: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """Descriptors of one file's window, and a header line saying what was described."""
    with media.MediaFile(path) as clip:
        if not clip.info.has_audio:
            raise media.NoAudioStream(f"{path}: no audio stream")
        rate = FLAGS.rate or clip.info.audio_rate
        centre = clip.info.duration_s / 2 if FLAGS.time_s is None else FLAGS.time_s
        window = clip.audio_window(centre, FLAGS.window_s, rate)
    header = f"{path}: {FLAGS.window_s:g} s window at {centre:.3f} s, {rate} Hz"
    if window.padded:
        header += f" ({window.padded_s:.3f} s zero-padded: the clip is shorter)"
    return sound.describe(window.samples[np.newaxis], rate, names), header


def summary_lines(name: str, vector: np.ndarray) -> list[str]:
    """Human-sized summary: size and range, and for texture each slot range's mean."""
    lines = [
        f"  {name}: {vector.size}-d  min {vector.min():.4g}  mean {vector.mean():.4g}  "
        f"max {vector.max():.4g}  L2 {np.linalg.norm(vector):.4g}"
    ]
    if name == "texture":
        lines += [
            f"    {slot:<17} [{part.start:3d}:{part.stop:3d}]  mean {vector[part].mean():.4g}"
            for slot, part in texture.SLOTS.items()
        ]
    return lines


def save_vector(path: Path, vector: np.ndarray) -> None:
    """np.save under a temporary name, renamed when complete: never a truncated .npy."""
    write_atomically(path, lambda f: np.save(f, vector))


def check_distinct_stems(paths: list[str]) -> None:
    """Output files are named by stem; two inputs with one stem would overwrite each other."""
    repeated = [stem for stem, count in Counter(Path(p).stem for p in paths).items() if count > 1]
    if repeated:
        raise UserError(
            f"--output_dir: several inputs are named {repeated[0]!r}.*, so their outputs would "
            "overwrite each other; describe them into different directories"
        )


def main(argv: list[str]) -> int:
    paths = argv[1:]
    if not paths:
        raise UserError("name at least one media file, e.g. tfambient-describe clip.mp4")
    try:
        names = sound.parse_names(FLAGS.descriptors)
    except ValueError as error:
        raise UserError(f"--descriptors: {error}") from None
    output_dir = Path(FLAGS.output_dir) if FLAGS.output_dir else None
    if output_dir:
        check_distinct_stems(paths)
        output_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in tqdm(paths, desc="describe", unit="file", disable=len(paths) < 2, file=sys.stderr):
        try:
            vectors, header = describe_file(path, names)
        except (media.MediaError, sound.InvalidAudio) as error:
            failures += 1
            reason = getattr(error, "reason", "invalid_audio")
            detail = str(error).removeprefix(f"{path}: ")  # media errors name the file
            tqdm.write(f"error: {path}: {reason}: {detail}", file=sys.stderr)
            continue
        if output_dir:
            for name, vector in vectors.items():
                save_vector(output_dir / f"{Path(path).stem}.{name}.npy", vector[0])
            tqdm.write(f"{header} -> {output_dir}/{Path(path).stem}.*.npy")
        else:
            lines = [line for n, v in vectors.items() for line in summary_lines(n, v[0])]
            tqdm.write("\n".join([header, *lines]))
    return 2 if failures else 0


def run() -> None:
    run_app(main)
