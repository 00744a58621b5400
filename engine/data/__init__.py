"""caramba.engine.data"""
