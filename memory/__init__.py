"""caramba.memory"""
