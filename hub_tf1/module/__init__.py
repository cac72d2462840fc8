"""Instantiating modules in the caller's graph and applying signatures."""
