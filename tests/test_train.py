"""Tests for capsule_lib.train: determinism, exact resume, files written, DDP."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from capsule_lib import CapsuleError
from capsule_lib.train import (
    History,
    TrainConfig,
    Trainer,
    TrainingTask,
    load_modules,
    save_modules,
    select_device,
)

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- tasks


class NoisyRegression(torch.utils.data.Dataset):
    """y = a linear map of x; each item gets fresh numpy noise (so worker seeding matters)."""

    def __init__(self, n=40, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-1.0], [0.5], [2.0]])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        noise = torch.tensor(np.random.normal(0, 0.01, size=4), dtype=torch.float32)
        return self.x[i] + noise, self.y[i]


class RegressionTask(TrainingTask):
    """A tiny MLP whose step draws from every global RNG (torch via dropout, numpy, python)."""

    def __init__(self, *, width=8, interrupt_at_step=None, with_val=False):
        self.width = width
        self.interrupt_at_step = interrupt_at_step
        self.with_val = with_val
        self.steps: list[int] = []

    def build(self, device):
        net = torch.nn.Sequential(
            torch.nn.Linear(4, self.width), torch.nn.Tanh(), torch.nn.Dropout(0.2), torch.nn.Linear(self.width, 1)
        )
        return {"net": net.to(device)}

    def train_dataset(self):
        return NoisyRegression()

    def val_dataset(self):
        return NoisyRegression(n=12, seed=1) if self.with_val else None

    def training_step(self, modules, optimizers, batch, step):
        if step == self.interrupt_at_step:
            raise KeyboardInterrupt
        self.steps.append(step)
        x, y = batch
        x = x * (1.0 + 0.01 * random.random()) + float(np.random.normal(0, 0.01))
        loss = torch.nn.functional.mse_loss(modules["net"](x), y)
        self.optimize(optimizers["net"], loss)
        return {"loss": loss}

    def validation_step(self, modules, batch):
        assert not torch.is_grad_enabled()
        assert not modules["net"].training
        x, y = batch
        return {"loss": torch.nn.functional.mse_loss(modules["net"](x), y)}


class GanTask(TrainingTask):
    """Generator + critic, ``ratio`` critic updates per generator update, an LR schedule."""

    def __init__(self, *, ratio=3, interrupt_at_step=None):
        self.ratio = ratio
        self.interrupt_at_step = interrupt_at_step
        self.scheduler = None
        self.gen_updates = 0
        self.logged: list[tuple[int, dict]] = []

    def build(self, device):
        return {
            "gen": torch.nn.Linear(3, 2).to(device),
            "critic": torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).to(device),
        }

    def configure_optimizers(self, modules, config):
        opts = {
            "gen": torch.optim.Adam(modules["gen"].parameters(), lr=config.lr, betas=(0.5, 0.9)),
            "critic": torch.optim.RMSprop(modules["critic"].parameters(), lr=config.lr),
        }
        self.scheduler = torch.optim.lr_scheduler.StepLR(opts["gen"], step_size=2, gamma=0.5)
        return opts

    def train_dataset(self):
        g = torch.Generator().manual_seed(5)
        return torch.utils.data.TensorDataset(torch.randn(30, 2, generator=g) * 0.5 + 2.0)

    def training_step(self, modules, optimizers, batch, step):
        if step == self.interrupt_at_step:
            raise KeyboardInterrupt
        (real,) = batch
        gen, critic = modules["gen"], modules["critic"]
        with torch.no_grad():
            fake = gen(torch.randn(len(real), 3))
        d_loss = critic(fake).mean() - critic(real).mean()
        self.optimize(optimizers["critic"], d_loss)
        out = {"d_loss": d_loss.item()}
        if step % self.ratio == self.ratio - 1:
            g_loss = -critic(gen(torch.randn(len(real), 3))).mean()
            self.optimize(optimizers["gen"], g_loss)
            self.gen_updates += 1
            self.scheduler.step()
            out["g_loss"] = g_loss.item()
        self.logged.append((step, out))
        return out

    def state_dict(self):
        return {"scheduler": self.scheduler.state_dict(), "gen_updates": self.gen_updates}

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state["scheduler"])
        self.gen_updates = state["gen_updates"]


def config(**kw):
    base = dict(epochs=4, batch_size=8, lr=0.02, seed=11, device="cpu", progress=False)
    base.update(kw)
    return TrainConfig(**base)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """The trained weights as ``"<module>.<param>"`` tensors, from the run's last checkpoint."""
    ckpt = torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)
    return {f"{name}.{k}": v for name, state in ckpt["modules"].items() for k, v in state.items()}


def assert_same_weights(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def without_seconds(history):
    return [{k: v for k, v in rec.items() if k != "seconds"} for rec in history]


def stop_after(epoch):
    def callback(history):
        if len(history) == epoch:
            raise KeyboardInterrupt

    return callback


# --------------------------------------------------------------------------- devices and config


def test_select_device_auto_and_explicit():
    auto = select_device()
    if torch.cuda.is_available():
        assert auto.type == "cuda"
    elif torch.backends.mps.is_available():
        assert auto.type == "mps"
    else:
        assert auto == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda:x", "", "xpu", 3])
def test_select_device_rejects_unknown_names(name):
    with pytest.raises(CapsuleError, match="device"):
        select_device(name)


def test_select_device_checks_availability():
    if torch.cuda.is_available():
        assert select_device("cuda").type == "cuda"
        with pytest.raises(CapsuleError, match="CUDA device"):
            select_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(CapsuleError, match="CUDA is not available"):
            select_device("cuda")
    if not torch.backends.mps.is_available():
        with pytest.raises(CapsuleError, match="MPS is not available"):
            select_device("mps")


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("epochs", 2.5),
        ("batch_size", 0),
        ("lr", 0),
        ("lr", float("nan")),
        ("seed", -1),
        ("checkpoint_every", -1),
        ("grad_clip", -1.0),
        ("max_steps_per_epoch", 0),
        ("num_workers", True),
        ("device", None),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(CapsuleError, match=field if field != "device" else "device"):
        TrainConfig(**{field: value})


def test_trainer_rejects_non_task(tmp_path):
    with pytest.raises(CapsuleError, match="TrainingTask"):
        Trainer(object(), config(), tmp_path)


# --------------------------------------------------------------------------- determinism and files


def test_same_seed_gives_identical_runs_and_other_seed_differs(tmp_path):
    h1 = Trainer(RegressionTask(), config(), tmp_path / "a").fit()
    h2 = Trainer(RegressionTask(), config(), tmp_path / "b").fit()
    Trainer(RegressionTask(), config(seed=12), tmp_path / "c").fit()
    assert_same_weights(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert without_seconds(h1) == without_seconds(h2)
    assert not torch.equal(weights(tmp_path / "a")["net.0.weight"], weights(tmp_path / "c")["net.0.weight"])


def test_fit_writes_history_and_checkpoint(tmp_path):
    trainer = Trainer(RegressionTask(), config(epochs=3), tmp_path)
    history = trainer.fit()

    assert isinstance(history, History)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert all(set(r) == {"epoch", "loss", "seconds"} for r in history)
    assert history.series("loss")[-1] < history.series("loss")[0]
    assert json.loads((tmp_path / "history.json").read_text()) == list(history)
    assert History.load(tmp_path) == history

    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # plain data only, no pickled objects
    assert ckpt["epoch"] == 3
    assert ckpt["global_step"] == 3 * 5  # 40 samples / batch 8
    assert ckpt["history"] == list(history)
    assert set(ckpt["rng"][0]) >= {"torch", "loader", "numpy", "python"}
    assert torch.equal(ckpt["modules"]["net"]["0.weight"], trainer.modules["net"][0].weight)

    saved = weights(tmp_path)
    assert set(saved) == {f"net.{k}" for k in trainer.modules["net"].state_dict()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "history.json"]  # nothing else
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_history_load_errors(tmp_path):
    with pytest.raises(CapsuleError, match="no training history"):
        History.load(tmp_path)
    (tmp_path / "history.json").write_text("{not json")
    with pytest.raises(CapsuleError, match="unreadable"):
        History.load(tmp_path)


# --------------------------------------------------------------------------- exact resume


@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [0, 1])
def test_resume_after_interrupt_between_epochs_is_exact(tmp_path, num_workers):
    cfg = config(num_workers=num_workers)
    reference = Trainer(RegressionTask(), cfg, tmp_path / "ref").fit()

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(RegressionTask(), cfg, run, on_epoch_end=stop_after(2)).fit()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2

    task = RegressionTask()
    resumed = Trainer(task, cfg, run).fit(resume=True)
    assert task.steps[0] == 10  # continued at epoch 3's first global step
    assert_same_weights(weights(run), weights(tmp_path / "ref"))
    assert without_seconds(resumed) == without_seconds(reference)
    assert without_seconds(History.load(run)) == without_seconds(reference)


def test_dataloader_workers_draw_different_numpy_noise(tmp_path):
    class NoiseItems(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return torch.tensor([np.random.rand()])

    class Record(RegressionTask):
        seen: list[float] = []

        def train_dataset(self):
            return NoiseItems()

        def training_step(self, modules, optimizers, batch, step):
            self.seen.extend(batch.flatten().tolist())
            return {}

    task = Record()
    Trainer(task, config(epochs=2, batch_size=4, num_workers=2), tmp_path).fit()
    # Forked workers inherit one numpy state; unseeded they would repeat each other's noise.
    assert len(task.seen) == 32 and len(set(task.seen)) == 32


def test_gan_resume_mid_epoch_is_exact(tmp_path):
    # 30 samples / batch 8 = 4 steps per epoch; checkpoints after epochs 2, 4, 5.
    cfg = config(epochs=5, checkpoint_every=2, lr=0.01)
    ref_task = GanTask()
    reference = Trainer(ref_task, cfg, tmp_path / "ref").fit()

    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Trainer(GanTask(interrupt_at_step=13), cfg, run).fit()  # dies inside epoch 4
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2

    task = GanTask()
    resumed = Trainer(task, cfg, run).fit()
    assert task.logged[0][0] == 8  # epoch 3 redone from its first step
    assert task.gen_updates == ref_task.gen_updates
    assert task.scheduler.get_last_lr() == ref_task.scheduler.get_last_lr()
    assert_same_weights(weights(run), weights(tmp_path / "ref"))
    assert sorted(k.split(".")[0] for k in weights(run)) == ["critic"] * 4 + ["gen"] * 2
    assert without_seconds(resumed) == without_seconds(reference)


def test_gan_metrics_are_means_over_the_steps_that_report_them(tmp_path):
    task = GanTask(ratio=3)
    history = Trainer(task, config(epochs=2), tmp_path).fit()
    for epoch, rec in zip((1, 2), history):
        steps = [out for step, out in task.logged if (epoch - 1) * 4 <= step < epoch * 4]
        g = [o["g_loss"] for o in steps if "g_loss" in o]
        d = [o["d_loss"] for o in steps]
        assert rec["d_loss"] == pytest.approx(np.mean(d))
        assert rec["g_loss"] == pytest.approx(np.mean(g))
    assert len([o for _, o in task.logged if "g_loss" in o]) == 8 // 3


def test_more_epochs_continue_a_finished_run_exactly(tmp_path):
    Trainer(RegressionTask(), config(epochs=4), tmp_path / "ref").fit()
    run = tmp_path / "run"
    Trainer(RegressionTask(), config(epochs=2), run).fit()

    again = RegressionTask()
    history = Trainer(again, config(epochs=2), run).fit()
    assert again.steps == [] and len(history) == 2  # finished: nothing retrained

    Trainer(RegressionTask(), config(epochs=4), run).fit()
    assert_same_weights(weights(run), weights(tmp_path / "ref"))


def test_resume_false_starts_over(tmp_path):
    Trainer(RegressionTask(), config(epochs=2), tmp_path / "ref").fit()
    run = tmp_path / "run"
    Trainer(RegressionTask(), config(epochs=3, seed=99), run).fit()

    task = RegressionTask()
    trainer = Trainer(task, config(epochs=2, checkpoint_every=0), run)
    history = trainer.fit(resume=False)
    assert task.steps[0] == 0 and len(history) == 2
    assert not (run / "checkpoint.pt").exists()  # the stale checkpoint must not be resumed later
    trained = {f"{name}.{k}": v for name, m in trainer.modules.items() for k, v in m.state_dict().items()}
    assert_same_weights(trained, weights(tmp_path / "ref"))


def test_checkpoint_from_another_task_is_refused(tmp_path):
    Trainer(RegressionTask(width=8), config(epochs=1), tmp_path).fit()
    with pytest.raises(CapsuleError, match="does not fit"):
        Trainer(RegressionTask(width=5), config(epochs=2), tmp_path).fit()
    with pytest.raises(CapsuleError, match="holds modules"):
        Trainer(GanTask(), config(epochs=2), tmp_path).fit()
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(CapsuleError, match="unreadable"):
        Trainer(RegressionTask(), config(epochs=2), tmp_path).fit()


# --------------------------------------------------------------------------- hooks and options


def test_on_sample_runs_on_schedule_in_eval_mode(tmp_path):
    calls = []

    class Sampling(RegressionTask):
        def on_sample(self, modules, epoch, out_dir):
            assert out_dir.is_dir() and not torch.is_grad_enabled() and not modules["net"].training
            (out_dir / "sample.txt").write_text(str(epoch))
            calls.append((epoch, out_dir))
            return {"sample_mean": float(modules["net"](torch.ones(1, 4)))}

    history = Trainer(Sampling(), config(epochs=5, sample_every=2), tmp_path).fit()
    assert calls == [(2, tmp_path / "samples" / "epoch_0002"), (4, tmp_path / "samples" / "epoch_0004")]
    assert (tmp_path / "samples" / "epoch_0004" / "sample.txt").read_text() == "4"
    assert ["sample_mean" in r for r in history] == [False, True, False, True, False]


def test_validation_metrics_use_the_trained_model(tmp_path):
    trainer = Trainer(RegressionTask(with_val=True), config(epochs=2, batch_size=4), tmp_path)
    history = trainer.fit()
    assert set(history[-1]) == {"epoch", "loss", "val_loss", "seconds"}
    assert all(m.training for m in trainer.modules.values())  # eval mode was undone

    # Recompute the last validation loss from the saved weights: mean over batches of 4.
    net = RegressionTask().build("cpu")["net"]
    net.load_state_dict(trainer.modules["net"].state_dict())
    net.eval()
    np.random.seed(0)  # the val set's input noise is tiny; compare with a loose tolerance
    ds = NoisyRegression(n=12, seed=1)
    with torch.no_grad():
        losses = [torch.nn.functional.mse_loss(net(ds.x[i : i + 4]), ds.y[i : i + 4]).item() for i in (0, 4, 8)]
    assert history[-1]["val_loss"] == pytest.approx(np.mean(losses), rel=0.05)


def test_grad_clip_bounds_every_update(tmp_path):
    class BigSteps(RegressionTask):
        def configure_optimizers(self, modules, config):
            return {"net": torch.optim.SGD(modules["net"].parameters(), lr=1.0)}

    def one_step_delta(clip, folder):
        task = BigSteps()
        trainer = Trainer(task, config(epochs=1, max_steps_per_epoch=1, grad_clip=clip), folder)
        before = torch.cat([p.detach().flatten() for p in task.build("cpu")["net"].parameters()])
        trainer.fit()
        after = torch.cat([p.detach().flatten() for p in trainer.modules["net"].parameters()])
        return float((after - before).norm())

    # seeded as fit() seeds before build(), so `before` is the trained model's start
    torch.manual_seed(11)
    assert one_step_delta(0.01, tmp_path / "a") <= 0.01 * (1 + 1e-5)
    torch.manual_seed(11)
    assert one_step_delta(None, tmp_path / "b") > 0.05


def test_max_steps_per_epoch(tmp_path):
    task = RegressionTask()
    Trainer(task, config(epochs=3, max_steps_per_epoch=2), tmp_path).fit()
    assert task.steps == list(range(6))


def test_bad_task_outputs_are_capsule_errors(tmp_path):
    class NoMetrics(RegressionTask):
        def training_step(self, modules, optimizers, batch, step):
            return 3.0

    with pytest.raises(CapsuleError, match="dict of metric"):
        Trainer(NoMetrics(), config(epochs=1), tmp_path / "a").fit()

    class Empty(RegressionTask):
        def train_dataset(self):
            return torch.utils.data.TensorDataset(torch.zeros(3, 4), torch.zeros(3, 1))

    with pytest.raises(CapsuleError, match="no batches"):
        Trainer(Empty(), config(epochs=1, drop_last=True), tmp_path / "b").fit()

    class Dotted(RegressionTask):
        def build(self, device):
            return {"a.b": torch.nn.Linear(1, 1)}

    with pytest.raises(CapsuleError, match="without dots"):
        Trainer(Dotted(), config(epochs=1), tmp_path / "c").fit()


def test_progress_bars_show_when_enabled(tmp_path, capsys):
    Trainer(RegressionTask(), config(epochs=1, progress=True), tmp_path / "on").fit()
    assert "training" in capsys.readouterr().err
    Trainer(RegressionTask(), config(epochs=1, progress=False), tmp_path / "off").fit()
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- weights files


def test_save_and_load_modules_round_trip(tmp_path):
    trainer = Trainer(GanTask(), config(epochs=1), tmp_path)
    trainer.fit()
    save_modules(tmp_path / "gan.safetensors", trainer.modules)
    fresh = GanTask().build("cpu")
    for p in fresh["gen"].parameters():
        torch.nn.init.zeros_(p)
    load_modules(tmp_path / "gan.safetensors", fresh)
    for name in ("gen", "critic"):
        for (k, a), b in zip(fresh[name].state_dict().items(), trainer.modules[name].state_dict().values()):
            assert torch.equal(a, b), f"{name}.{k}"

    # tied weights (shared storage) are saved too
    tied = torch.nn.Sequential(torch.nn.Linear(3, 3, bias=False), torch.nn.Linear(3, 3, bias=False))
    tied[1].weight = tied[0].weight
    save_modules(tmp_path / "tied.safetensors", {"tied": tied})
    assert torch.equal(load_file(str(tmp_path / "tied.safetensors"))["tied.1.weight"], tied[0].weight.detach())


def test_load_modules_errors(tmp_path):
    save_modules(tmp_path / "w.safetensors", {"gen": torch.nn.Linear(3, 2)})
    with pytest.raises(CapsuleError, match="no module 'critic'"):
        load_modules(tmp_path / "w.safetensors", {"critic": torch.nn.Linear(3, 2)})
    with pytest.raises(CapsuleError, match="do not fit"):
        load_modules(tmp_path / "w.safetensors", {"gen": torch.nn.Linear(4, 2)})
    with pytest.raises(CapsuleError, match="no weights file"):
        load_modules(tmp_path / "missing.safetensors", {"gen": torch.nn.Linear(3, 2)})
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CapsuleError, match="unreadable"):
        load_modules(tmp_path / "bad.safetensors", {"gen": torch.nn.Linear(3, 2)})


# --------------------------------------------------------------------------- distributed


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO / "tests" / "ddp_train_script.py"),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["hash"] == ranks[1]["hash"]  # gradients were synchronised
    assert ranks[0]["gan_hash"] == ranks[1]["gan_hash"]

    # DistributedSampler: each epoch the ranks see disjoint halves of the data.
    for epoch in ("1", "2"):
        a, b = set(ranks[0]["seen"][epoch]), set(ranks[1]["seen"][epoch])
        assert not a & b and a | b == set(range(32))
    assert ranks[0]["seen"]["1"] != ranks[0]["seen"]["2"]  # reshuffled per epoch

    history = History.load(tmp_path / "run")
    assert len(history) == 6 and history[-1]["loss"] < 0.5 * history[0]["loss"]
    for rec in history:  # the recorded loss is the mean over both ranks
        local = [r["local_loss"][str(rec["epoch"])] for r in ranks]
        assert rec["loss"] == pytest.approx(sum(local) / 2, rel=1e-6)
    assert len(History.load(tmp_path / "gan")) == 2

    # Only rank 0 wrote files; the checkpoint holds the synchronised model.
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    net.load_state_dict(ckpt["modules"]["net"])
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])  # per-rank RNG streams
