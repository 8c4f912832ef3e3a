"""Moved to [`lerax.host`][]; this module keeps `lerax.callback.host` imports working."""

from lerax.host import ask, call, lookup, new_token, register, release, while_running

__all__ = ["ask", "call", "lookup", "new_token", "register", "release", "while_running"]
