"""Parameter documentation shared by both estimators (numpydoc fragments)."""

COMMON_PARAMETERS = """
    hidden_layer_sizes : array-like of shape(n_layers - 2,), default=(100,)
        The ith element represents the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation function for the hidden layers.

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimization. 'sgd' and 'adam' run in the Rust engine;
        'lbfgs' is scipy's L-BFGS-B fed with loss and gradient from the engine.

    alpha : float, default=0.0001
        Strength of the L2 regularization term, divided by the sample size (or the
        sum of sample weights) of each batch when added to the loss.

    batch_size : int, default='auto'
        Size of minibatches for stochastic optimizers; 'auto' is
        ``min(200, n_samples)``.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule for weight updates (solver='sgd' only).

    learning_rate_init : float, default=0.001
        The initial learning rate (solver='sgd' or 'adam').

    power_t : float, default=0.5
        The exponent of 'invscaling': ``lr = learning_rate_init / (t + 1) ** power_t``.

    max_iter : int, default=200
        Maximum number of epochs (stochastic solvers) or iterations (lbfgs).

    shuffle : bool, default=True
        Whether to shuffle samples in each epoch (stochastic solvers).

    random_state : int, RandomState instance, default=None
        Seeds the initial weights, the early-stopping split and the shuffling, drawing
        exactly the numbers scikit-learn draws: the same value gives the same model.

    tol : float, default=1e-4
        Tolerance for the optimization (see ``n_iter_no_change``).

    verbose : bool or int, default=False
        Whether to print progress messages to stdout, as scikit-learn does; with
        ``verbose=2`` each epoch's time and samples/s follow its loss line.

    warm_start : bool, default=False
        Reuse the solution of the previous call to fit as initialization.

    momentum : float, default=0.9
        Momentum for gradient descent update, in [0, 1] (solver='sgd').

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum (solver='sgd' and momentum > 0).

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the training data and stop when
        the validation score stops improving; the best weights are restored.

    validation_fraction : float, default=0.1
        Proportion of training data set aside for early stopping, in [0, 1).

    beta_1 : float, default=0.9
        Exponential decay rate of the first moment estimates in adam, in [0, 1).

    beta_2 : float, default=0.999
        Exponential decay rate of the second moment estimates in adam, in [0, 1).

    epsilon : float, default=1e-8
        Numerical stability term of adam.

    n_iter_no_change : int, default=10
        Epochs without improvement by ``tol`` before stopping (stochastic solvers).

    max_fun : int, default=15000
        Maximum number of loss function calls (solver='lbfgs').

    n_jobs : int, default=None
        Threads the engine may use: k > 0 for k threads, -1 for every core, None for
        ``OMP_NUM_THREADS`` when it is set (joblib's workers set it to their share of
        the cores, so ``GridSearchCV(n_jobs=...)`` does not oversubscribe) and every
        core otherwise. Results are bit-identical whatever the value.

    callbacks : callable or list of callables, default=None
        Called after every epoch of 'sgd' and 'adam' as
        ``callback(epoch, loss, validation_score, elapsed)``: the epoch count of this
        call (from 1), the epoch's training loss, the validation score (None without
        early stopping) and the seconds since the call started. Training stops after
        the epoch if any callback returns True. 'lbfgs' calls them after every
        iteration the same way (the iteration count, the loss, None), and stops
        there (without a ConvergenceWarning) when one returns True. Use it for
        progress bars and logging.
        Callbacks that cannot be pickled (a lambda, a progress bar) are left out of
        the estimator's pickle, with a warning.

    dropout : float or tuple of float, default=0.0
        Inverted dropout of the hidden layers' outputs during stochastic training
        (solver='sgd' or 'adam'): each unit is kept with probability ``1 - p`` and
        scaled by ``1 / (1 - p)``, or set to 0; prediction never drops. A float in
        [0, 1) applies to every hidden layer, a tuple gives one rate per hidden
        layer. The masks come from a generator seeded from ``random_state`` and do not
        depend on ``n_jobs``. 0.0 (the default) is scikit-learn's model exactly.

    matmul_precision : {None, 'bfloat16'}, default=None
        Precision of the training's matrix products (solver='sgd' or 'adam').
        None computes them in the model's dtype, as scikit-learn does. 'bfloat16'
        rounds both operands of every product to bfloat16 and accumulates in float32
        (AVX512-BF16 where the CPU has it, a portable kernel giving the same bits
        elsewhere): faster on wide layers, a float32 model whose accuracy matches
        float32 training on Fashion-MNIST (see the README). float64 X is converted to
        float32 once, and a dense X is rounded to bfloat16 once per fit (a copy half
        the size of a float32 X, freed when the fit ends); predictions are computed
        in float32.
"""

COMMON_ATTRIBUTES = """
    loss_ : float
        The current loss computed with the loss function.

    best_loss_ : float or None
        The minimum loss reached during fitting (None with early stopping).

    loss_curve_ : list of shape (n_iter_,)
        The loss at the end of each epoch (stochastic solvers).

    validation_scores_ : list of shape (n_iter_,) or None
        The validation score after each epoch (early stopping only).

    validation_loss_curve_ : list of shape (n_iter_,) or None
        The loss on the validation data after each epoch, without the L2 term (early
        stopping only; not in scikit-learn).

    best_validation_score_ : float or None
        The best validation score (early stopping only).

    t_ : int
        The number of training samples seen by the solver during fitting.

    coefs_ : list of shape (n_layers - 1,)
        The ith element is the weight matrix of layer i, shape (fan_in, fan_out).

    intercepts_ : list of shape (n_layers - 1,)
        The ith element is the bias vector of layer i + 1.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string feature names.

    n_iter_ : int
        The number of iterations (epochs) the solver has run in the last call.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation function.
"""
