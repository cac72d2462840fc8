"""Re-exports the built-in provider under another name (see ../defs.bzl)."""

NativeProtoInfo = ProtoInfo
