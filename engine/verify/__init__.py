"""caramba.engine.verify"""
