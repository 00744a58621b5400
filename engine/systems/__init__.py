"""caramba.engine.systems"""
