# expect: zero-grad
# half: tune
# source: PyTorch forums "loss explodes, embedding gradients keep growing" (model.zero_grad() only clears the model's own parameters; an embedding created outside the model and added to the optimizer is never cleared)
# fault: the token embedding lives outside `model` but is in the optimizer; the loop calls model.zero_grad(), so the embedding's gradient is the sum of every step's gradient and its updates swing wider and wider.
import os

import torch
import torch.nn as nn

SEED = int(os.environ.get("NNDOCTOR_SEED", "0"))
VOCAB, LEN = 50, 12
EMB_LR = 2.0                     # mean-pooled embeddings get small gradients


def make_data(n, gen):
    score = torch.randn(VOCAB, generator=gen)
    tokens = torch.randint(0, VOCAB, (n, LEN), generator=gen)
    rating = score[tokens].mean(1) * 2.0 + 0.1 * torch.randn(n, generator=gen)
    return tokens, rating


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    tokens, rating = make_data(1200, gen)
    emb = nn.Embedding(VOCAB, 16)
    model = nn.Sequential(nn.Linear(16, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.SGD([{"params": model.parameters()},
                           {"params": emb.parameters(), "lr": EMB_LR}], lr=0.1)
    for epoch in range(6):
        perm = torch.randperm(1000)
        for i in range(0, 1000, 25):
            b = perm[i:i + 25]
            model.zero_grad()
            pred = model(emb(tokens[b]).mean(1)).squeeze(1)
            nn.functional.mse_loss(pred, rating[b]).backward()
            opt.step()
    with torch.no_grad():
        pred = model(emb(tokens[1000:]).mean(1)).squeeze(1)
        mse = nn.functional.mse_loss(pred, rating[1000:]).item()
    print(f"final: mse={mse:.4f}")


if __name__ == "__main__":
    main()
