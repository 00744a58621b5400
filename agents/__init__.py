"""caramba.agents"""
