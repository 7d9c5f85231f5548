"""tfambient.models: backbone layouts, sizes, parameter counts, saving, heads, mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from tiny import ALEXNET, WIDTH

from tfambient.models import (
    AdaptiveAveragePooling2D,
    alexnet,
    build_backbone,
    load_backbone,
    pretext_model,
    resnet18,
)

ALEXNET_FEATURES = ["conv1", "conv2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7"]
RESNET_FEATURES = ["stage1", "stage2", "stage3", "stage4", "pool"]
# Per input size (h, w): AlexNet pool5 and ResNet stage1..stage4 sizes, from torchvision's
# formulas (conv1 (h + 4 - 11) // 4 + 1, then three (n - 3) // 2 + 1; ResNet ceil(h / 2^k)).
SIZES = {
    (64, 64): ((1, 1), [(16, 16), (8, 8), (4, 4), (2, 2)]),
    (96, 96): ((2, 2), [(24, 24), (12, 12), (6, 6), (3, 3)]),
    (64, 112): ((1, 2), [(16, 28), (8, 14), (4, 7), (2, 4)]),
}


def _images(h: int, w: int, batch: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, h, w, 3)).astype(np.float32)


def _count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def backbones():
    """One float32 backbone per architecture, for any input size (tests may train them)."""
    keras.utils.set_random_seed(0)
    return {arch: build_backbone(arch) for arch in ("alexnet", "alexnet_bn", "resnet18")}


@pytest.fixture
def mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ---- layout --------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["alexnet", "alexnet_bn"])
def test_alexnet_layers_and_shapes_at_224(backbones, arch):
    backbone = backbones[arch]
    names = {layer.name for layer in backbone.layers}
    assert {"conv1", "conv2", "conv3", "conv4", "conv5", "pool5", "fc6", "fc7"} <= names
    bn_names = {f"conv{i}_bn" for i in range(1, 6)}
    assert (bn_names <= names) == (arch == "alexnet_bn")
    outputs = backbone(keras.Input((224, 224, 3)))
    assert list(outputs) == ALEXNET_FEATURES
    shapes = {name: tuple(tensor.shape[1:]) for name, tensor in outputs.items()}
    assert shapes == {
        "conv1": (55, 55, 64),
        "conv2": (27, 27, 192),
        "conv3": (13, 13, 384),
        "conv4": (13, 13, 256),
        "conv5": (13, 13, 256),
        "pool5": (6, 6, 256),
        "fc6": (4096,),
        "fc7": (4096,),
    }


def test_resnet18_layers_and_shapes_at_224():
    backbone = resnet18((224, 224, 3))
    assert list(backbone.output) == RESNET_FEATURES
    for name in RESNET_FEATURES:
        assert backbone.get_layer(name).output is backbone.output[name]
    shapes = {name: tuple(tensor.shape[1:]) for name, tensor in backbone.output.items()}
    assert shapes == {
        "stage1": (56, 56, 64),
        "stage2": (28, 28, 128),
        "stage3": (14, 14, 256),
        "stage4": (7, 7, 512),
        "pool": (512,),
    }
    projections = [layer.name for layer in backbone.layers if layer.name.endswith("_proj")]
    assert projections == ["stage2_block1_proj", "stage3_block1_proj", "stage4_block1_proj"]


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("arch", ["alexnet", "resnet18"])
def test_backbones_run_at_small_and_non_square_sizes(backbones, arch, size):
    outputs = backbones[arch](_images(*size), training=False)
    pool5, stages = SIZES[size]
    if arch == "alexnet":
        assert outputs["pool5"].shape == (2, *pool5, 256)
        assert outputs["fc7"].shape == (2, 4096)
    else:
        got = [tuple(outputs[f"stage{i}"].shape[1:3]) for i in range(1, 5)]
        assert got == stages
        assert outputs["pool"].shape == (2, 512)
    assert all(np.isfinite(tensor.numpy()).all() for tensor in outputs.values())


def test_alexnet_takes_63_px_and_rejects_less(backbones):
    assert backbones["alexnet"](_images(63, 200))["pool5"].shape == (2, 1, 5, 256)
    with pytest.raises(ValueError, match="at least 63"):
        alexnet((62, 200, 3))


def test_alexnet_traces_once_for_images_of_any_size(backbones):
    """A serving signature takes images of unknown size and returns every named feature."""
    backbone = backbones["alexnet"]
    serve = tf.function(
        lambda images: backbone(images, training=False),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
    )
    concrete = serve.get_concrete_function()
    assert concrete.structured_outputs["fc7"].shape.as_list() == [None, 4096]
    for size in [(64, 64), (224, 160)]:
        images = _images(*size)
        served = concrete(tf.constant(images))
        np.testing.assert_allclose(
            served["fc7"], backbone(images, training=False)["fc7"], rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize(
    ("arch", "source", "conv", "stride", "offset"),
    [
        ("alexnet", None, "conv1", 4, 3),  # 11x11/4, pad 2: centre 4i + 5 - 2
        ("resnet18", None, "conv1", 2, 0),  # 7x7/2, pad 3: centre 2i
        ("resnet18", "stage1", "stage2_block1_conv1", 2, 0),  # 3x3/2, pad 1: centre 2i
    ],
)
def test_strided_convs_sample_torchvisions_grid(backbones, arch, source, conv, stride, offset):
    """A centre-tap kernel shows which input pixel each output sits on (padding placement)."""
    backbone = backbones[arch]
    layer = backbone.get_layer(conv)
    original = layer.kernel.numpy()
    kernel = np.zeros_like(original)
    kernel[kernel.shape[0] // 2, kernel.shape[1] // 2, 0, 0] = 1.0
    layer.kernel.assign(kernel)
    inputs = backbone.input if source is None else backbone.output[source]
    try:
        x, y = keras.Model(backbone.input, [inputs, layer.output])(_images(64, 96, seed=3))
    finally:
        layer.kernel.assign(original)
    h, w = y.shape[1:3]
    expected = x[:, offset::stride, offset::stride, 0][:, :h, :w]
    np.testing.assert_allclose(y[..., 0], expected, atol=1e-6)


# ---- adaptive pooling ------------------------------------------------------------------------


def _torchvision_adaptive_avg_pool(x: np.ndarray, out: int) -> np.ndarray:
    """Reference: bin i covers floor(i*n/out) .. ceil((i+1)*n/out) - 1, per axis."""
    h, w = x.shape[1:3]
    result = np.empty((x.shape[0], out, out, x.shape[3]), dtype=np.float64)
    for i in range(out):
        r0, r1 = (i * h) // out, -((-(i + 1) * h) // out)
        for j in range(out):
            c0, c1 = (j * w) // out, -((-(j + 1) * w) // out)
            result[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return result


def test_adaptive_pool_matches_torchvision_bins_for_any_size_under_xla():
    layer = AdaptiveAveragePooling2D((6, 6))
    pool = tf.function(
        layer, input_signature=[tf.TensorSpec([None, None, None, 2])], jit_compile=True
    )
    rng = np.random.default_rng(1)
    for h, w in [(1, 1), (3, 5), (6, 6), (7, 13), (13, 13), (2, 20)]:
        x = rng.standard_normal((2, h, w, 2)).astype(np.float32)
        got = pool(tf.constant(x)).numpy()
        np.testing.assert_allclose(got, _torchvision_adaptive_avg_pool(x, 6), atol=1e-5)
    x = rng.standard_normal((1, 6, 6, 2)).astype(np.float32)
    np.testing.assert_allclose(pool(tf.constant(x)), x, atol=1e-6)  # identity at 224 px


# ---- parameter counts ------------------------------------------------------------------------


def test_parameter_counts_match_torchvision(backbones):
    alex = backbones["alexnet"]
    assert alex.count_params() == 57_003_840
    assert pretext_model(alex, "fc7", num_classes=1000).count_params() == 61_100_840
    resnet = backbones["resnet18"]
    assert _count(resnet.trainable_weights) == 11_176_512  # torchvision 11,689,512 - fc
    assert _count(resnet.non_trainable_weights) == 9_600  # BN moving mean/var, 4,800 channels
    alex_bn = backbones["alexnet_bn"]  # conv biases dropped (1,152), BN gamma/beta added
    assert _count(alex_bn.trainable_weights) == 57_003_840 - 1_152 + 2 * 1_152
    assert _count(alex_bn.non_trainable_weights) == 2 * 1_152


def test_width_scales_every_conv_and_nothing_else():
    alex = alexnet(width=0.25, fc_units=64)
    convs = [alex.get_layer(f"conv{i}").filters for i in range(1, 6)]
    assert convs == [16, 48, 96, 64, 64]  # 64, 192, 384, 256, 256 at width 1
    # conv1..conv5 (kernel and bias), then fc6 on 6x6x64 and fc7, written out.
    layers = [11 * 11 * 3 * 16 + 16, 5 * 5 * 16 * 48 + 48, 3 * 3 * 48 * 96 + 96]
    layers += [3 * 3 * 96 * 64 + 64, 3 * 3 * 64 * 64 + 64, 6 * 6 * 64 * 64 + 64, 64 * 64 + 64]
    assert alex.count_params() == sum(layers) == 310_608
    resnet = resnet18(width=0.5, input_shape=(64, 64, 3))
    features = resnet(_images(64, 64))
    assert [features[f"stage{i}"].shape[-1] for i in range(1, 5)] == [32, 64, 128, 256]
    assert resnet.get_layer("conv1").filters == 32 and features["pool"].shape == (2, 256)
    assert alexnet(width=0.001).get_layer("conv1").filters == 1  # never fewer than one
    for builder in (alexnet, resnet18):
        with pytest.raises(ValueError, match="--width must be above 0, got 0"):
            builder(width=0)


def test_zero_init_residual_zeroes_the_last_bn_of_every_block():
    last_bns = [f"stage{s}_block{b}_conv2_bn" for s in range(1, 5) for b in (1, 2)]
    for flag in (False, True):
        backbone = resnet18((64, 64, 3), zero_init_residual=flag)
        for name in last_bns:
            gamma = backbone.get_layer(name).gamma.numpy()
            assert (gamma == (0.0 if flag else 1.0)).all(), name
        assert (backbone.get_layer("stage1_block1_conv1_bn").gamma.numpy() == 1.0).all()


# ---- saving and new heads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "feature", "options"),
    [("alexnet", "fc7", ALEXNET), ("resnet18", "pool", {"width": WIDTH})],
    ids=["alexnet-fc7", "resnet18-pool"],
)
def test_saved_backbone_reloads_and_takes_a_new_head(tmp_path, arch, feature, options):
    """On narrow backbones: the same layers in a file of about 1 MB instead of 228 MB."""
    keras.utils.set_random_seed(0)
    backbone = build_backbone(arch, **options)
    pretext = pretext_model(backbone, feature, num_classes=16)
    assert pretext.get_layer(backbone.name) is backbone
    images = _images(64, 80)
    pretext(images, training=True)  # moves BatchNorm statistics away from their init
    path = tmp_path / "backbone.keras"
    pretext.get_layer(backbone.name).save(path)
    loaded = keras.models.load_model(path)
    expected = backbone(images, training=False)
    got = loaded(images, training=False)
    assert list(got) == list(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-5, err_msg=name)

    voc = pretext_model(loaded, feature, num_bits=20, name="voc")
    logits = voc(images, training=False)
    assert logits.shape == (2, 20)
    assert voc.get_layer(loaded.name) is loaded
    shared = {id(v) for v in loaded.weights}
    head_only = [v for v in voc.weights if id(v) not in shared]
    assert len(voc.weights) == len(loaded.weights) + 2
    assert [v.path for v in head_only] == ["bits/kernel", "bits/bias"]


def test_pretext_model_checks_its_arguments(backbones):
    with pytest.raises(ValueError, match=r"has no feature 'fc8'.*'fc7'"):
        pretext_model(backbones["alexnet"], "fc8", num_classes=2)
    with pytest.raises(ValueError, match="exactly one"):
        pretext_model(backbones["alexnet"], "fc7", num_classes=2, num_bits=2)
    with pytest.raises(ValueError, match="exactly one"):
        pretext_model(backbones["alexnet"], "fc7")


# ---- mixed precision and training ----------------------------------------------------------------


@pytest.mark.parametrize(("arch", "feature"), [("alexnet", "pool5"), ("resnet18", "stage4")])
def test_mixed_bfloat16_computes_in_bfloat16_with_float32_logits(mixed_bfloat16, arch, feature):
    backbone = build_backbone(arch)
    model = pretext_model(backbone, feature, num_classes=8)
    outputs = backbone(_images(64, 96), training=False)
    logits = model(_images(64, 96), training=True)
    assert outputs[feature].dtype == "bfloat16"
    assert logits.dtype == "float32"
    assert logits.shape == (2, 8)
    assert np.isfinite(logits.numpy()).all()
    assert all(v.dtype == "float32" for v in model.weights)


@pytest.mark.parametrize(
    ("arch", "feature"), [("alexnet", "fc7"), ("alexnet_bn", "fc7"), ("resnet18", "pool")]
)
def test_one_gradient_step_changes_every_trainable_weight(backbones, arch, feature):
    model = pretext_model(backbones[arch], feature, num_classes=4)
    images, labels = _images(64, 64, seed=2), np.array([1, 3])
    before = [v.numpy().copy() for v in model.trainable_weights]
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(labels, model(images, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    keras.optimizers.SGD(0.1).apply_gradients(zip(grads, model.trainable_weights, strict=True))
    # Rounding noise moves a weight the loss cannot reach (a conv bias under BatchNorm) by
    # ~1e-10; a real gradient moves every weight here by more than 1e-4 (RMS).
    unchanged = [
        v.path
        for v, old in zip(model.trainable_weights, before, strict=True)
        if np.sqrt(np.mean((v.numpy() - old) ** 2)) < 1e-6
    ]
    assert unchanged == []


# ---- registry ----------------------------------------------------------------------------------


def test_build_backbone_passes_arguments_and_lists_known_names():
    assert build_backbone("resnet18", input_shape=(64, 64, 3), name="r").name == "r"
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'; known: alexnet, alexnet_bn"):
        build_backbone("vgg16")


@pytest.mark.parametrize("arch", ["alexnet", "resnet18"])
def test_a_saved_backbone_reloads_at_another_size_with_its_own_arguments(arch, tmp_path):
    options = {"width": 0.5} | ({"fc_units": 32, "dropout": 0.0} if arch == "alexnet" else {})
    saved = build_backbone(arch, input_shape=(64, 64, 3), **options)
    saved.save(tmp_path / "b.keras")
    loaded = load_backbone(tmp_path / "b.keras", (80, 96, 3))
    assert loaded.inputs[0].shape == (None, 80, 96, 3)
    images = np.random.default_rng(0).normal(size=(2, 80, 96, 3)).astype(np.float32)
    key = "fc7" if arch == "alexnet" else "pool"
    expected = build_backbone(arch, input_shape=(80, 96, 3), **options)
    expected.set_weights(saved.get_weights())
    np.testing.assert_allclose(loaded(images)[key], expected(images)[key], rtol=1e-5, atol=1e-5)
    assert loaded(images)[key].shape[-1] == (32 if arch == "alexnet" else 256)


def test_load_backbone_refuses_a_model_that_is_no_backbone(tmp_path):
    images = keras.Input((8,))
    keras.Model(images, keras.layers.Dense(2)(images), name="mlp").save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="holds a 'mlp'"):
        load_backbone(tmp_path / "m.keras")
