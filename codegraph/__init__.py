"""caramba.codegraph"""
