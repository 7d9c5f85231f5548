"""The contracts are spelled once: record keys, label names, file names of the layouts.

Outside tfambient/contracts/, no library module may hold a string constant that is a record
key (or a key prefix such as ``f"label/{name}"``), a label-name pattern, or the name of
dataset.json or a workdir file used as a path: those are asked of the contracts. Prose that
mentions a file to a person (a docstring, a flag's help, "see failures.csv") is not code.
The round trips of the contracts themselves are checked here too.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tfambient.contracts import files, records
from tfambient.contracts.manifest import Manifest, ManifestError, Shard
from tfambient.contracts.records import LabelName
from tfambient.contracts.workdirs import (
    DataDir,
    FeatureDir,
    ProbeWorkdir,
    TrainWorkdir,
    VocWorkdir,
    WorkdirError,
    open_run,
)

PACKAGE = Path(__file__).resolve().parents[1] / "tfambient"
KEYS = [value for name, value in vars(records).items() if name.isupper() and isinstance(value, str)]
FILE_NAMES = [
    "dataset.json",
    "failures.csv",
    "dropped_frames.csv",
    "rejected_rows.csv",
    "clusters.json",
    "config.json",
    "metrics.jsonl",
    "metrics.json",
    "result.json",
    "problems.csv",
    "backbone.keras",
    "model.keras",
    "probe.json",
    "accuracy.csv",
    "accuracy.md",
    "per_class.csv",
    "index.csv",
    "features.json",
]


def _strings(tree: ast.AST):
    """String constants that are not docstrings."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node


def spelled_contracts(path: Path) -> list[str]:
    """``line: what`` for each contract a module spells in a string constant."""
    found = []
    for node in _strings(ast.parse(path.read_text())):
        text = node.value
        named = [k for k in KEYS if text == k or (k.endswith("/") and text.endswith(k))]
        named += [n for n in FILE_NAMES if text == n or text.endswith(f"/{n}")]
        if "_(?:k(" in text or "_k(?P" in text:
            named.append("a label-name pattern")
        found += [f"{node.lineno}: {n}" for n in named]
    return found


def test_no_library_module_spells_a_contract():
    modules = [p for p in sorted(PACKAGE.rglob("*.py")) if "contracts" not in p.parts]
    spelled = [
        f"{path.relative_to(PACKAGE.parent)}:{hit}"
        for path in modules
        for hit in spelled_contracts(path)
    ]
    assert spelled == []


def test_the_check_sees_a_spelled_key_but_not_a_docstring(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        '"""Reads dataset.json."""\nKEY = "clip/id"\nF = "dataset.json"\nP = r"_(?:k(\\d+))"\n'
        'H = "see dataset.json"\n'
    )
    assert spelled_contracts(module) == ["2: clip/id", "3: dataset.json", "4: a label-name pattern"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("texture_k30", LabelName("texture", "k", 30)),
        ("label/mfcc_bits30", LabelName("mfcc", "bits", 30)),
        ("mfcc_summary_k2", LabelName("mfcc_summary", "k", 2)),
    ],
)
def test_label_names_parse_and_format(text: str, name: LabelName):
    assert LabelName.parse(text) == name
    assert name.key == records.LABEL_PREFIX + name.name
    assert LabelName.parse(name.key) == name


@pytest.mark.parametrize("text", ["texture", "texture_k", "k30", "texture_x30", "random"])
def test_what_is_not_a_label_name_is_refused(text: str):
    assert not LabelName.is_valid(text)
    with pytest.raises(ValueError, match="not a label name"):
        LabelName.parse(text)


def test_the_manifest_round_trips_and_names_its_labels(tmp_path):
    k3, bits = LabelName("texture", "k", 3), LabelName("texture", "bits", 4)
    schema = {records.IMAGE: records.BASE_FIELDS[records.IMAGE], k3.key: k3.field()}
    schema[bits.key] = bits.field()
    shards = [Shard("shards/train-00000-of-00001.tfrecord", "train", 5)]
    Manifest.for_records(schema, shards).write(tmp_path)
    manifest = Manifest.read(tmp_path)
    assert manifest.shards("train") == shards and manifest.shards("val") == []
    assert manifest.records() == 5
    assert manifest.labels() == [k3, bits]
    assert manifest.label("texture_k3") == k3
    with pytest.raises(ManifestError, match=r"no label 'mfcc_k3'.*available: texture_bits4"):
        manifest.label("mfcc_k3")


def test_a_missing_or_damaged_manifest_is_one_clear_error(tmp_path):
    with pytest.raises(ManifestError, match="not found: run tfambient-prepare first"):
        Manifest.read(tmp_path)
    Manifest.path(tmp_path).write_text('{"schema": {}')
    with pytest.raises(ManifestError, match="cannot be read"):
        Manifest.read(tmp_path)
    Manifest.path(tmp_path).write_text(json.dumps({"schema": {}}))
    with pytest.raises(ManifestError, match="lacks shards"):
        Manifest.read(tmp_path)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    files.write_json(path, {"v": 1})

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(path, broken)
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_the_temporary_keeps_the_extension(tmp_path):
    with files.atomic_path(tmp_path / "model.keras") as tmp:
        assert tmp.suffix == ".keras" and files.is_partial(tmp)
        tmp.write_bytes(b"x")
    assert (tmp_path / "model.keras").read_bytes() == b"x"


def test_a_temporary_on_another_filesystem_keeps_its_url():
    tmp = files.temporary_name("gs://bucket/data/shards/train-00000-of-00001.tfrecord")
    assert tmp.startswith("gs://bucket/data/shards/.train-00000-of-00001.")
    assert tmp.endswith(".tfrecord") and files.is_partial(tmp)


def test_runs_are_told_apart_by_the_workdir_readers(tmp_path):
    train, voc = TrainWorkdir(tmp_path / "t"), VocWorkdir(tmp_path / "v")
    train.root.mkdir()
    voc.root.mkdir()
    train.write_config({"label": "texture_k3"})
    voc.write_config({"mode": "head"})
    files.write_json(voc.metrics, {"map_voc07": 0.5})
    assert isinstance(open_run(train.root), TrainWorkdir)
    assert isinstance(open_run(voc.root), VocWorkdir)
    assert TrainWorkdir.of_backbone(train.backbone) == train
    assert TrainWorkdir.of_backbone(tmp_path / "elsewhere.keras") is None


def test_a_probe_workdir_is_opened_once_finished(tmp_path):
    probe = ProbeWorkdir(tmp_path / "p")
    probe.features("train").root.mkdir(parents=True)
    probe.write_config({"backbone": "random"})  # config.json alone is no training run here
    with pytest.raises(WorkdirError, match="an unfinished tfambient-probe workdir"):
        open_run(probe.root)
    files.write_json(probe.results, {"layers": {}})
    assert isinstance(open_run(probe.root), ProbeWorkdir)


def test_feature_layers_count_as_written_when_every_shard_is(tmp_path):
    layout = FeatureDir(tmp_path)
    for layer, shards in (("fc7", (0, 1)), ("conv5", (1,))):
        for k in shards:
            layout.shard(layer, k, 2).write_bytes(b"")
    assert layout.layers_written(2) == ["fc7"]
    assert layout.shard("fc7", 1, 2).name == "fc7-00001-of-00002.npy"


def test_montages_are_the_ones_clusters_json_lists(tmp_path):
    layout = DataDir(tmp_path)
    layout.clusters.mkdir()
    k30, k2 = LabelName("texture", "k", 30), LabelName("texture", "k", 2)
    fields = {
        k30.key: {"montage": layout.relative(layout.cluster_montage(k30))},
        k2.key: {"montage": layout.relative(layout.cluster_montage(k2))},
        "label/texture_bits4": {"bits": 4},
    }
    files.write_json(layout.clusters_report, {"fields": fields})
    assert layout.montages() == [
        (k2, layout.cluster_montage(k2)),
        (k30, layout.cluster_montage(k30)),
    ]
