"""Does torch.compile speed up the engine? Its LeNet training step (K = 20 networks, forward,
loss, backward, masked gradients, Adam) eager and compiled (inductor), interleaved, 3 x 100
steps each on random data, one CPU thread:  python scripts/bench_compile.py"""
import time

import torch
import torch.nn.functional as F

from lth_utils.engine import StackedNet

torch.set_num_threads(1)
torch.manual_seed(0)
K, B = 20, 60
net = StackedNet("lenet", "mnist", K)
with torch.no_grad():
    for tensor in net.parameters():
        tensor.normal_(0, 0.05)
opt = torch.optim.Adam(net.parameters(), lr=1.2e-3)
X, Y = torch.randn(K, B, 1, 28, 28), torch.randint(0, 10, (K, B))


def loss_fn(x, y):
    logits = net.forward(x)
    k, b, c = logits.shape
    return F.cross_entropy(logits.reshape(-1, c), y.reshape(-1), reduction="sum") / b


compiled = torch.compile(loss_fn)


def step(fn):
    loss = fn(X, Y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    net.mask_gradients()
    opt.step()


t0 = time.perf_counter()
step(compiled)
step(compiled)
print(f"compile {time.perf_counter() - t0:.1f} s", flush=True)
res = {"eager": [], "compiled": []}
for rep in range(3):
    for name, fn in (("eager", loss_fn), ("compiled", compiled)):
        t0 = time.perf_counter()
        for _ in range(100):
            step(fn)
        res[name].append(time.perf_counter() - t0)
        print(rep, name, f"{res[name][-1]:.2f} s", flush=True)
e, c = sorted(res["eager"])[1], sorted(res["compiled"])[1]
print(f"median eager {e:.2f} s, compiled {c:.2f} s, compiled/eager speed {e / c:.2f}x")
