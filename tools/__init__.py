"""caramba.tools"""
