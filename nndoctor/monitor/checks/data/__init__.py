"""Dataset checks of ``nndoctor run``: what the observed batches say about the data.

A collector (:mod:`.sample`) keeps a bounded sample of what the script trains and
evaluates on: class counts of the targets, per-example fingerprints of the inputs (on
sampled training steps and in evaluation passes) and a few thousand (input, target)
pairs. The checks judge them once, when the run ends, off the hot path:

* :mod:`.balance` - class imbalance of the training targets, classes that only occur in
  evaluation, training batches that hold one class each (unshuffled, class-sorted data);
* :mod:`.leakage` - evaluation examples that are byte-identical to training examples;
* :mod:`.probe` - labels unrelated to the inputs (linear and nearest-neighbour probes at
  chance while the training loss sits at chance), or learnable labels with a model stuck
  at chance;
* :mod:`.linear` - a linear model (nn.Linear layers, no activation) stuck at a logistic
  regression's loss on data that the non-linear probes fit;
* :mod:`.noise` - a large share of randomly wrong labels (confident learning on the
  probes' out-of-fold probabilities) that the model memorises;
* :mod:`.targets` - training labels collapsed to one class (e.g. ``(y / 255).long()``);
* :mod:`.eval_inputs` - evaluation inputs preprocessed differently from training inputs
  (compared as they arrive, not at the end).
"""

from __future__ import annotations

from nndoctor._autoload import import_submodules

__all__ = import_submodules(__name__, __path__)
