"""Packaging for the Python 3 / mxnet 1.9.1 port of the 2019 InsightFace (ArcFace) toolkit."""
from setuptools import find_packages, setup

# deploy/export_onnx.py, tested with onnx 1.16: mxnet 1.9.1's exporter uses onnx.mapping, which
# newer onnx releases deprecate for removal.
# onnxruntime is not listed: every release with Python 3.11 wheels declares numpy>=1.24.2, which
# pip cannot reconcile with mxnet's numpy<1.24, although the wheels run on numpy 1.23. Install it
# without its dependency metadata (as the Makefile does): pip install --no-deps onnxruntime==1.16.3
# The remaining entries are onnxruntime's own dependencies.
ONNX_EXTRA = ["onnx>=1.14,<1.17", "protobuf>=3.20.2", "coloredlogs", "flatbuffers", "sympy",
              "packaging"]

setup(
    name="insightface-mxnet-port",
    version="0.1.0",
    description="Python 3.11 / mxnet 1.9.1 port of the 2019 InsightFace (ArcFace) MXNet toolkit",
    python_requires=">=3.10,<3.12",  # mtcnn 1.x needs 3.10; numpy<1.24 has no 3.12 wheels
    packages=find_packages(include=["recognition", "recognition.*", "common", "common.*",
                                    "deploy", "deploy.*"]),
    # `import face_model` as in the 2019 deploy folder: a shim re-exporting deploy.face_model
    py_modules=["face_model"],
    package_data={"recognition": ["sample_config.py"]},
    install_requires=[
        # mxnet 1.9.1 does not import with numpy 1.24 or newer (np.bool and friends were removed).
        "numpy>=1.21,<1.24",
        # opencv 4.12 and scipy 1.16 require numpy 2 / numpy >= 1.25 on Python 3.11.
        "opencv-python-headless>=4.5,<4.12",
        "scipy>=1.7,<1.16",
        "scikit-learn>=1.0,<1.8",
        "easydict>=1.9",
        "tqdm>=4.60",
        # ROC plots of recognition/eval/verification.py --roc; 3.9 drops numpy 1.21/1.22.
        "matplotlib>=3.5,<3.9",
        # default MTCNN weights (P/R/O-Net arrays, MIT); read with joblib + lz4, no TensorFlow
        "mtcnn>=1.0,<2",
    ],
    extras_require={
        "cpu": ["mxnet==1.9.1"],
        "gpu": ["mxnet-cu112==1.9.1"],
        "onnx": ONNX_EXTRA,
        "test": ["pytest>=7"] + ONNX_EXTRA,
    },
)
