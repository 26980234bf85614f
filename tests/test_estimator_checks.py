"""scikit-learn's estimator API compliance checks.

Settings follow scikit-learn's own common tests
(``sklearn/utils/_test_common/instance_generator.py`` uses ``max_iter=100``
for both MLP estimators); ``random_state=0`` makes the checks deterministic.
No check may fail with the defaults or with the robust losses. With
class_weight='balanced' or dropout set, the checks that contradict what those
parameters mean are expected to fail (``EXPECTED_FAILURES``, each with its reason);
every other check must pass.
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
    # mlp_rs's own parameters, set
    MLPClassifier(max_iter=100, random_state=0, class_weight="balanced"),
    MLPClassifier(max_iter=100, random_state=0, dropout=0.2),
    MLPRegressor(max_iter=100, random_state=0, dropout=0.2),
    MLPRegressor(max_iter=100, random_state=0, loss="huber"),
    MLPRegressor(max_iter=100, random_state=0, loss="absolute_error"),
]


# Checks that contradict, by design, what a parameter of mlp_rs's own means: each
# reason says why (and the feature's own tests check the behaviour instead).
PARTIAL_FIT_BALANCED = (
    "partial_fit with class_weight='balanced' raises SGDClassifier's ValueError: "
    "class frequencies are not known from one chunk"
)
MULTILABEL = "class_weight is not defined for multilabel targets"
BALANCED_COUNTS = (
    "'balanced' weighs classes by their counts in y, which repeating samples changes "
    "and sample weights do not (scikit-learn's meaning of 'balanced')"
)
DROPOUT_WEIGHTS = (
    "dropout draws a mask per sample visit: a sample repeated twice gets two masks, "
    "a sample of weight 2 one"
)
EXPECTED_FAILURES = {
    "class_weight": {
        "check_fit_score_takes_y": PARTIAL_FIT_BALANCED,
        "check_sample_weight_equivalence_on_dense_data": BALANCED_COUNTS,
        "check_sample_weight_equivalence_on_sparse_data": BALANCED_COUNTS,
        "check_n_features_in_after_fitting": PARTIAL_FIT_BALANCED,
        "check_estimators_partial_fit_n_features": PARTIAL_FIT_BALANCED,
        "check_classifiers_multilabel_representation_invariance": MULTILABEL,
        "check_classifiers_multilabel_output_format_predict": MULTILABEL,
        "check_classifiers_multilabel_output_format_predict_proba": (MULTILABEL),
        "check_classifiers_multilabel_output_format_decision_function": (MULTILABEL),
    },
    "dropout": {
        "check_sample_weight_equivalence_on_dense_data": DROPOUT_WEIGHTS,
        "check_sample_weight_equivalence_on_sparse_data": DROPOUT_WEIGHTS,
    },
}


def expected_failed_checks(estimator):
    params = estimator.get_params()
    failures = {}
    if params.get("class_weight") == "balanced":
        failures.update(EXPECTED_FAILURES["class_weight"])
    if params.get("dropout"):
        failures.update(EXPECTED_FAILURES["dropout"])
    return failures


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
