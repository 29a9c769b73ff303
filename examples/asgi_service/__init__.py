"""An example upload service: an ASGI (Starlette) app moderating every upload."""
