"""The staff console, a Flask app separate from the public pages: `create_app(settings)`.

This file only assembles: the app is built in app.py, one blueprint per page module. The page
modules import each other (`from . import access`), never a name from this file.
"""

from .app import create_app

__all__ = ["create_app"]
