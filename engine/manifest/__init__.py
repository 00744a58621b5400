"""caramba.engine.manifest"""
