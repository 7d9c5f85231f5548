"""The settings of tfambient-train and tfambient-voc: one frozen dataclass per command.

Every field is a flag of the same name (tfambient/cli/common.py: define_dataclass_flags), and
this module imports no TensorFlow, so that defining the flags, --help and checking the values
start nothing: a multi-worker strategy must be created before TensorFlow starts its context.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tfambient.architectures import ARCHITECTURES

STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def _check_arch(arch: str) -> None:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown --arch {arch}; known: {', '.join(ARCHITECTURES)}")


def _check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a run; recorded in the workdir so a rerun can resume it."""

    data_dir: str
    workdir: str
    arch: str = "alexnet"
    feature: str = ""  # "": the architecture's default (fc7, pool)
    label: str = "texture_k30"
    image_size: int = 224
    batch_size: int = 128  # global, over all replicas
    train_steps: int = 10_000
    steps_per_loop: int = 50
    learning_rate: float = 1e-3  # peak of the one-cycle schedule
    warmup_fraction: float = 0.05
    anneal: str = "cos"
    weight_decay: float = 0.05
    clip_norm: float = 1.0
    label_smoothing: float = 0.0
    dropout: float = 0.5  # AlexNet's, before fc6 and fc7
    fc_units: int = 4096  # AlexNet's fc6 and fc7 width
    color_jitter: float = 0.0
    mixed_precision: str = ""  # "", "mixed_bfloat16" or "mixed_float16"
    jit: bool = False
    strategy: str = "auto"
    eval_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    seed: int = 0
    skip_corrupt: bool = False

    def __post_init__(self):
        if self.anneal not in ("cos", "linear"):
            raise ValueError(f"--anneal must be cos or linear, got {self.anneal}")
        if self.mixed_precision not in ("", "mixed_bfloat16", "mixed_float16"):
            raise ValueError(
                f"--mixed_precision must be mixed_bfloat16 or mixed_float16, "
                f"got {self.mixed_precision}"
            )
        for name in ("steps_per_loop", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        _check_arch(self.arch)
        _check_strategy(self.strategy)


MODES = ("head", "all", "svm")
# The spec's defaults that differ between the modes: (learning rate, halving period).
PROTOCOL = {"head": (0.003, 5_000), "all": (0.001, 10_000)}


@dataclass(frozen=True)
class VocConfig:
    """Everything that decides a transfer run; recorded in WORKDIR/config.json."""

    workdir: str
    voc_dir: str = ""
    tfds_dir: str = ""  # read TFDS voc/2007 from here instead of a VOCdevkit
    backbone: str = "random"
    arch: str = ""  # "": the backbone's own (alexnet for random)
    fc_units: int = 4096  # a random AlexNet's fc6 and fc7 width (a saved one has its own)
    mode: str = "head"
    train_split: str = "trainval"
    test_split: str = "test"
    image_size: int = 224
    batch_size: int = 16
    train_steps: int = 80_000
    learning_rate: float = 0.0  # 0: the mode's protocol value
    halve_every: int = 0  # 0: the mode's protocol value
    momentum: float = 0.9
    weight_decay: float = 1e-6
    clip_norm: float = 10.0
    crop_area_min: float = 0.1
    crop_area_max: float = 0.5
    test_crops: int = 10
    rescale: bool = False
    layer: str = ""  # svm: the feature probed; "": fc7 (AlexNet) or pool (ResNet-18)
    svm_costs: str = "0.01,0.1,1,10,100"
    svm_folds: int = 3
    strategy: str = "auto"
    steps_per_loop: int = 100
    checkpoint_every: int = 1000
    jit: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if bool(self.voc_dir) == bool(self.tfds_dir):
            raise ValueError("give exactly one of --voc_dir and --tfds_dir")
        if self.arch:
            _check_arch(self.arch)
        _check_strategy(self.strategy)
        if not 0 < self.crop_area_min <= self.crop_area_max <= 1:
            raise ValueError("need 0 < --crop_area_min <= --crop_area_max <= 1")
        for name in ("batch_size", "train_steps", "steps_per_loop", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        if self.test_crops < 1 or self.svm_folds < 2:
            raise ValueError("--test_crops must be >= 1 and --svm_folds >= 2")
        self.costs()  # parse now, so a typo fails before any work

    @property
    def learning_rate_used(self) -> float:
        return self.learning_rate or PROTOCOL[self.mode][0]

    @property
    def halve_every_used(self) -> int:
        return self.halve_every or PROTOCOL[self.mode][1]

    def settings(self) -> dict:
        """The fields, with the mode's protocol values in place of 0 ("the default")."""
        fields = asdict(self)
        if self.mode in PROTOCOL:
            fields |= {"learning_rate": self.learning_rate_used}
            fields |= {"halve_every": self.halve_every_used}
        return fields

    def costs(self) -> list[float]:
        try:
            costs = [float(c) for c in self.svm_costs.split(",")]
        except ValueError:
            raise ValueError(f"--svm_costs must be numbers, got {self.svm_costs!r}") from None
        if not costs or min(costs) <= 0:
            raise ValueError(f"--svm_costs must be positive, got {self.svm_costs!r}")
        return costs
