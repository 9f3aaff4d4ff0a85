"""What a watcher tells the world beyond its window: the health endpoint, change hooks,
the history and its picture, the diagnostics bundle.
"""
