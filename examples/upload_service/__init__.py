"""An example upload service: a WSGI app that moderates every upload (see README.md)."""
