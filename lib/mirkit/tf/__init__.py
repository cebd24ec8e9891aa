"""Essentia TensorFlow models: loading, front ends, inference. Imports TensorFlow lazily."""
