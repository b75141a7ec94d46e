"""What can go wrong talking to a server of the user's own, worded for the user (no httpx here:
the CLI catches these without importing a network client)."""

from __future__ import annotations


class ServerError(RuntimeError):
    """A model server problem, worded for the user."""


class ServerUnavailable(ServerError):
    """Nothing answers at the address."""


class WrongKey(ServerError):
    """The server refused the API key."""


class UnknownModel(ServerError):
    """The server does not serve the model asked for."""


class ReplyCutOff(ServerError):
    """The connection ended in the middle of a reply."""
