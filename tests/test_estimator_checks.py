"""scikit-learn's estimator API compliance checks.

Settings follow scikit-learn's own common tests
(``sklearn/utils/_test_common/instance_generator.py`` uses ``max_iter=100``
for both MLP estimators); ``random_state=0`` makes the checks deterministic.
No check is expected to fail.
"""

from mlp_rs import MLPClassifier, MLPRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

ESTIMATORS = [
    MLPClassifier(max_iter=100, random_state=0),
    MLPRegressor(max_iter=100, random_state=0),
    MLPClassifier(solver="lbfgs", max_iter=100, random_state=0),
    MLPRegressor(solver="lbfgs", max_iter=100, random_state=0),
    MLPClassifier(solver="sgd", max_iter=100, random_state=0),
    MLPClassifier(max_iter=100, random_state=0, n_jobs=2),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
