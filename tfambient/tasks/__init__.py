"""The tasks: what :mod:`tfambient.trainer` trains, each a :class:`tfambient.trainer.Task`.

pretext: predict a frame's sound cluster (tfambient-train, tfambient-export).
voc: fine-tune a backbone on PASCAL VOC 2007 (head, all), or probe it with SVMs (svm)
(tfambient-voc).

Tasks import the trainer and the input path (:mod:`tfambient.data`); the trainer imports no
task, and no task imports another.
"""
