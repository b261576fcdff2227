# expect: shape
# DQN update on a toy chain MDP: q.gather(1, a.unsqueeze(1)) is (N, 1) but the TD target is (N,): SmoothL1 broadcasts.
# args: --max-steps 80
import torch
import torch.nn as nn
import torch.nn.functional as F


class QNet(nn.Module):
    def __init__(self, n_states=6, n_actions=2):
        super().__init__()
        self.n_states = n_states
        self.net = nn.Sequential(nn.Linear(n_states, 32), nn.ReLU(), nn.Linear(32, n_actions))

    def forward(self, s):
        return self.net(F.one_hot(s, self.n_states).float())


def env_step(s, a):
    s2 = torch.clamp(s + torch.where(a == 1, 1, -1), 0, 5)
    return s2, (s2 == 5).float()


def main():
    torch.manual_seed(0)
    q, q_target = QNet(), QNet()
    q_target.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=1e-3)
    gamma = 0.9
    for it in range(150):
        s = torch.randint(0, 6, (64,))
        a = torch.randint(0, 2, (64,))
        s2, r = env_step(s, a)
        q_sa = q(s).gather(1, a.unsqueeze(1))                    # (64, 1)
        with torch.no_grad():
            target = r + gamma * q_target(s2).max(1).values       # (64,)
        loss = F.smooth_l1_loss(q_sa, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 50 == 49:
            q_target.load_state_dict(q.state_dict())
            print(f"iter {it} loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
