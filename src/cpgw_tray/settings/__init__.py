"""The settings: defaults, the file, the environment and the command line resolved once;
the file as a person edits it, and noticing when it is saved.
"""
