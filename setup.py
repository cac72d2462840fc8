"""Packaging for hub_tf1 (TF1 Hub format API for tf.compat.v1) and its
Estimator integration.

Protos are built at runtime from descriptors in the code, so there is no
generated code and no build step.  Development environments come from the
pinned files in requirements/ via tools/bootstrap.sh, not from this file.
"""

import setuptools

setuptools.setup(
    name="hub_tf1",
    version="0.1.0.dev0",
    description=("TF1 Hub format modules (hub.Module, create_module_spec, "
                 "LatestModuleExporter) for tf.compat.v1 graph mode"),
    packages=setuptools.find_packages(include=[
        "hub_tf1",
        "hub_tf1.*",
        "estimator_integration",
        "estimator_integration.*",
    ]),
    entry_points={"console_scripts": ["hub-tf1 = hub_tf1.cli:main"]},
    python_requires=">=3.9",
    install_requires=[
        "tensorflow>=2.15",
        "absl-py",
        "protobuf",
    ],
    extras_require={
        # tf.estimator is gone from TensorFlow >= 2.16; with 2.15 this build
        # must replace the tensorflow-estimator 2.15 that TensorFlow pulls in
        # (see tools/bootstrap.sh for the install order).
        "estimator": ["tf-estimator-nightly"],
    },
    license="Apache 2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
    ],
)
