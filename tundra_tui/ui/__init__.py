"""The Textual control room (`at tui`): the only package that imports Textual.

It renders and sends; it never owns an agent. Lists come from the town database,
live states, screens and approvals from the daemon through a `Link`.
"""
