"""The pure middle of the pipeline: layout, render, fact parsing, plan, command builders.

Nothing here does I/O (tests/unit/test_purity.py keeps it so): data in, data out.
"""
