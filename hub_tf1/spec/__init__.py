"""Module specs: building them, reading their signatures and messages."""
