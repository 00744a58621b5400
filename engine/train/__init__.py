"""caramba.engine.train"""
