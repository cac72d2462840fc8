"""TF2 side: TF1 Hub format modules used eagerly and in tf.function."""
