"""Finding codes of the ``data`` category: class imbalance, leakage, too little data, input distribution shift."""

from __future__ import annotations

from nndoctor.catalogue.entry import CodeInfo

__all__ = ["CODES"]

CODES = (
    CodeInfo(
        code="data.future-tokens-visible",
        severity="warning",
        step="implement & debug",
        title="A next-token model sees the token it predicts",
        meaning=(
            "The model is trained to predict the next token (targets = inputs shifted by one), but its "
            "output at a position depends on later input tokens: self-attention without a causal mask, a "
            "bidirectional RNN, or a convolution padded on both sides lets each position read its answer."
        ),
        why=(
            "The training loss collapses because the model copies the next input token; at generation "
            "time that token does not exist yet, so the model has learned nothing usable."
        ),
        detection=(
            "Sampled training steps: a cross-entropy/NLL loss whose integer targets equal an integer (N, T) "
            "model input shifted by one at >= 90% of the non-ignored positions, in >= 2 batches. After the "
            "next optimizer step (at the end of a run without one) "
            "the model is re-run in eval mode (restored after, no_grad, RNG untouched) on a copy of up to 4 "
            "rows (the same seed for each call), twice as is (a forward that is not deterministic is not "
            "judged) and once with only the last token of each row changed; when any output at an "
            "earlier position moves by more than 1e-3 of the output's scale, future tokens reach the "
            "predictions."
        ),
        fixes=(
            "Give {model}'s self-attention a causal mask: e.g. "
            "mask = nn.Transformer.generate_square_subsequent_mask(T) and layer(x, src_mask=mask, "
            "is_causal=True), or scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), "
            "float('-inf')), or F.scaled_dot_product_attention(q, k, v, is_causal=True).",
            "Use a unidirectional RNN (bidirectional=False) or left-only (causal) padding for convolutions "
            "in a next-token model.",
        ),
        wrong="""
h = self.block(self.emb(idx))            # TransformerEncoderLayer, no mask
loss = F.cross_entropy(self.head(h).flatten(0, 1), idx_next.flatten())
""",
        right="""
mask = nn.Transformer.generate_square_subsequent_mask(idx.shape[1])
h = self.block(self.emb(idx), src_mask=mask, is_causal=True)
""",
    ),
    CodeInfo(
        code="data.last-step-of-padded",
        severity="warning",
        step="implement & debug",
        title="Right-padded sequences are classified from their last (padded) step",
        meaning=(
            "Sequences of different lengths are padded on the right and the per-sequence prediction is read at "
            "the last position: out[:, -1], out[:, -1, :], or the final hidden state h_n of an RNN/LSTM/GRU run "
            "over the padded tensor. For every sequence shorter than the batch, that position is padding."
        ),
        why=(
            "Short sequences are classified from a state that has just read several pad steps (or from the "
            "output of a pad query): the model learns slower, its predictions depend on how much padding the "
            "batch has, and a batch of other lengths at test time gives other answers."
        ),
        detection=(
            "Sampled training steps: the model's input is right-padded (an integer (N, T) tensor whose "
            "padding_idx or trailing-run value ends >= 20% of the rows with runs of >= 2 different lengths and "
            "never occurs inside a sequence, or a float (N, T, F) tensor with trailing all-zero steps in the "
            "same way and < 1% exact zeros elsewhere); on the same step a (N, T, ...) or (T, N, ...) tensor is "
            "indexed at the last time position only (index -1 or T-1: getitem, select, narrow), or the h_n of "
            "a recurrent layer run over the padded (not packed) batch reaches a linear layer, and a loss of "
            "per-sequence predictions ((N, C) or (N,)) follows. Two such sampled steps make the warning."
        ),
        fixes=(
            "Read each sequence at its own last real step: out[torch.arange(N), lengths - 1] (batch-first), "
            "instead of {how} at {site}.",
            "Or pack the batch (nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, "
            "enforce_sorted=False)) and use h_n, which is then taken at each sequence's length.",
            "Or pool over the real steps with a mask ((out * mask).sum(1) / mask.sum(1)), or pad on the left.",
        ),
        wrong="""
out, _ = lstm(emb(tokens))            # tokens padded on the right with PAD
logits = head(out[:, -1])             # short rows: the state after the padding
""",
        right="""
out, _ = lstm(emb(tokens))
logits = head(out[torch.arange(len(tokens)), lengths - 1])   # each row's last real step
""",
    ),
    CodeInfo(
        code="data.padding-mask-inverted",
        severity="warning",
        step="implement & debug",
        title="The attention padding mask is inverted",
        meaning=(
            "Sequences are padded, and the attention mask meant to hide the padded keys hides the real "
            "tokens instead and lets every query attend to the padding. PyTorch's two conventions disagree: "
            "nn.MultiheadAttention's key_padding_mask (and nn.TransformerEncoder's src_key_padding_mask) is "
            "True where a key is IGNORED, a boolean attn_mask of F.scaled_dot_product_attention (like Hugging "
            "Face's attention_mask) is True where a key TAKES PART."
        ),
        why=(
            "Attention reads nothing but padding, so the model cannot use the context: the loss stalls at what "
            "the embeddings alone can do, and a row without padding has every key masked (NaN or zeros)."
        ),
        detection=(
            "Sampled training steps: the padded positions of the model's integer (N, T) token input (the "
            "padding_idx of an nn.Embedding, or a value that only fills a trailing/leading run of varying "
            "length in >= 20% of the rows; >= 5% of the positions padding, no row all padding) are compared "
            "with the keys an attention call hides from every query (key_padding_mask of "
            "F.multi_head_attention_forward: True or <= -1e4; attn_mask of F.scaled_dot_product_attention: "
            "False or <= -1e4; masked_fill of (N, ..., T) scores with a value <= -1e4). A call is inverted "
            "when >= 90% of the padded keys are attended and >= 90% of the real keys are hidden; >= 2 such "
            "calls and at least half of the calls judged make the warning."
        ),
        fixes=(
            "Build the mask at {site} with the convention of {op}: key_padding_mask = (tokens == PAD) for "
            "nn.MultiheadAttention / nn.TransformerEncoder (True = ignore), attn_mask = (tokens != PAD)"
            "[:, None, None, :] for F.scaled_dot_product_attention (True = attend).",
            "For hand-written attention: scores.masked_fill(tokens[:, None, None, :] == PAD, float('-inf')).",
        ),
        wrong="""
pad_mask = tokens != PAD                      # True on the real tokens
h = encoder(emb(tokens), src_key_padding_mask=pad_mask)
""",
        right="""
pad_mask = tokens == PAD                      # True = ignore this key
h = encoder(emb(tokens), src_key_padding_mask=pad_mask)
""",
    ),
    CodeInfo(
        code="data.padding-mask-as-float",
        severity="warning",
        step="implement & debug",
        title="A 0/1 float padding mask masks nothing",
        meaning=(
            "The attention padding mask is a float tensor of 0s and 1s ((tokens == PAD).float(), or a Hugging "
            "Face-style attention_mask) given as nn.MultiheadAttention's key_padding_mask or "
            "F.scaled_dot_product_attention's attn_mask. PyTorch ADDS a float mask to the attention scores: "
            "+1 on some keys hides none of them."
        ),
        why=(
            "The padded positions are attended like real tokens (or more), so every prediction depends on how "
            "much padding its sequence has: the model learns slower and behaves differently on batches padded "
            "to another length."
        ),
        detection=(
            "Sampled training steps, with the padding of the model's integer (N, T) input found as for "
            "data.padding-mask-inverted: an attention call's key_padding_mask / attn_mask is a floating "
            "tensor holding only 0s and 1s (both), the same for every query, whose 1s are the padded positions "
            "(or the real tokens) at >= 95% of the positions; >= 2 such calls make the warning."
        ),
        fixes=(
            "Give {op} a boolean mask at {site}: key_padding_mask = (tokens == PAD) (True = ignore) for "
            "nn.MultiheadAttention / nn.TransformerEncoder, attn_mask = (tokens != PAD)[:, None, None, :] "
            "(True = attend) for F.scaled_dot_product_attention; or an additive float mask of 0 and "
            "float('-inf').",
        ),
        wrong="""
h = encoder(emb(tokens), src_key_padding_mask=(tokens == PAD).float())   # adds 1.0: masks nothing
""",
        right="""
h = encoder(emb(tokens), src_key_padding_mask=(tokens == PAD))           # bool: True = ignore
""",
    ),
    CodeInfo(
        code="data.class-imbalance",
        severity="warning",
        step="evaluate",
        title="Imbalanced classes",
        meaning=(
            "The training targets are dominated by some classes: the largest class is 10 or more times as "
            "frequent as the smallest."
        ),
        why=(
            "Accuracy is misleading and the model tends to ignore the rare classes; the per-class error "
            "shows it."
        ),
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. A warning when the "
            "largest/smallest class ratio is >= 10 confidently (the ratio's lower bound is >= 5), over at "
            "least 200 targets, with the per-class error of the script's own evaluation when available. "
            "`nndoctor evaluate` and `nndoctor data` make the same finding from the whole training split."
            " With targets of several losses (a class head beside real/fake BCE targets), the counts are "
            "those of the loss with the most classes, less its single-class batches where they are far "
            "more common than chance makes them (a constant 'fake' class the script fills in)."
        ),
        fixes=(
            "Check the per-class error: if the minority classes ({minority}) fail, re-weight the loss "
            "(CrossEntropyLoss(weight=...)) or over-sample them (WeightedRandomSampler).",
            "Collect more examples of the minority classes.",
            "Report a metric that is not dominated by the majority class (balanced accuracy, per-class F1).",
        ),
        wrong="""
loss_fn = nn.CrossEntropyLoss()
""",
        right="""
counts = torch.bincount(y_train).float()
loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (len(counts) * counts))
""",
    ),
    CodeInfo(
        code="data.class-weights-inverted",
        severity="warning",
        step="improve",
        title="Class weights favour the frequent classes",
        meaning=(
            "The loss's class weights grow with class frequency (computed as counts / total instead of "
            "total / counts), or BCE's pos_weight is n_pos / n_neg instead of n_neg / n_pos."
        ),
        why=(
            "The weighting meant to help the rare classes pushes the model further toward the majority: "
            "the rare classes are never predicted while the loss looks fine."
        ),
        detection=(
            "The weight= of cross_entropy/nll_loss and the pos_weight= of binary_cross_entropy_with_logits "
            "are read on sampled training steps with the class counts of the same calls' targets and judged "
            "at the end of the run. Class weights: the most frequent class >= 3x the rarest, the slope of "
            "log weight on log count >= 0.5 (inverse-frequency weights have slope -1), correlation >= 0.9 "
            "with 3+ classes, and the most frequent class weighted >= 2x the rarest. pos_weight: positives "
            "<= 25% of the rows and pos_weight <= 0.5 within a factor 2 of n_pos / n_neg."
        ),
        fixes=(
            "Invert the weights at {site}: weight = counts.sum() / (len(counts) * counts) (the rare classes "
            "get the large weights); for BCE, pos_weight = n_neg / n_pos.",
            "Or drop the weighting and over-sample the rare classes (WeightedRandomSampler with per-sample "
            "weights 1 / count of the sample's class).",
        ),
        wrong="""
counts = torch.bincount(y_train).float()
loss_fn = nn.CrossEntropyLoss(weight=counts / counts.sum())
""",
        right="""
counts = torch.bincount(y_train).float()
loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / (len(counts) * counts))
""",
    ),
    CodeInfo(
        code="data.getitem-ignores-index",
        severity="warning",
        step="implement & debug",
        title="Dataset.__getitem__ ignores its index",
        meaning=(
            "The examples a map-style dataset returns do not follow the index the DataLoader asks for: "
            "`return self.x[0]` left in, a random row drawn inside `__getitem__` (`randint`), or one cached "
            "batch returned for every index."
        ),
        why=(
            "Every epoch trains on a constant or random subset of the data (with repeats): the sampler's "
            "shuffling and its epoch coverage mean nothing, part of the data is never seen, and the loss shows "
            "only a vague plateau or noise."
        ),
        detection=(
            "For single-process DataLoaders, the loader tracker records the dataset indices of each batch; "
            "the rows of the model's training input are fingerprinted per index. Random examples: of at least "
            "32 indices asked for again in a later epoch, at least half came back with other values and at "
            "least 20% with exactly the values another index gave before (augmentation never reproduces "
            "another example exactly). Too few examples: at least 64 distinct indices gave at most 1/8 as many "
            "distinct values while a tensor or array the dataset holds (one row per index) has at least 4x "
            "as many distinct rows at those indices. Quiet: augmentation, samplers with replacement, "
            "IterableDatasets, multi-process loaders."
        ),
        fixes=(
            "Make {dataset}.__getitem__(self, i) return example i: `return self.x[i], self.y[i]` (random "
            "augmentation of example i is fine; drawing another example is not).",
            "To sample at random, leave __getitem__ deterministic and give the DataLoader a sampler "
            "(shuffle=True, RandomSampler(replacement=True) or WeightedRandomSampler).",
        ),
        wrong="""
def __getitem__(self, i):
    j = random.randint(0, len(self.x) - 1)
    return self.x[j], self.y[j]
""",
        right="""
def __getitem__(self, i):
    return self.x[i], self.y[i]
""",
    ),
    CodeInfo(
        code="data.loader-yields-no-batches",
        severity="warning",
        step="implement & debug",
        title="DataLoader yields no batch",
        meaning=(
            "A DataLoader was iterated while it has no batch to give: drop_last=True with fewer rows than "
            "batch_size, or an empty split; or its iterator, made once outside the epoch loop (it = "
            "iter(loader)), is iterated again after the first pass exhausted it. The loop over it ends at "
            "once, without an error."
        ),
        why="The model is never trained (or never evaluated) by that loop, and the script still prints metrics.",
        detection=(
            "When a DataLoader is iterated, nndoctor notes it if len(loader) == 0 (loaders of unknown length "
            "are not judged). At the end of the run: an error when no optimizer step ran at all, a warning "
            "otherwise. A DataLoader iterator that raised StopIteration and is then iterated again (iter() / "
            "for over the same iterator object, without its loader resetting it) is reported as a warning."
        ),
        fixes=(
            "Make {loader} give batches: a batch_size at most its {dataset_rows} rows, or drop_last=False "
            "(batch_size={batch_size}, drop_last={drop_last}).",
            "If the split is empty, check how it is built (slice bounds, filters, file paths).",
        ),
        wrong="""
loader = DataLoader(train_ds, batch_size=128, drop_last=True)   # 120 rows
""",
        right="""
loader = DataLoader(train_ds, batch_size=32, shuffle=True, drop_last=True)
""",
    ),
    CodeInfo(
        code="data.distribution-shift",
        severity="warning",
        step="evaluate",
        title="Train and test-val inputs are distinguishable",
        meaning=(
            "A classifier can tell training inputs from test-val inputs: the two come from different "
            "distributions."
        ),
        why=(
            "A model trained on one distribution is evaluated (and deployed) on another; the shift term of "
            "the error cannot be fixed by more training."
        ),
        detection=(
            "`nndoctor evaluate`/`data` fit a logistic regression (domain classifier) to separate train from"
            " test-val inputs; its cross-validated AUC is compared with the AUCs after shuffling the domain "
            "labels (a permutation test, giving a p-value). The features that differ most are ranked by "
            "standardised mean difference."
        ),
        fixes=(
            "Look at the features that differ most ({top_features}): is the test-val data preprocessed the "
            "same way?",
            "Collect or synthesise training data that looks like test-val (augment towards those "
            "differences).",
            "Do error analysis on test-val: which classes or slices suffer from the shift.",
        ),
    ),
    CodeInfo(
        code="data.observed-sample",
        severity="info",
        step="evaluate",
        title="The bounded sample of observed data",
        meaning=(
            "The collector that keeps the sample the dataset checks judge (class counts, input fingerprints,"
            " (input, target) pairs). It reports nothing itself: the code exists because every check "
            "declares one."
        ),
        why="Not a problem: nothing to fix.",
        detection=(
            "Training batches are looked at on sampled steps only; evaluation forwards are fingerprinted and"
            " grouped into passes. Everything is bounded."
        ),
    ),
    CodeInfo(
        code="data.sampler-covers-few-samples",
        severity="warning",
        step="implement & debug",
        title="The training loader draws only a handful of the dataset's samples",
        meaning=(
            "Training batches repeat a few distinct samples although the DataLoader's dataset is far larger: "
            "a WeightedRandomSampler given one weight per class instead of one per sample (it only ever draws "
            "indices 0..k-1), a SubsetRandomSampler or Subset built from the wrong indices, sampling weights "
            "that are zero almost everywhere."
        ),
        why=(
            "The model memorises those few samples and never sees the rest of the data: the training loss "
            "falls, the test score stays poor."
        ),
        detection=(
            "The distinct fingerprints of the sampled training inputs (D) are compared with the rows drawn (R) "
            "and the training DataLoader's dataset length (L, one training loader). Uniform draws would show "
            "E = L (1 - exp(-R/L)) distinct samples. Reported when L >= 100, >= 4 sampled batches were fetched "
            "from that loader, R >= 4 D, D <= 10% of E and D <= 10% of L. A warning when the sampler's own reach "
            "confirms it (the non-zero weights of a WeightedRandomSampler, fewer weights than samples, the "
            "distinct indices of a SubsetRandomSampler or of the loader's Subset: at most max(2 D, 10% of L)) or, for a TensorDataset, "
            "its distinct rows (strided read of <= 20,000) number >= 10x D, or every sampled batch came from a "
            "new iterator of an unshuffled loader (`next(iter(loader))` inside the loop: the first batch each "
            "time; the sampler and dataset are then read from the DataLoader); otherwise info. One batch reused "
            "on purpose, per-sample weights with a rare class, tiny datasets and short runs stay quiet."
        ),
        fixes=(
            "Give the sampler one weight per SAMPLE: WeightedRandomSampler(class_weights[targets], "
            "num_samples=len(targets)) ({sampler} of {loader} reaches {sampler_reach} of {dataset_len}).",
            "Check the indices of a Subset / SubsetRandomSampler: they must span the training rows.",
            "Iterate the loader (`for xb, yb in {loader}:`), or keep one iterator across steps "
            "(`it = iter({loader})` once, `next(it)` each step): a new iterator per step restarts the data.",
        ),
        wrong="""
class_w = 1.0 / torch.bincount(y_train).float()        # one weight per class
sampler = WeightedRandomSampler(class_w, num_samples=len(y_train))
""",
        right="""
class_w = 1.0 / torch.bincount(y_train).float()
sampler = WeightedRandomSampler(class_w[y_train], num_samples=len(y_train))  # one per sample
""",
    ),
    CodeInfo(
        code="data.start-class-imbalance",
        severity="warning",
        step="start simple",
        title="Imbalanced classes (start review)",
        meaning=(
            "In the first examples, the most frequent class is more than 10 times as common as the rarest."
        ),
        why="Accuracy will be misleading and rare classes ignored.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; a warning when the "
            "ratio is > 10 and at least 20 examples per class were read."
        ),
        fixes=(
            "Use class weights in the loss (CrossEntropyLoss(weight=...)) or a WeightedRandomSampler.",
            "Report per-class metrics, not only accuracy.",
        ),
        wrong="""
loss_fn = nn.CrossEntropyLoss()
""",
        right="""
loss_fn = nn.CrossEntropyLoss(weight=class_weights)   # or a WeightedRandomSampler
""",
    ),
    CodeInfo(
        code="data.start-fewer-classes",
        severity="info",
        step="start simple",
        title="Many classes for a first version (start review)",
        meaning="More than 20 classes occur in the first examples.",
        why="Advice: a first version on a few classes is quicker to debug.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when more than 20 "
            "classes are seen in the examples read."
        ),
        fixes=(
            "Use nndoctor.start.simplify(dataset, classes=10) for the first versions.",
        ),
    ),
    CodeInfo(
        code="data.start-simplify",
        severity="info",
        step="start simple",
        title="A large training set for a first version (start review)",
        meaning="The training set has more than 20,000 examples.",
        why="Advice: the guide first works on about 10,000 examples so each try takes minutes.",
        detection=(
            "`nndoctor start EXP` inspects the experiment without training anything; info when the training "
            "set size is above 20,000."
        ),
        fixes=(
            "Use nndoctor.start.simplify(dataset, max_examples=10_000) for the first versions.",
        ),
    ),
    CodeInfo(
        code="data.target-in-inputs",
        severity="warning",
        step="evaluate",
        title="The target leaked into the model's inputs",
        meaning=(
            "The model is given its own target: a feature column that is the label (or an affine copy of "
            "it: a standardised label, a forecasting window that includes the value to predict), or a "
            "token model trained with targets equal to its input tokens at the same positions (a "
            "next-token model without the shift by one), or a sequence-to-sequence decoder fed the targets "
            "themselves instead of the targets shifted right (teacher forcing without [BOS] + targets[:-1])."
        ),
        why=(
            "The training loss collapses to ~0 almost at once because the answer is in the input; the "
            "model learns to copy it and nothing that works on real inputs, where the target is not given."
        ),
        detection=(
            "On sampled training steps the root model's inputs are compared with the loss's target of the "
            "same step. Columns: a float input with >= 2 columns and a one-per-row target; a column whose "
            "correlation with the target is |r| >= 1 - 1e-6 in every one of >= 3 sampled batches "
            "(>= 64 rows) is reported (a single-feature regression and an autoencoder's multi-column "
            "target are not judged). Tokens: a cross-entropy/NLL loss whose integer targets have as many "
            "elements as an integer model input and equal it at >= 98% of the non-ignored positions over "
            ">= 2 sampled batches (>= 64 positions); a warning when the training loss fell to <= 30% of its "
            "first value, otherwise info. Shifted language models, masked and denoising models agree far "
            "less and stay quiet. Judged at the end of the run. Decoder inputs: a second integer argument of "
            "the forward equal to the targets at >= 90% of the non-ignored positions in >= 2 sampled batches, "
            "and a probe (a copy of 4 rows, eval mode, no gradient, the RNG forked) that changes only the token "
            "at the middle position: when the output at that same position moves (> 1e-3 of the output's "
            "scale), the decoder reads the token it must predict (a decoder that shifts its input itself "
            "reads earlier tokens only and stays quiet); said after the step that follows the evidence."
        ),
        fixes=(
            "Remove {what} from the model's input: {remove}.",
            "Re-check the validation metric after the fix: the current one measures copying.",
        ),
        wrong="""
X = torch.tensor(df.values, dtype=torch.float32)     # still holds the 'label' column
y = torch.tensor(df["label"].values)
logits = lm(tokens); loss = F.cross_entropy(logits.transpose(1, 2), tokens)      # no shift
logits = seq2seq(src, tgt); loss = F.cross_entropy(logits.transpose(1, 2), tgt)  # decoder shown the answer
""",
        right="""
X = torch.tensor(df.drop(columns=["label"]).values, dtype=torch.float32)
y = torch.tensor(df["label"].values)
logits = lm(tokens[:, :-1]); loss = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:])
dec_in = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], dim=1)  # shifted right
logits = seq2seq(src, dec_in); loss = F.cross_entropy(logits.transpose(1, 2), tgt)
""",
    ),
    CodeInfo(
        code="data.too-little-data",
        severity="warning",
        step="improve",
        title="More data would still help",
        meaning=(
            "On the learning curve, the train-val error still falls steeply between the last two points "
            "(training on part of the data, then all of it)."
        ),
        why="More data is the top fix for variance when the curve has not flattened.",
        detection=(
            "`nndoctor evaluate` trains on growing fractions of the training set; the finding is made when "
            "the error drop between the last two points is at least 0.02."
        ),
        fixes=(
            "Collect more training data: validation error still falls steeply from {last_fraction:.0%} to "
            "100% of the training set ({errors}).",
            "Until then, augment the data and regularise.",
        ),
    ),
    CodeInfo(
        code="data.train-test-leakage",
        severity="warning",
        step="evaluate",
        title="Evaluation examples also occur in the training set",
        meaning=(
            "Examples the script evaluates on are copies (byte-identical, or near duplicates in `nndoctor "
            "evaluate`/`data`) of examples it trains on."
        ),
        why="The evaluation error is optimistic: it partly measures memorisation.",
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. Inputs of sampled training"
            " batches and of every evaluation pass are fingerprinted; nndoctor estimates the share c of the "
            "training set it saw. A pass that is (part of) the training data would match about c of its "
            "examples; a pass with clearly fewer, but some, matches is a different set that shares examples:"
            " leakage. Passes over the training loader are never judged. An evaluation DataLoader that selects "
            "examples of the training loader's dataset by index (Subset chains, SubsetRandomSampler indices) is "
            "also compared index by index with the latest training split: >= 3 shared indices is leakage, even "
            "when the whole evaluation split lies inside the training split (a Subset drawn from the training "
            "split itself is not judged). `nndoctor evaluate`/`data` hash every example and find near duplicates "
            "with SimHash buckets."
        ),
        fixes=(
            "Remove the {n_shared} {split} examples that also occur in the training set (indices in the "
            "evidence), or split by a group key (user, patient, source file) before shuffling.",
            "Re-measure the {split} error after de-duplication: the current figure is optimistic.",
        ),
        wrong="""
X_train, X_test = X[:900], X[800:]
""",
        right="""
X_train, X_test = X[:800], X[800:]          # or split by group key, after de-duplication
""",
    ),
    CodeInfo(
        code="data.evaluated-on-training-data",
        severity="warning",
        step="evaluate",
        title="Every evaluation of the run scores training examples",
        meaning=(
            "The script evaluates repeatedly while it trains, but each evaluation pass is (a part of) the "
            "training data: the validation set is the training set (`X_val = X_train`, a validation loader "
            "over the training dataset), or the test rows were also appended to the training set."
        ),
        why=(
            "The evaluation figures measure memorisation, not performance on new inputs: they fall with the "
            "training loss however much the model overfits, and model selection or early stopping on them "
            "picks the most overfitted model."
        ),
        detection=(
            "At the end of `nndoctor run`: >= 2 evaluation passes at different steps, each scored against "
            "targets (a classification loss or an accuracy) over >= 32 distinct examples, and every evaluation "
            "pass of the run reads the training DataLoader or its dataset, or matches the fingerprints of "
            "sampled training batches as often as training data would (see data.train-test-leakage). A single "
            "pass (a final training-accuracy print), a preview of the step's own batch, data whose inputs repeat "
            "a lot, any run with one pass of examples it did not train on, and a transductive run (a full-batch "
            "graph model scoring held-out nodes: targets for < 90% of the rows forwarded) are not judged, nor "
            "k-fold cross-validation with one model per fold (a pass is judged against the training examples of "
            "the model that made it). It warns "
            "only where an evaluation was built as a split of its own (a DataLoader other than the training "
            "one, or <= 70% of a training Dataset's length); a pass over the whole training set, its DataLoader "
            "or tensors the script slices its batches from is info: a training-accuracy print with no split "
            "reads the same."
        ),
        fixes=(
            "Hold out a validation split that the model never trains on (split before any concatenation or "
            "augmentation) and evaluate {split} on it instead.",
            "Keep the training-set figures if you want them, next to the held-out ones.",
        ),
        wrong="""
X_val, y_val = X_train, y_train                      # or: X_train = torch.cat([X_train, X_test])
""",
        right="""
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.2)
""",
    ),
    CodeInfo(
        code="data.transductive-evaluation",
        severity="info",
        step="evaluate",
        title="Evaluation inputs were trained on without their labels",
        meaning=(
            "Examples the script evaluates on also went through training, but only in steps that used other "
            "inputs' labels and not theirs: the unlabelled target-domain batch of domain-adversarial training "
            "(DANN) or the unlabelled batch of semi-supervised learning is the evaluation set."
        ),
        why=(
            "Legitimate when the evaluation inputs are available at training time (transductive learning); the "
            "figure then says nothing about inputs the model has never seen."
        ),
        detection=(
            "On sampled steps with several data batches, each training loss's graph is followed back to the "
            "batches' root-model outputs: a loss whose targets vary over a batch labels it, a loss with one "
            "constant target per batch (domain or real/fake labels) labels none. The rows of a step's unlabelled"
            " batches are fingerprinted; an evaluation pass whose matches with training examples are (>= 90%) "
            "such rows gets this note instead of data.train-test-leakage."
        ),
        fixes=(
            "If the model will meet new inputs, hold out part of the {split} inputs from the unlabelled training "
            "batches and report the error on those.",
        ),
    ),
    CodeInfo(
        code="data.unseen-classes",
        severity="warning",
        step="evaluate",
        title="Evaluation classes never seen in training",
        meaning=(
            "Some classes occur in the evaluation batches but never among the training targets observed, as "
            "when a split is taken from class-sorted data."
        ),
        why="The model cannot learn those classes; the evaluation error on them is 100%.",
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. Reported when random "
            "sampling would almost surely have shown those classes in training."
        ),
        fixes=(
            "Shuffle before splitting, or split per class: sklearn.model_selection.train_test_split(X, y, "
            "stratify=y) or StratifiedKFold.",
            "If the split is meant to be by class (open-set evaluation), the error on classes {classes} "
            "cannot fall with this model: evaluate them separately.",
        ),
        wrong="""
train, test = data[:8000], data[8000:]        # data sorted by class
""",
        right="""
train, test = sklearn.model_selection.train_test_split(data, test_size=0.2, stratify=labels)
""",
    ),
    CodeInfo(
        code="data.unshuffled-batches",
        severity="warning",
        step="implement & debug",
        title="Training batches hold one class each",
        meaning=(
            "Most training batches contain a single class although several classes occur: the data are "
            "sorted by class and not shuffled."
        ),
        why=(
            "Each step pulls the model towards one class: the loss oscillates and the model ends up "
            "predicting the last classes seen."
        ),
        detection=(
            "During `nndoctor run`, a collector keeps a bounded sample of what the script trains and "
            "evaluates on (class counts, input fingerprints, a few thousand (input, target) pairs from "
            "sampled steps); the dataset checks judge it once, when the run ends. The class purity of "
            "sampled training batches is compared with what random batches of that class mix would give, "
            "for each label space apart (a loss and its number of classes: a GAN's all-real / all-fake BCE "
            "targets, and a class head's labels with its constant 'fake' class, are not sorted data)."
        ),
        fixes=(
            "Shuffle the training data every epoch: DataLoader(train_set, batch_size=..., shuffle=True), or"
            " index with torch.randperm(n) each epoch when slicing tensors yourself.",
            "Sorted batches make each step pull the model towards one class; shuffling usually fixes both a"
            " high loss and a loss that jumps at class boundaries.",
        ),
        wrong="""
loader = DataLoader(sorted_ds, batch_size=32)
""",
        right="""
loader = DataLoader(sorted_ds, batch_size=32, shuffle=True)
""",
    ),
    CodeInfo(
        code="data.training-on-small-slice",
        severity="warning",
        step="evaluate",
        title="Training on a small slice of a much larger data set",
        meaning=(
            "The model trains on a few hundred or thousand examples cut from a data set at least 5 times "
            "larger: a debug subset (`X[:100]`, `Subset(ds, range(256))`) left in the real run."
        ),
        why=(
            "Nothing fails: the model fits its slice over and over and generalises poorly, while the data "
            "that would fix it sits unused."
        ),
        detection=(
            "The training set size is the training DataLoader's dataset length, or, for batches the script "
            "slices itself, the distinct training rows once at least half of the sampled rows have been met "
            "twice. Its source is the tensor the batches are views of, the data set under a `Subset`, or "
            "evaluation rows that are not training rows. A training set of at most 2,000 rows whose source "
            "holds at least 5x as many is reported; larger training sets are never judged."
        ),
        fixes=(
            "Remove the debug slice of the training data (e.g. `[:{train_rows}]` or a Subset) so the model "
            "trains on all {source_rows} examples.",
            "If the small training set is intended, expect overfitting: hold out a validation set and stop "
            "early.",
        ),
        wrong="""
X_train, y_train = X_train[:100], y_train[:100]        # quick test, left in
""",
        right="""
# train on the whole training split
loader = DataLoader(TensorDataset(X_train, y_train), batch_size=64, shuffle=True)
""",
    ),
)
