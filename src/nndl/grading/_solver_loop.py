"""A minimal ``Solver`` for ``nndl check``'s overfitting part, for submissions without one.

The course ships its ``Solver`` (``utils/solver.py``) with the starter code; a submission
that leaves it out is trained by this loop instead. Like ``_child.py`` it is loaded in the
child process from its file and imports the standard library and NumPy only, never the
installed nndl: in the child, ``nndl`` is the student's package, and ``update_rule`` is
looked up in the student's ``nndl/optim.py``, as the course's Solver does.

The loop is the course's: minibatches drawn with replacement from NumPy's global generator,
one update-rule config per parameter, the learning rate decayed at each epoch's end, the
training and validation accuracy checked at the first and last iteration and at each
epoch's end, and the parameters of the best validation accuracy restored at the end.
"""

import importlib

import numpy as np


class Solver:
    def __init__(self, model, data, update_rule="sgd", optim_config=None, lr_decay=1.0,
                 batch_size=100, num_epochs=10, print_every=10, verbose=True):
        optim = importlib.import_module("nndl.optim")
        self.model, self.data = model, data
        self.update_rule = getattr(optim, update_rule)
        self.optim_configs = {p: dict(optim_config or {}) for p in model.params}
        self.lr_decay, self.batch_size, self.num_epochs = lr_decay, batch_size, num_epochs
        self.loss_history, self.train_acc_history, self.val_acc_history = [], [], []
        self.best_val_acc, self.best_params = -1.0, {}

    def _step(self):
        X, y = self.data["X_train"], self.data["y_train"]
        batch = np.random.choice(X.shape[0], self.batch_size)
        loss, grads = self.model.loss(X[batch], y[batch])
        self.loss_history.append(loss)
        for name in list(self.model.params):
            next_w, config = self.update_rule(self.model.params[name], grads[name],
                                              self.optim_configs[name])
            self.model.params[name], self.optim_configs[name] = next_w, config

    def check_accuracy(self, X, y):
        return float(np.mean(np.argmax(self.model.loss(X), axis=1) == y))

    def train(self):
        per_epoch = max(self.data["X_train"].shape[0] // self.batch_size, 1)
        iterations = self.num_epochs * per_epoch
        for t in range(iterations):
            self._step()
            epoch_end = (t + 1) % per_epoch == 0
            if epoch_end:
                for config in self.optim_configs.values():
                    if "learning_rate" in config:
                        config["learning_rate"] *= self.lr_decay
            if t == 0 or t == iterations - 1 or epoch_end:
                self.train_acc_history.append(
                    self.check_accuracy(self.data["X_train"], self.data["y_train"]))
                val = self.check_accuracy(self.data["X_val"], self.data["y_val"])
                self.val_acc_history.append(val)
                if val > self.best_val_acc:
                    self.best_val_acc = val
                    self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        self.model.params = self.best_params
