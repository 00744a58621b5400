"""caramba.engine.infer"""
