"""The one error type every layer raises for a problem the user must fix.

The command line prints `str(error)` on one line and exits 2; `--debug` adds the
traceback. Subclasses exist so callers can react to a kind of failure without
parsing messages.
"""

from __future__ import annotations


class TundraError(Exception):
    """A user-facing, one-line error: bad input, a refused action, an unusable file."""


class IllegalTransition(TundraError):
    """A bead, convoy or approval was asked to move somewhere its state machine forbids."""


class NotFound(TundraError):
    """An id or name that names nothing."""
