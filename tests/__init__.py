"""caramba.tests"""
