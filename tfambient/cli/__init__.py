"""Thin absl entry points, one per command; the work lives in the pipeline stages."""

import os

# TensorFlow's C++ start-up chatter (oneDNN, CPU features, CUDA probing) buries the
# commands' own output; errors still show. Set the variable yourself to see everything.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
