"""PASCAL VOC 2007 classification: the devkit reader and the AP metrics (the VOC tasks that
fine-tune and probe a backbone are in tfambient.tasks.voc).

The 20 classes in the devkit's canonical order; every per-class array, table and
target vector in this package follows it (see shared spec voc07.md).
"""

CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
