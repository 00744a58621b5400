"""caramba.engine.model"""
