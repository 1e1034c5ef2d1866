"""xbotlib: the library behind the `xbot` command. All logic lives here; notebooks and the CLI call it."""
__version__ = "0.1.0"
