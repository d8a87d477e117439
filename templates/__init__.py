"""The site's email and web templates, shipped in the package as newsletter.site_templates.

This file makes the folder importable in an editable install (setuptools' editable finder
only maps folders with an __init__.py), so importlib.resources finds the packaged copy.
"""
