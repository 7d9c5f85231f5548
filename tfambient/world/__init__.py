"""The synthetic audio-visual world: the whole paper in miniature, with nothing to download.

Six scene types (rain, road, forest, crowd, sea, wind) each have a look and a sound. A
clip's picture and its sound are drawn independently given its scene, so they relate only
through the scene, as in real video: predicting the sound's cluster from a frame is learnable
but not trivial. Looks are procedural (gradients, stripes, blobs, strokes, waves and object
shapes) under random pose, scale, palette, lighting and clutter, so a scene is told by
texture and shape rather than by its mean colour; sounds are mixed with nuisances (clicks,
broadband noise, a stray tone, another scene's sound) so the sound clusters are not perfect.

A synthetic PASCAL VOC 2007 tree shares those visual elements: each of the 20 classes is a
shape filled with the texture of one scene (a car with the road's, a bird with the forest's),
so features learned from the scenes' sounds help there. A scene-classification tree (train
and val folders of pictures of each scene, drawn apart from the clips) is what a linear probe
of the features learns to tell apart. See docs/synthetic.md.

Modules, each importing only those before it: pictures (procedural drawing) and sounds;
scenes (the six scenes: palette, picture, texture, sound, VOC classes); voc_tree (class
silhouettes, objects, VOC images); clips (a scene's frames and sound); scene_tree (the scene
pictures); writer (planning and writing the corpus, the VOC tree and the scene tree, staged
and moved into place, world.json last).
"""

from tfambient.world.clips import CLIP_DURATION_S, FPS, scene_audio, scene_frames
from tfambient.world.pictures import CLIP_SIZE
from tfambient.world.scene_tree import MIN_SCENE_IMAGES, SCENE_TREE, split_sizes
from tfambient.world.scenes import SCENE_BY_NAME, SCENE_NAMES, SCENE_OF_CLASS, SCENES, Scene
from tfambient.world.sounds import RATE
from tfambient.world.voc_tree import SHAPES, VOC_SIZE, draw_object, voc_image, voc_split_sizes
from tfambient.world.writer import (
    MANIFEST,
    MIN_DURATION_S,
    MIN_VOC_IMAGES,
    World,
    read_manifest,
    world_ytid,
    write_world,
)

__all__ = [
    "CLIP_DURATION_S",
    "CLIP_SIZE",
    "FPS",
    "MANIFEST",
    "MIN_DURATION_S",
    "MIN_SCENE_IMAGES",
    "MIN_VOC_IMAGES",
    "RATE",
    "SCENES",
    "SCENE_BY_NAME",
    "SCENE_NAMES",
    "SCENE_OF_CLASS",
    "SCENE_TREE",
    "SHAPES",
    "VOC_SIZE",
    "Scene",
    "World",
    "draw_object",
    "read_manifest",
    "scene_audio",
    "scene_frames",
    "split_sizes",
    "voc_image",
    "voc_split_sizes",
    "world_ytid",
    "write_world",
]
