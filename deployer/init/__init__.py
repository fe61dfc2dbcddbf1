"""``deployer init``: read a Flask app's source (never import or run it) and write a starter inventory.

``scan`` finds the app itself (entry, static folders, instance folder, routes and a
health path); ``reads`` finds what the app reads from its surroundings (project
metadata, ``.flaskenv``, environment variables, config files); ``writer`` turns the
findings into a commented inventory and is the click command.
"""
