"""The one way to reach a host: a connection (SSH, or the in-memory fake in tests).
"""
