"""caramba.api"""
