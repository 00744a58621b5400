"""caramba.kernels"""
