"""deployer: render, deploy and verify a Flask application on Linux servers."""

__version__ = "0.1.0"
