"""Run by tests/test_train.py under ``torch.distributed.run`` with 2 CPU processes.

usage: ddp_train_script.py OUTDIR

Trains a tiny regression MLP (OUTDIR/run) and a tiny two-module GAN (OUTDIR/gan)
with the unchanged :class:`capsule_lib.train.Trainer`, then every rank writes
OUTDIR/rank<R>.json: a hash of its final parameters, the dataset indices it saw in
each epoch and its own (local) mean loss per epoch, so the test can check that the
ranks agree, split the data and that the history holds the mean across ranks.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from capsule_lib.atomic import atomic_write_text
from capsule_lib.train import TrainConfig, Trainer, TrainingTask

N_SAMPLES = 32


class IndexedRegression(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(N_SAMPLES, 3, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3

    def __len__(self):
        return N_SAMPLES

    def __getitem__(self, i):
        return i, self.x[i], self.y[i]


class RegressionTask(TrainingTask):
    def __init__(self):
        self.epoch = 1
        self.seen: dict[int, list[int]] = {}
        self.losses: dict[int, list[float]] = {}

    def build(self, device):
        net = torch.nn.Sequential(
            torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)
        )
        return {"net": net.to(device)}

    def configure_optimizers(self, modules, config):
        return {"net": torch.optim.Adam(modules["net"].parameters(), lr=config.lr)}

    def train_dataset(self):
        return IndexedRegression()

    def training_step(self, modules, optimizers, batch, step):
        idx, x, y = batch
        loss = torch.nn.functional.mse_loss(modules["net"](x), y)
        self.optimize(optimizers["net"], loss)
        self.seen.setdefault(self.epoch, []).extend(int(i) for i in idx)
        self.losses.setdefault(self.epoch, []).append(float(loss.detach()))
        return {"loss": loss}


class GanTask(TrainingTask):
    """Critic updated every step, generator every ``ratio``-th step."""

    ratio = 2

    def build(self, device):
        return {
            "gen": torch.nn.Linear(2, 2).to(device),
            "critic": torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).to(device),
        }

    def train_dataset(self):
        return torch.utils.data.TensorDataset(torch.randn(N_SAMPLES, 2, generator=torch.Generator().manual_seed(7)) + 3)

    def training_step(self, modules, optimizers, batch, step):
        (real,) = batch
        gen, critic = modules["gen"], modules["critic"]
        with torch.no_grad():  # DDP: a forward whose output is detached runs without grad
            fake = gen(torch.randn(len(real), 2))
        d_loss = critic(fake).mean() - critic(real).mean()
        self.optimize(optimizers["critic"], d_loss)
        out = {"d_loss": d_loss}
        if step % self.ratio == self.ratio - 1:
            g_loss = -critic(gen(torch.randn(len(real), 2))).mean()
            self.optimize(optimizers["gen"], g_loss)
            out["g_loss"] = g_loss
        return out


def params_hash(modules) -> str:
    h = hashlib.sha256()
    for name in sorted(modules):
        for key, value in sorted(modules[name].state_dict().items()):
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(out: Path) -> None:
    config = TrainConfig(epochs=6, batch_size=4, lr=0.03, seed=3, device="cpu", progress=False)
    task = RegressionTask()

    def next_epoch(history):
        task.epoch = len(history) + 1

    trainer = Trainer(task, config, out / "run", on_epoch_end=next_epoch)
    history = trainer.fit()

    # A second fit in the same process: a fresh process group, two modules, two optimizers.
    gan_config = TrainConfig(epochs=2, batch_size=4, lr=0.01, seed=1, device="cpu", progress=False)
    gan = Trainer(GanTask(), gan_config, out / "gan")
    gan.fit()

    report = {
        "rank": trainer.rank,
        "world_size": trainer.world_size,
        "hash": params_hash(trainer.modules),
        "gan_hash": params_hash(gan.modules),
        "seen": task.seen,
        "local_loss": {e: sum(v) / len(v) for e, v in task.losses.items()},
        "history": history,
    }
    atomic_write_text(out / f"rank{trainer.rank}.json", json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
