"""The staff console, a Flask app separate from the public pages: `app.create_app(settings)`.

This package file imports nothing, so that the pages' modules (one blueprint each) can import
each other (`from . import access`) without a cycle through it; app.py assembles them.
"""
