"""The contracts between the stages, each spelled here and nowhere else.

A stage writes a file that another stage (or a person) reads later, often on another
machine and another version; what the two agree on lives in this package, which imports no
TensorFlow, so that flag definitions, workers and readers stay light:

* :mod:`~tfambient.contracts.records`: the keys, types and meaning of a prepared record,
  and label names (``texture_k30``, ``mfcc_bits30``: one parser, one formatter);
* :mod:`~tfambient.contracts.manifest`: ``dataset.json``, read, validated and written by one
  class;
* :mod:`~tfambient.contracts.workdirs`: where each file of a prepared data directory, a
  training workdir and a VOC workdir lives, with readers for what the report, export and
  VOC need;
* :mod:`~tfambient.contracts.files`: the one atomic writer (temporary name, fsync, rename).
"""
