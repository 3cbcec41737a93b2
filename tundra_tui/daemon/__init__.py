"""The per-town daemon: socket server, protocol and client."""
