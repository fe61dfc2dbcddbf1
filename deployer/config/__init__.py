"""Load -> validate: the inventory file, its schema, the frozen model every later stage reads.

Only ``inventory`` (and ``starter``, which reads an app's source) touch the disk.
"""
