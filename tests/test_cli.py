"""End to end through the real console scripts, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import clips
import numpy as np
import pytest

pytestmark = pytest.mark.slow


def run(*args, check_rc=0):
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == check_rc, result.stderr
    return result


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "rain.mp4"
    clips.write_demo_clip(str(path), duration_s=5.0, seed=1)
    return path


# The installed console script, as a user runs it.
DESCRIBE = str(Path(sys.executable).with_name("tfambient-describe"))


def describe(*args, check_rc=0):
    return run(DESCRIBE, *args, check_rc=check_rc)


def test_describe_prints_each_descriptor_and_the_texture_slot_ranges(clip):
    out = describe("--descriptors=texture,mfcc_summary", str(clip)).stdout
    assert "3.75 s window at 2.500 s, 44100 Hz" in out
    assert "texture: 502-d" in out and "mfcc_summary: 40-d" in out
    for slot in ("envelope_mean", "envelope_std", "envelope_corr", "modulation_power"):
        assert slot in out


def test_describe_writes_npy_equal_to_the_library(clip, tmp_path):
    describe(f"--output_dir={tmp_path}", "--time_s=2.0", "--descriptors=texture", str(clip))
    saved = np.load(tmp_path / "rain.texture.npy")
    from tfambient import media, sound

    window = media.read_audio_window(clip, 2.0, 3.75, 44100)
    np.testing.assert_allclose(
        saved, sound.DESCRIPTORS["texture"](window.samples, 44100), atol=1e-6
    )


def test_describe_reads_a_flagfile(clip, tmp_path):
    flagfile = tmp_path / "describe.flags"
    flagfile.write_text("--descriptors=mfcc_summary\n--window_s=2\n--rate=16000\n")
    out = describe(f"--flagfile={flagfile}", str(clip)).stdout
    assert "2 s window" in out and "16000 Hz" in out and "texture" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--descriptors=nope"], "unknown descriptor nope"),
        (["--window_s=0.5"], "--window_s"),
        (["--no_such_flag"], "no_such_flag"),
        ([], "name at least one media file"),
    ],
)
def test_user_mistakes_give_one_line_and_status_2(clip, args, message):
    files = [str(clip)] if args else []
    err = describe(*args, *files, check_rc=2).stderr.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_bad_files_are_listed_with_their_reason_and_the_rest_described(clip, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    result = describe(str(broken), str(clip), str(tmp_path / "missing.webm"), check_rc=2)
    assert "texture: 502-d" in result.stdout
    assert f"{broken}: unreadable" in result.stderr
    assert "missing.webm: unreadable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_explains_every_flag(flag):
    out = describe(flag).stdout
    assert "sound descriptors" in out
    for flag in ("--time_s", "--window_s", "--descriptors", "--rate", "--output_dir"):
        assert flag in out


def test_outputs_that_would_overwrite_each_other_are_refused(clip, tmp_path):
    twin = tmp_path / "other" / clip.name
    twin.parent.mkdir()
    twin.write_bytes(clip.read_bytes())
    err = describe(f"--output_dir={tmp_path / 'out'}", str(clip), str(twin), check_rc=2).stderr
    assert "would overwrite each other" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
