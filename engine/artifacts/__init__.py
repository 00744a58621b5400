"""caramba.engine.artifacts"""
