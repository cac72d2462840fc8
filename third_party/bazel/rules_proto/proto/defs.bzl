"""Stand-in for @rules_proto//proto:defs.bzl: forwards to Bazel 4's natives."""

# A file cannot both read the built-in `ProtoInfo` and bind that name, so the
# provider is picked up in a helper file.
load("//proto/private:native.bzl", _ProtoInfo = "NativeProtoInfo")

ProtoInfo = _ProtoInfo

def proto_lang_toolchain(**attrs):
    native.proto_lang_toolchain(**attrs)

def proto_library(**attrs):
    native.proto_library(**attrs)
