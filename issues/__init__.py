"""The sample issues, shipped in the package as newsletter.site_issues (for `newsletter demo`).

This file makes the folder importable in an editable install (setuptools' editable finder
only maps folders with an __init__.py), so importlib.resources finds the packaged copy.
"""
