"""mlp_rs quickstart: a drop-in replacement for sklearn's MLPClassifier."""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

# isort: split
from mlp_rs import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, random_state=0)

# Same parameters as sklearn.neural_network.MLPClassifier, plus n_jobs.
clf = MLPClassifier(hidden_layer_sizes=(100,), max_iter=500, random_state=0, n_jobs=-1)
clf.fit(X_train, y_train)

print(f"test accuracy: {clf.score(X_test, y_test):.3f} after {clf.n_iter_} epochs")
proba = clf.predict_proba(X_test[:3])
print("class probabilities of the first 3 test digits (rounded):")
print(proba.round(2))
print("predicted:", clf.predict(X_test[:3]), "true:", y_test[:3])
