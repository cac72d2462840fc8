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
    # Tested: TF 2.15.1 on Python 3.11 and TF 2.21.0 on Python 3.13 (the two
    # environments of tools/bootstrap.sh).  The Estimator compatibility layer
    # warns on a TensorFlow minor version it was not tested with.
    python_requires=">=3.9",
    install_requires=[
        "tensorflow>=2.15,<2.22",
        "absl-py",
        "protobuf",
        # Module.export checksums streamed variables with it (hardware
        # crc32c); without it exports use SaveV2 (hub_tf1/module/
        # variable_writer.py).
        "crc32c",
    ],
    extras_require={
        # The last Estimator build.  On TF 2.15 it must replace the
        # tensorflow-estimator 2.15 that TensorFlow pulls in (order: see
        # tools/bootstrap.sh); on TF >= 2.16 it needs tf-keras of the same
        # minor version as TensorFlow, whose metadata asks for the package
        # 'tensorflow' (with tensorflow-cpu installed, pip adds 'tensorflow').
        "estimator": [
            "tf-estimator-nightly==2.16.0.dev2024012409",
            "tf-keras>=2.15,<2.22",
        ],
    },
    license="Apache 2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
    ],
)
