"""What mlp_rs adds to scikit-learn's MLPClassifier, on an imbalanced problem.

A fraud-like task: 2 % positives. Plain training mostly predicts the majority class;
``class_weight="balanced"`` (scikit-learn issue #9113) trades some accuracy for far
better recall of the rare class; ``dropout`` (#6175) regularises; explicit validation
data (``X_val`` / ``y_val``) drive early stopping, with a validation loss curve
(#18507); ``hidden_activations`` (#8291) turns the fitted network into a feature
extractor.

    python examples/beyond_sklearn.py           # about 10 seconds
    python examples/beyond_sklearn.py --quick   # a smaller problem, a few seconds
"""

import argparse
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

# isort: split
from mlp_rs import MLPClassifier


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller problem")
    args = parser.parse_args()
    n = 8_000 if args.quick else 40_000
    X, y = make_classification(
        n_samples=n,
        n_features=30,
        n_informative=8,
        weights=[0.98],
        flip_y=0.005,
        class_sep=0.8,
        random_state=0,
    )
    X = StandardScaler().fit_transform(X)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, stratify=y, random_state=0
    )
    X_fit, X_val, y_fit, y_val = train_test_split(
        X_train, y_train, stratify=y_train, test_size=0.2, random_state=0
    )
    print(f"{len(y_train)} training rows, {y_train.mean():.1%} positives")
    common = dict(hidden_layer_sizes=(64, 32), max_iter=60, random_state=0)
    models = {
        "plain (scikit-learn's model)": MLPClassifier(**common),
        'class_weight="balanced"': MLPClassifier(**common, class_weight="balanced"),
        "balanced + dropout=0.2": MLPClassifier(
            **common, class_weight="balanced", dropout=0.2
        ),
    }
    print(f"{'model':32s} {'recall(rare)':>12s} {'balanced acc':>12s} {'accuracy':>9s}")
    for name, est in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train, y_train)
        pred = est.predict(X_test)
        recall = recall_score(y_test, pred)
        balanced = balanced_accuracy_score(y_test, pred)
        accuracy = est.score(X_test, y_test)
        print(f"{name:32s} {recall:12.3f} {balanced:12.3f} {accuracy:9.3f}")

    # early stopping on explicit validation data, with its loss curve
    est = MLPClassifier(
        **{**common, "max_iter": 200},
        class_weight="balanced",
        early_stopping=True,
        n_iter_no_change=8,
    )
    est.fit(X_fit, y_fit, X_val=X_val, y_val=y_val)
    best = int(np.argmax(est.validation_scores_))
    print(
        f"\nearly stopping on X_val: stopped after {est.n_iter_} epochs, best epoch "
        f"{best + 1} (class-weighted validation accuracy "
        f"{est.best_validation_score_:.3f}, "
        f"validation loss {est.validation_loss_curve_[best]:.4f})"
    )

    # the last hidden layer as features
    n_rows, n_features = est.hidden_activations(X_test).shape
    print(f"hidden_activations(X_test): {n_rows} x {n_features} features")


if __name__ == "__main__":
    main()
