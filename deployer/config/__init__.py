"""Load -> validate: the inventory file, its schema, the frozen model every later stage reads.

Only ``inventory`` touches the disk.
"""
