"""Static inspection of module graphs (no TF session, no op runs)."""
