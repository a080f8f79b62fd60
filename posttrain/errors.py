"""Errors meant for people: what was wrong, where, and what to do. The CLI prints them without a traceback."""


class UserError(Exception):
    """Bad input or a bad request from the user; the message names the place and the fix."""
