"""The report: finished runs turned into the paper's figures and tables for the user's own data.

``build_sections`` reads pretext training workdirs (config.json, metrics.jsonl,
export/backbone.keras), their prepared data directories (cluster montages, shards), VOC
transfer workdirs (metrics.json, metrics.jsonl) and linear-probe workdirs (probe.json), and
makes one :class:`Section` per figure: sound clusters (Figure 1), what units respond to
(Figure 2), mAP against cluster count (Figure 3), texture against MFCC per class (Figure 4),
the per-class AP table (Table 2), training curves, activation maximization and the linear
probes' accuracy layer by layer. A section whose inputs are absent keeps a note
saying what it needs. ``write_report`` writes index.html (figures embedded, so the page
travels alone), report.md and figures/*.png, each through a temporary file.

Figures are drawn on matplotlib ``Figure`` objects (no pyplot state). TensorFlow is imported
only when a pretext run's backbone is studied, so a report of VOC runs alone stays light.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, PercentFormatter

from tfambient import architectures
from tfambient.configs import ReportConfig
from tfambient.contracts.files import write_bytes, write_text
from tfambient.contracts.manifest import Manifest
from tfambient.contracts.records import LabelName
from tfambient.contracts.workdirs import (
    DataDir,
    ProbeWorkdir,
    TrainWorkdir,
    VocWorkdir,
    open_run,
)
from tfambient.voc import CLASSES
from tfambient.voc.metrics import SHORT_NAMES, APResult

FIGURES_DIR = "figures"
DPI = 110
MODES = ("head", "all", "svm")
_NUMBER = re.compile(r"–|\d+(\.\d+)?")
MODE_LINES = {"head": "-", "all": "--", "svm": ":"}
MODE_MARKERS = {"head": "o", "all": "s", "svm": "^"}


# Runs


@dataclass(frozen=True)
class PretextRun:
    """A tfambient-train workdir."""

    path: Path
    config: dict
    curve: list[dict]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def backbone_file(self) -> Path:
        return TrainWorkdir(self.path).backbone


@dataclass(frozen=True)
class VocRun:
    """A tfambient-voc workdir."""

    path: Path
    metrics: dict
    curve: list[dict]

    @property
    def mode(self) -> str:
        return self.metrics["mode"]

    @property
    def pretext_label(self) -> str:
        """The pretext label ("texture_k30"), "random" for a random init, else "unknown"."""
        return pretext_label(self.metrics)

    @property
    def ap(self) -> APResult:
        return APResult.from_dict(self.metrics)


@dataclass(frozen=True)
class ProbeRun:
    """A tfambient-probe workdir."""

    path: Path
    results: dict

    @property
    def pretext_label(self) -> str:
        return pretext_label(self.results)

    def top1(self) -> dict[str, float]:
        """Val top-1 accuracy (a fraction) of each probed layer, in the probe's order."""
        return {layer: result["top1"] for layer, result in self.results["layers"].items()}


def pretext_label(metrics: dict) -> str:
    """The pretext label of the backbone a VOC or probe run measured ("texture_k30"),
    "random" for a random init, else "unknown"."""
    if metrics.get("backbone") == "random":
        return "random"
    return (metrics.get("pretext") or {}).get("label", "unknown")


Run = PretextRun | VocRun | ProbeRun


def load_run(path: str | Path) -> Run:
    """The run in ``path``, of the kind its files say; ValueError (one line) otherwise."""
    run = open_run(path)
    if isinstance(run, VocWorkdir):
        return VocRun(run.root, run.read_metrics(), run.read_metrics_log())
    if isinstance(run, ProbeWorkdir):
        return ProbeRun(run.root, run.read_results())
    return PretextRun(run.root, run.read_config(), run.read_metrics_log())


def parse_label(label: str) -> LabelName | None:
    """ "texture_k30" -> its LabelName; None for "random", "unknown" and the like."""
    return LabelName.parse(label) if LabelName.is_valid(label) else None


def voc_names(runs: Sequence[VocRun]) -> list[str]:
    """ "texture_k30 · head" per run; the directory is added where two would read the same."""
    return _distinct([f"{run.pretext_label} · {run.mode}" for run in runs], runs)


def _distinct(names: list[str], runs: Sequence[VocRun | ProbeRun]) -> list[str]:
    """The names, each followed by its run's directory where two would read the same."""
    repeated = {name for name in names if names.count(name) > 1}
    return [
        f"{name} ({run.path.name})" if name in repeated else name
        for name, run in zip(names, runs, strict=True)
    ]


def _sort_key(run: VocRun) -> tuple:
    parsed = parse_label(run.pretext_label)
    label = (parsed.descriptor, parsed.kind, parsed.size) if parsed else (run.pretext_label, "", 0)
    mode = MODES.index(run.mode) if run.mode in MODES else len(MODES)
    return (mode, run.pretext_label == "random", *label, str(run.path))


# The data behind Figures 3 and 4


@dataclass
class Sweep:
    """Figure 3's data: VOC07 mAP (a fraction) against K, per (descriptor, mode)."""

    lines: dict[tuple[str, str], list[tuple[int, float]]]
    random: dict[str, float]  # mode -> mAP of random-init runs


def cluster_sweep(runs: Iterable[VocRun]) -> Sweep:
    """The (K, mAP) points of runs whose pretext label is <descriptor>_k<K>, sorted by K
    (runs that share a point are averaged), and the random-init mAP of each mode."""
    points: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    random: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        if run.pretext_label == "random":
            random[run.mode].append(run.metrics["map_voc07"])
            continue
        parsed = parse_label(run.pretext_label)
        if parsed and parsed.kind == "k":
            points[(parsed.descriptor, run.mode)][parsed.size].append(run.metrics["map_voc07"])
    lines = {
        key: [(k, float(np.mean(maps))) for k, maps in sorted(by_k.items())]
        for key, by_k in sorted(points.items())
    }
    return Sweep(lines, {mode: float(np.mean(maps)) for mode, maps in sorted(random.items())})


def texture_mfcc_pairs(runs: Sequence[VocRun]) -> list[tuple[VocRun, VocRun]]:
    """(texture run, MFCC run) with the same mode and label suffix (k30, bits30): Figure 4
    compares one variable, the sound descriptor. MFCC means any mfcc* descriptor."""
    parsed = [(run, parse_label(run.pretext_label)) for run in runs]
    labelled = [(run, p) for run, p in parsed if p is not None]
    return [
        (texture, mfcc)
        for texture, ours in labelled
        if ours.descriptor == "texture"
        for mfcc, theirs in labelled
        if theirs.descriptor.startswith("mfcc")
        and (theirs.kind, theirs.size, mfcc.mode) == (ours.kind, ours.size, texture.mode)
    ]


# Page parts


@dataclass
class Picture:
    """A figure: its file name in figures/, a caption, the PNG."""

    name: str
    caption: str
    png: bytes


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One part of the page; without pictures or tables its notes say why it is absent."""

    title: str
    what: str  # one sentence: what it shows and how to read it
    pictures: list[Picture] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# Figures


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _hide_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def units_figure(title: str, layer: str, study) -> bytes:
    """One row per unit (its number and selectivity on the left), its top frames across."""
    rows, k = study.responses.shape
    figure = _new_figure(1.25 * k + 1.2, 1.3 * rows + 0.7)
    figure.suptitle(title, fontsize=12)
    axes = figure.subplots(rows, k, squeeze=False)
    for r, c in np.ndindex(rows, k):
        ax = axes[r, c]
        ax.imshow(study.images[r, c], interpolation="nearest")
        _hide_axes(ax)
        ax.set_title(f"{study.responses[r, c]:.3g}", fontsize=8, pad=2)
    for r in range(rows):
        axes[r, 0].set_ylabel(
            f"{layer} #{study.units[r]}\nmax/mean {study.selectivity[r]:.1f}", fontsize=9
        )
    return _png(figure)


def sweep_figure(sweep: Sweep) -> bytes:
    """mAP (%) against K on a log axis, a line per (descriptor, mode), random init dashed."""
    figure = _new_figure(7.5, 4.8)
    ax = figure.subplots()
    descriptors = sorted({descriptor for descriptor, _ in sweep.lines})
    colours = {d: f"C{i}" for i, d in enumerate(descriptors)}
    for (descriptor, mode), points in sweep.lines.items():
        ks, maps = zip(*points, strict=True)
        ax.plot(
            ks,
            [100 * m for m in maps],
            color=colours[descriptor],
            marker=MODE_MARKERS.get(mode, "D"),
            linestyle=MODE_LINES.get(mode, "-."),
            label=f"{descriptor}, {mode}",
        )
    for mode, value in sweep.random.items():
        style = MODE_LINES.get(mode, "-.")
        ax.axhline(100 * value, color="0.4", linestyle=style, lw=1.2, label=f"random init, {mode}")
    ks = sorted({k for points in sweep.lines.values() for k, _ in points})
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlim(ks[0] / 1.4, ks[-1] * 1.4)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_xlabel("number of sound clusters K (log scale)")
    ax.set_ylabel("VOC07 test mAP (11-point)")
    ax.set_title("Transfer to PASCAL VOC 2007 against the number of sound clusters")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="best")
    return _png(figure)


def texture_mfcc_figure(texture: VocRun, mfcc: VocRun) -> bytes:
    """Grouped bars: each class's VOC07 AP (%) after texture and after MFCC pretraining."""
    figure = _new_figure(11, 4.6)
    ax = figure.subplots()
    x = np.arange(len(CLASSES))
    for offset, run in ((-0.2, texture), (0.2, mfcc)):
        ap = run.ap
        ax.bar(
            x + offset,
            100 * ap.voc07,
            width=0.4,
            label=f"{run.pretext_label} (mAP {100 * ap.map_voc07:.1f})",
        )
    undefined = np.isnan(texture.ap.voc07) | np.isnan(mfcc.ap.voc07)
    for position in x[undefined]:
        ax.text(position, 1, "no positives", rotation=90, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, SHORT_NAMES, rotation=45, ha="right")
    ax.set_xlim(-0.6, len(CLASSES) - 0.4)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_ylabel("average precision (VOC07 11-point)")
    ax.set_title(f"Per-class AP on VOC 2007 test, {texture.mode} fine-tuning: texture vs MFCC")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=9)
    return _png(figure)


def pretext_curves_figure(runs: Sequence[PretextRun]) -> bytes:
    """Loss and top-1 against step: training solid, validation dashed, a colour per run."""
    figure = _new_figure(11, 4.2)
    loss_ax, top_ax = figure.subplots(1, 2)
    for i, run in enumerate(runs):
        colour, label = f"C{i % 10}", f"{run.name} ({run.config.get('label', '?')})"
        _curve(loss_ax, run.curve, "loss", colour, "-", f"{label} train")
        _curve(loss_ax, run.curve, "eval_loss", colour, "--", f"{label} val", marker="o")
        _curve(top_ax, run.curve, "top1", colour, "-", f"{label} train")
        _curve(top_ax, run.curve, "eval_top1", colour, "--", f"{label} val", marker="o")
        _curve(top_ax, run.curve, "eval_top5", colour, ":", f"{label} val top-5", marker=".")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.set_title("Pretext loss")
    top_ax.set_ylabel("accuracy")
    top_ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    top_ax.set_title("Pretext accuracy (top-1; bit accuracy for codes)")
    for ax in (loss_ax, top_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(figure)


def voc_curves_figure(runs: Sequence[VocRun], names: Sequence[str]) -> bytes:
    """Fine-tuning loss against step, a line per VOC run."""
    figure = _new_figure(8, 4.2)
    ax = figure.subplots()
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        _curve(ax, run.curve, "loss", f"C{i % 10}", "-", name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("fine-tuning step")
    ax.set_ylabel("sigmoid cross-entropy loss")
    ax.set_title("VOC 2007 fine-tuning loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(figure)


def _curve(ax, records: Sequence[dict], key: str, colour: str, style: str, label: str, **kw):
    points = [(r["step"], r[key]) for r in records if key in r]
    if points:
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, color=colour, linestyle=style, label=label, **kw)


def maximization_figure(
    title: str,
    targets: Sequence[tuple[str, int]],
    images: np.ndarray,
    start: np.ndarray,
    final: np.ndarray,
) -> bytes:
    """The images that excite each unit most, six to a row, with the activation climbed."""
    columns = min(6, len(targets))
    rows = math.ceil(len(targets) / columns)
    figure = _new_figure(2.1 * columns + 0.3, 2.3 * rows + 0.6)
    figure.suptitle(title, fontsize=12)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (layer, unit), image, before, after in zip(
        axes, targets, images, start, final, strict=False
    ):
        ax.imshow(image, interpolation="bilinear")
        ax.set_title(f"{layer} #{unit}", fontsize=10)
        ax.set_xlabel(f"{before:.2g} → {after:.3g}", fontsize=8)
    for ax in axes:
        _hide_axes(ax)
    return _png(figure)


# Sections


def _data_dir(config: dict | None, options: ReportConfig) -> Path | None:
    if options.data_dir:
        return Path(options.data_dir)
    if config and config.get("data_dir"):
        return Path(config["data_dir"])
    return None


def clusters_section(
    pretext: Sequence[PretextRun], voc: Sequence[VocRun], options: ReportConfig
) -> Section:
    section = Section(
        "1. Sound clusters (Figure 1)",
        "The frames nearest each sound cluster's centre, one row per cluster, largest first, "
        "with its size and commonest AudioSet classes: the categories the network learns to "
        "tell apart from the picture alone.",
    )
    configs = [run.config for run in pretext] + [run.metrics.get("pretext") for run in voc]
    dirs = dict.fromkeys(d for d in (_data_dir(c, options) for c in configs) if d)
    if not dirs:
        section.notes.append("No prepared data directory is known: pass --data_dir.")
    for data_dir in dirs:
        if not data_dir.is_dir():
            section.notes.append(f"{data_dir} (named by a run) does not exist: pass --data_dir.")
            continue
        layout = DataDir(data_dir)
        montages = [(label, path) for label, path in layout.montages() if path.is_file()]
        if not montages:
            section.notes.append(f"{layout.clusters_report} lists no montages.")
        for label, montage in montages:
            section.pictures.append(
                Picture(
                    f"clusters_{len(section.pictures):02d}_{label.name}.png",
                    f"{label.descriptor}, K = {label.size} ({data_dir})",
                    montage.read_bytes(),
                )
            )
    return section


def unit_sections(runs: Sequence[PretextRun], options: ReportConfig) -> tuple[Section, Section]:
    """Figure 2 and activation maximization, which share each run's loaded backbone."""
    units = Section(
        "2. What units respond to (Figure 2)",
        "For the most selective units (highest max/mean response over the frames, of those "
        "firing on at least as many frames as shown) of the last "
        "convolutional and fully connected layers, the frames that excite each most, strongest "
        "first, with the response above each; a convolutional unit's response is its maximum "
        "over space, and its frames are dimmed where its map falls below half that maximum.",
    )
    maximized = Section(
        "7. Activation maximization",
        "For a few units, the picture that excites each most, found by gradient ascent on the "
        "pixels from faint noise (jittered, decayed and blurred a little at each step so that "
        "it stays natural-looking); below each, the unit's activation (before its ReLU) at "
        "the start and at the end.",
    )
    if not runs:
        note = "No pretext training run was given."
        units.notes.append(note)
        maximized.notes.append(note)
    for index, run in enumerate(runs):
        _study_run(index, run, options, units, maximized)
    return units, maximized


def _study_run(index: int, run: PretextRun, options: ReportConfig, units: Section, maxim: Section):
    # TensorFlow loads here, only when a backbone is studied.
    from tfambient import models, visualize

    if not run.backbone_file.is_file():
        note = f"{run.name}: no {run.backbone_file} (run tfambient-export)."
        units.notes.append(note)
        maxim.notes.append(note)
        return
    arch = run.config["arch"]
    backbone = models.load_backbone(run.backbone_file)
    targets = [(layer, unit) for layer, numbers in options.units_to_maximize() for unit in numbers]
    visualize.check_targets(backbone, targets)
    studies = _top_images(run, backbone, options, units)
    describe = f"{run.name} ({arch}, {run.config.get('label', '?')})"
    for study in studies:
        title = (
            f"{describe}: {study.layer}, top {study.responses.shape[1]} of "
            f"{study.frames_seen} frames"
        )
        units.pictures.append(
            Picture(
                f"units_{index:02d}_{study.layer}.png",
                title,
                units_figure(title, study.layer, study),
            )
        )
    targets = targets or visualize.default_targets(studies)
    if not targets:
        maxim.notes.append(f"{run.name}: no units chosen (pass --maximize LAYER:UNIT,...).")
        return
    size = min(options.maximize_size, run.config.get("image_size", options.maximize_size))
    settings = visualize.Maximize(steps=options.maximize_steps, size=size)
    images, start, final = visualize.maximize(backbone, targets, settings)
    title = f"{describe}: {settings.steps} steps at {size} px"
    maxim.pictures.append(
        Picture(
            f"maximize_{index:02d}.png",
            title,
            maximization_figure(title, targets, images, start, final),
        )
    )


def _top_images(run: PretextRun, backbone, options: ReportConfig, units: Section) -> list:
    from tfambient import visualize

    data_dir = _data_dir(run.config, options)
    if data_dir is None or not Manifest.exists(data_dir):
        units.notes.append(f"{run.name}: no prepared data at {data_dir} (pass --data_dir).")
        return []
    try:
        batches = visualize.frame_batches(
            data_dir, run.config["label"], run.config["image_size"], options.max_images
        )
        return visualize.top_images(
            backbone,
            batches,
            visualize.frame_count(data_dir, options.max_images),
            architectures.get(run.config["arch"]).report_layers,
            options.units,
            options.top_k,
        )
    except (ValueError, FileNotFoundError) as error:  # a label or split the data lacks
        units.notes.append(f"{run.name}: {error}")
        return []


def sweep_section(runs: Sequence[VocRun]) -> Section:
    section = Section(
        "3. mAP against the number of clusters (Figure 3)",
        "VOC 2007 test mAP of networks pretrained on K sound clusters, one line per sound "
        "descriptor and fine-tuning mode, against K on a log scale; grey lines mark a "
        "randomly initialised network: the higher above them, the more the sound taught.",
    )
    sweep = cluster_sweep(runs)
    if sweep.lines:
        section.pictures.append(Picture("map_vs_k.png", "VOC07 mAP against K", sweep_figure(sweep)))
    else:
        section.notes.append("Needs VOC runs of backbones pretrained on <descriptor>_k<K> labels.")
    return section


def texture_mfcc_section(runs: Sequence[VocRun]) -> Section:
    section = Section(
        "4. Sound texture against MFCC (Figure 4)",
        "Per-class VOC07 AP of two networks that differ only in the sound descriptor their "
        "clusters came from (same K, same fine-tuning): which classes each kind of sound "
        "teaches better.",
    )
    for index, (texture, mfcc) in enumerate(texture_mfcc_pairs(runs)):
        caption = f"{texture.pretext_label} vs {mfcc.pretext_label}, {texture.mode}"
        png = texture_mfcc_figure(texture, mfcc)
        section.pictures.append(Picture(f"texture_vs_mfcc_{index:02d}.png", caption, png))
    if not section.pictures:
        section.notes.append(
            "Needs a texture and an MFCC VOC run with the same mode and label size "
            "(e.g. texture_k30 and mfcc_k30, both head)."
        )
    return section


def _percent(value: float) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def table_section(runs: Sequence[VocRun], names: Sequence[str]) -> Section:
    section = Section(
        "5. Per-class AP (Table 2)",
        "Average precision (%) of every VOC run on each class of the test split, and their "
        "mean; '–' marks a class without positives. VOC07 is the devkit's 11-point AP that "
        "the paper reports; sklearn is the area under the precision-recall curve.",
    )
    if not runs:
        section.notes.append("No VOC transfer run was given.")
    for definition, key in (("VOC07 11-point AP", "voc07"), ("sklearn AP", "sklearn")):
        rows = []
        for run, name in zip(runs, names, strict=True):
            ap = run.ap
            rows.append(
                [name, *map(_percent, getattr(ap, key)), _percent(getattr(ap, f"map_{key}"))]
            )
        if rows:
            section.tables.append(Table(definition, ["run", *SHORT_NAMES, "mAP"], rows))
    return section


def curves_section(
    pretext: Sequence[PretextRun], voc: Sequence[VocRun], names: Sequence[str]
) -> Section:
    section = Section(
        "6. Training curves",
        "Loss and accuracy of each pretext run against the step (training solid, validation "
        "dashed), and the loss of each VOC fine-tuning: a falling loss that the validation "
        "follows means the sound clusters were learnable from the pictures.",
    )
    with_curves = [run for run in pretext if run.curve]
    if with_curves:
        png = pretext_curves_figure(with_curves)
        section.pictures.append(Picture("pretext_curves.png", "Pretext training", png))
    voc_curves = [(run, name) for run, name in zip(voc, names, strict=True) if run.curve]
    if voc_curves:
        png = voc_curves_figure(*zip(*voc_curves, strict=True))
        section.pictures.append(Picture("voc_curves.png", "VOC fine-tuning", png))
    if not section.pictures:
        section.notes.append("No run has a metrics.jsonl.")
    return section


def probe_names(runs: Sequence[ProbeRun]) -> list[str]:
    """The pretext label of each probed backbone ("texture_k30", "random")."""
    return _distinct([run.pretext_label for run in runs], runs)


def probed_layers(runs: Sequence[ProbeRun]) -> list[str]:
    """Every layer some run probed, in the order the runs list them."""
    return list(dict.fromkeys(layer for run in runs for layer in run.results["layers"]))


def _top_k(result: dict) -> str:
    """The key of a probed layer's top-k accuracy: top5, or topK with K < 5 classes."""
    return next(key for key in result if re.fullmatch(r"top\d+", key) and key != "top1")


def probe_figure(runs: Sequence[ProbeRun], names: Sequence[str]) -> bytes:
    """Val top-1 (%) against the layer, a line per probed backbone, chance dashed."""
    figure = _new_figure(7.5, 4.6)
    ax = figure.subplots()
    layers = probed_layers(runs)
    for i, (run, name) in enumerate(zip(runs, names, strict=True)):
        top1 = run.top1()
        ax.plot(
            [layers.index(layer) for layer in top1],
            [100 * value for value in top1.values()],
            color=f"C{i % 10}",
            marker="o",
            label=name,
        )
    for chance in sorted({run.results["chance_top1"] for run in runs}):
        label = f"chance ({round(1 / chance)} classes)"
        ax.axhline(100 * chance, color="0.4", linestyle="--", lw=1.2, label=label)
    ax.set_xticks(range(len(layers)), layers)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    ax.set_xlabel("layer (frozen)")
    ax.set_ylabel("val top-1 accuracy of a linear classifier")
    ax.set_title("Linear probes on frozen features, layer by layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="best")
    return _png(figure)


def _probe_cell(run: ProbeRun, layer: str, value) -> str:
    result = run.results["layers"].get(layer)
    return "–" if result is None else _percent(value(result))


def probe_section(runs: Sequence[ProbeRun], names: Sequence[str]) -> Section:
    section = Section(
        "8. Linear probes per layer",
        "Val accuracy (%) of a linear softmax classifier trained on each layer's frozen "
        "features (conv maps average-pooled to about 9,000 numbers; learning rate and weight "
        "decay chosen on held-out training images), one line per backbone: how linearly each "
        "layer tells the classes apart, and how far the pretext task took it beyond a random "
        "network; the dashed line is chance.",
    )
    if not runs:
        section.notes.append("Needs tfambient-probe workdirs.")
        return section
    png = probe_figure(runs, names)
    section.pictures.append(Picture("probe_layers.png", "Linear probe top-1 by layer", png))
    layers = probed_layers(runs)
    figures = {
        "Top-1 accuracy (%) on val": lambda result: result["top1"],
        "Top-5 accuracy (%) on val (top-k with k classes where there are fewer)": lambda result: (
            result[_top_k(result)]
        ),
        "Mean per-class accuracy (%) on val": lambda result: result["mean_per_class"],
    }
    for caption, value in figures.items():
        rows = [
            [name, *(_probe_cell(run, layer, value) for layer in layers)]
            for run, name in zip(runs, names, strict=True)
        ]
        section.tables.append(Table(caption, ["backbone", *layers], rows))
    rows = [
        [
            name,
            str(len(run.results["classes"])),
            str(run.results["images"]["train"]),
            str(run.results["images"]["val"]),
            str(run.path),
        ]
        for run, name in zip(runs, names, strict=True)
    ]
    header = ["backbone", "classes", "train images", "val images", "directory"]
    section.tables.append(Table("What each probe learned from", header, rows))
    return section


def runs_table(
    pretext: Sequence[PretextRun],
    voc: Sequence[VocRun],
    names,
    probes: Sequence[ProbeRun] = (),
    probe_labels: Sequence[str] = (),
) -> Table:
    """What the report is made of: one row per run with its headline figure."""
    rows = []
    for run in pretext:
        final = run.curve[-1] if run.curve else {}
        score = final.get("eval_top1", final.get("top1"))
        rows.append(
            [
                str(run.path),
                "pretext",
                f"{run.config.get('arch', '?')}, {run.config.get('label', '?')}",
                str(final.get("step", "–")),
                "–" if score is None else f"top-1 {100 * score:.1f} %",
            ]
        )
    for run, name in zip(voc, names, strict=True):
        rows.append(
            [
                str(run.path),
                "VOC",
                f"{run.metrics.get('arch', '?')}, {name}",
                str(run.curve[-1]["step"]) if run.curve else "–",
                f"mAP {_percent(run.metrics['map_voc07'])} %",
            ]
        )
    for run, name in zip(probes, probe_labels, strict=True):
        layer, best = max(run.top1().items(), key=lambda item: item[1])
        rows.append(
            [
                str(run.path),
                "probe",
                f"{run.results.get('arch', '?')}, {name}",
                "–",
                f"top-1 {_percent(best)} % ({layer})",
            ]
        )
    return Table("Runs", ["directory", "kind", "what", "steps", "result"], rows)


def build_sections(runs: Sequence[Run], options: ReportConfig) -> list[Section]:
    """Every section of the report, in the page's order."""
    pretext = [run for run in runs if isinstance(run, PretextRun)]
    voc = sorted((run for run in runs if isinstance(run, VocRun)), key=_sort_key)
    names = voc_names(voc)
    probes = sorted(
        (run for run in runs if isinstance(run, ProbeRun)),
        key=lambda run: (run.pretext_label == "random", run.pretext_label, str(run.path)),
    )
    labels = probe_names(probes)
    overview = Section("Runs", "The run directories this report was made from.")
    overview.tables.append(runs_table(pretext, voc, names, probes, labels))
    units, maximized = unit_sections(pretext, options)
    return [
        overview,
        clusters_section(pretext, voc, options),
        units,
        sweep_section(voc),
        texture_mfcc_section(voc),
        table_section(voc, names),
        curves_section(pretext, voc, names),
        maximized,
        probe_section(probes, labels),
    ]


# Writing


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1240px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.9em; }
.note { color: #8a5a00; background: #fff6e0; padding: 0.4em 0.8em; border-radius: 4px; }
.table { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.82em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.45em; text-align: left; }
td.num { text-align: right; } td:first-child { white-space: nowrap; }
th { background: #f4f4f4; }
"""


def _html_cell(cell: str) -> str:
    """Numbers (and the '–' of a missing one) right-aligned, so that columns line up."""
    numeric = _NUMBER.fullmatch(cell) is not None
    return f"<td{' class=num' if numeric else ''}>{html.escape(cell)}</td>"


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table.header)
    body = "".join("<tr>" + "".join(map(_html_cell, row)) + "</tr>" for row in table.rows)
    return (
        f'<div class="table"><table><caption>{html.escape(table.caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _html_picture(picture: Picture) -> str:
    data = base64.b64encode(picture.png).decode("ascii")
    caption = html.escape(picture.caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def render_html(sections: Sequence[Section], title: str, stamp: str) -> str:
    """One page, figures inlined as base64 PNGs, so the file can be mailed or archived."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(stamp)}</p>",
    ]
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        parts.append(f"<p>{html.escape(section.what)}</p>")
        parts += [_html_picture(picture) for picture in section.pictures]
        parts += [_html_table(table) for table in section.tables]
        if not (section.pictures or section.tables):
            parts.append('<p class="note">Omitted.</p>')
        parts += [f'<p class="note">{html.escape(note)}</p>' for note in section.notes]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """The table in markdown, its caption in bold above it."""
    lines = [f"**{table.caption}**", ""]
    for cells in [table.header, ["---"] * len(table.header), *table.rows]:
        lines.append("| " + " | ".join(map(_markdown_cell, cells)) + " |")
    return "\n".join(lines)


def render_markdown(sections: Sequence[Section], title: str, stamp: str) -> str:
    """The same page as markdown, the figures linked from figures/."""
    lines = [f"# {title}", "", stamp, ""]
    for section in sections:
        lines += [f"## {section.title}", "", section.what, ""]
        for picture in section.pictures:
            lines += [f"![{picture.caption}]({FIGURES_DIR}/{picture.name})", "", picture.caption]
            lines.append("")
        for table in section.tables:
            lines += [markdown_table(table), ""]
        if not (section.pictures or section.tables):
            lines += ["*Omitted.*", ""]
        lines += [f"> {note}\n" for note in section.notes]
    return "\n".join(lines)


def write_report(
    sections: Sequence[Section], output_dir: str | Path, title: str = "tfambient report"
) -> Path:
    """index.html, report.md and figures/*.png in ``output_dir`` (which may exist: figures
    of an earlier report that this one does not draw are removed); returns index.html."""
    output_dir = Path(output_dir)
    figures = output_dir / FIGURES_DIR
    figures.mkdir(parents=True, exist_ok=True)
    pictures = [picture for section in sections for picture in section.pictures]
    for picture in pictures:
        write_bytes(figures / picture.name, picture.png)
    drawn = {picture.name for picture in pictures}
    for stale in figures.glob("*.png"):
        if stale.name not in drawn:
            stale.unlink()
    stamp = f"Made {datetime.datetime.now().isoformat(timespec='seconds')} by tfambient-report."
    write_text(output_dir / "report.md", render_markdown(sections, title, stamp))
    index = output_dir / "index.html"
    write_text(index, render_html(sections, title, stamp))
    return index
