"""The tasks: what :mod:`tfambient.trainer` trains, each a :class:`tfambient.trainer.Task`.

pretext: predict a frame's sound cluster (tfambient-train, tfambient-export).
voc: fine-tune a backbone on PASCAL VOC 2007 (head, all), or probe it with SVMs (svm)
(tfambient-voc).
probe: linear classifiers of each layer's cached frozen features on labelled image folders
(tfambient-probe), and the features of any images (tfambient-features).

Tasks import the trainer and the input path (:mod:`tfambient.data`); the trainer imports no
task. The probe resolves ``--backbone`` with voc's ``load_backbone`` (one rule for 'random', a
workdir, its export/ or a .keras file); otherwise no task imports another.
"""
