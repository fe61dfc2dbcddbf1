"""The release built once on the controller: source walk, manifest, wheels, venv tree.
"""
