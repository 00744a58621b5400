"""caramba.engine.bench"""
