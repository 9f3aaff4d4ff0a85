"""The tray: the app's behaviour, its icons and menu as data, the menu's sections, and
one backend class per pystray backend.
"""
