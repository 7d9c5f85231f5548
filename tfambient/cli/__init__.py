"""Thin absl entry points, one per command; the work lives in the pipeline stages."""
