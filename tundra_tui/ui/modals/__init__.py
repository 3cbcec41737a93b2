"""Modal screens: approval, help, confirmation and forms."""
