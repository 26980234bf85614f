#!/usr/bin/env python3
"""Export an mlp_rs model to ONNX and run it with onnxruntime.

skl2onnx knows scikit-learn's estimators, so the route is: train with mlp_rs,
``to_sklearn()`` (the equivalent fitted scikit-learn estimator, same weights), convert
that with skl2onnx, and check that onnxruntime predicts what mlp_rs predicts. Shown for
a classifier (digits) and a regressor (diabetes), in float32 as ONNX models usually are.

Needs ``pip install skl2onnx onnxruntime``; without them the script says so and exits 0.

Usage::

    python examples/onnx_export.py [--quick] [--output-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

# isort: split
from mlp_rs import MLPClassifier, MLPRegressor


def to_onnx_session(sk_model, X_sample, path, onnx_tools):
    to_onnx, ort = onnx_tools
    options = {"zipmap": False} if hasattr(sk_model, "classes_") else None
    onx = to_onnx(sk_model, X_sample[:1], options=options)
    path.write_bytes(onx.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few epochs (for CI)")
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="where to write the .onnx files"
    )
    args = parser.parse_args(argv)
    epochs = 20 if args.quick else 300

    try:
        import onnxruntime as ort
        from skl2onnx import to_onnx
    except Exception as exc:  # not installed, or not importable with these versions
        print(
            "skl2onnx / onnxruntime are not available "
            f"({type(exc).__name__}: {exc}); install them with "
            "`pip install skl2onnx onnxruntime` to run this example. Nothing to do."
        )
        return 0
    onnx_tools = (to_onnx, ort)

    with tempfile.TemporaryDirectory() as tmp:
        out = args.output_dir or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        ok = True

        # ---------------------------------------------------------- classifier
        X, y = load_digits(return_X_y=True)
        X = StandardScaler().fit_transform(X).astype(np.float32)
        X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
        clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=epochs, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_train, y_train)
        session = to_onnx_session(
            clf.to_sklearn(), X_test, out / "digits.onnx", onnx_tools
        )
        input_name = session.get_inputs()[0].name
        labels, proba = session.run(None, {input_name: X_test})
        same_labels = np.array_equal(labels, clf.predict(X_test))
        proba_diff = np.max(np.abs(proba - clf.predict_proba(X_test)))
        print(
            f"classifier (test accuracy {clf.score(X_test, y_test):.3f}) "
            f"-> {out / 'digits.onnx'}"
        )
        print(
            f"  onnxruntime labels equal mlp_rs's: {same_labels}; "
            f"largest probability difference {proba_diff:.2e}"
        )
        ok &= same_labels and proba_diff < 1e-4

        # ----------------------------------------------------------- regressor
        X, y = load_diabetes(return_X_y=True)
        X = StandardScaler().fit_transform(X).astype(np.float32)
        y = ((y - y.mean()) / y.std()).astype(np.float32)
        reg = MLPRegressor(
            hidden_layer_sizes=(32,), alpha=1.0, max_iter=epochs, random_state=0
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y)
        session = to_onnx_session(
            reg.to_sklearn(), X, out / "diabetes.onnx", onnx_tools
        )
        (pred,) = session.run(None, {session.get_inputs()[0].name: X})
        pred_diff = np.max(np.abs(pred.ravel() - reg.predict(X)))
        print(f"regressor -> {out / 'diabetes.onnx'}")
        print(f"  largest prediction difference onnxruntime vs mlp_rs: {pred_diff:.2e}")
        ok &= pred_diff < 1e-4

    print("ONNX export OK" if ok else "ONNX predictions differ from mlp_rs's")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
