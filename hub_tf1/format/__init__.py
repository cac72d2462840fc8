"""The on-disk TF1 Hub format: protos, module files, assets, checkpoints."""
