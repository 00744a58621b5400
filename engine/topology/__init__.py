"""caramba.engine.topology"""
