"""caramba.engine.layers"""
