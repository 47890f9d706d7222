"""The PyTorch auto-encoders of the `reduce` and `topics` stages, and the small trainer they share.

Models (x is a batch of B rows of n_in features; every model has `encode`, `forward` and `loss`):
- `AutoEncoder`: encoder Linear+activation for each step of [n_in, *hidden, dim], decoder the mirror
  image with a linear last layer. With no `hidden` it is the plain one-code-layer auto-encoder; with
  `noise` it is denoising (corruption in training mode only); with `hidden` it is stacked
  (`pretrain_stacked` trains it greedily layer by layer before end-to-end fine-tuning).
- `VariationalAutoEncoder`: Gaussian code q(z|x) = N(mu, diag exp(logvar)) by the reparameterisation
  trick, decoder Linear(activation(z)); loss = squared error summed over features + beta * KL(q || N(0, I)),
  averaged over rows. Its reduced vector (`encode`) is the code mean mu.
- `TopicAutoEncoder`: ReLU code (non-negative topic weights) and a non-negative decoder matrix
  without bias, x_hat = code @ W, NMF's form, so each code unit is a topic read off its row of W.
  W is kept non-negative by projection: after every Adam step it is clamped at zero (exact zeros, as
  in NMF) and its rows rescaled to unit length (the `on_batch_end` callback `ProjectTopics`). Sparse
  inputs (`SparseRows`) are never densified: products with them are sparse, and the squared error is
  expanded so that only the non-zeros enter it.

`Trainer` runs Adam over shuffled mini-batches (seeded) and calls callbacks on `on_batch_end`,
`on_epoch_end` and `on_train_end`: `Progress` prints a line per epoch, `EarlyStopping` stops when the
validation objective has not improved for `patience` epochs and restores the best weights.
Every model's `loss` returns (objective, reconstruction MSE per element); the trainer optimises the
first and records the second (train: the mean over the epoch's batches, in training mode, so with
noise or sampling; validation: after the epoch, in eval mode).
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from nlpdag.errors import StageError

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}
Data = torch.Tensor | sp.csr_matrix


def resolve_device(device: str, param: str) -> torch.device:
    """auto: CUDA when available; cuda without CUDA is a StageError naming `param`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise StageError(f"{param}=cuda but CUDA is not available on this machine (set {param} to auto or cpu)")
    return torch.device(device)


@dataclass
class ModelConfig:
    n_in: int
    dim: int                              # code size
    hidden: tuple[int, ...] = ()          # stacked: layer sizes between input and code
    activation: str = "tanh"
    output_activation: bool = False       # activation after the decoder's last layer too (inner stacked layers)
    noise: str | None = None              # None | masking | gaussian (denoising)
    noise_level: float = 0.0
    beta: float = 1.0                     # VAE: weight of the KL term


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 1e-3
    patience: int | None = 3              # None: no early stopping
    seed: int = 0
    device: str = "cpu"
    name: str = "model"
    verbose: bool = False


def mlp(sizes: Sequence[int], activation: str, last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or last_activation:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


class Noise(nn.Module):
    """Corruption for denoising, applied in training mode only: masking zeroes each input with
    probability `level` (no rescaling); gaussian adds N(0, level^2)."""

    def __init__(self, kind: str, level: float):
        super().__init__()
        self.kind, self.level = kind, level

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.level == 0:
            return x
        if self.kind == "masking":
            return x * (torch.rand_like(x) >= self.level)
        return x + self.level * torch.randn_like(x)


class AutoEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        sizes = [config.n_in, *config.hidden, config.dim]
        self.noise = Noise(config.noise, config.noise_level) if config.noise else nn.Identity()
        self.encoder = mlp(sizes, config.activation, last_activation=True)
        self.decoder = mlp(sizes[::-1], config.activation, last_activation=config.output_activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, n_in) -> (B, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encoder(self.noise(x))  # (B, dim)
        return self.decoder(code), code  # (B, n_in), (B, dim)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mse = F.mse_loss(self(x)[0], x)  # the clean x is the target, also when denoising
        return mse, mse


class VariationalAutoEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        width = config.hidden[-1] if config.hidden else config.n_in
        self.trunk = mlp([config.n_in, *config.hidden], config.activation, True) if config.hidden else nn.Identity()
        self.mu = nn.Linear(width, config.dim)
        self.logvar = nn.Linear(width, config.dim)
        self.decoder = nn.Sequential(ACTIVATIONS[config.activation](),
                                     mlp([config.dim, *config.hidden[::-1], config.n_in], config.activation, False))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.mu(self.trunk(x))  # (B, n_in) -> (B, dim): the code mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        mu, logvar = self.mu(h), self.logvar(h)  # (B, dim) each
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self.decoder(z), mu, logvar  # (B, n_in), (B, dim), (B, dim)

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, exp logvar) || N(0, I)) per row: (B, dim) -> (B,), never negative."""
        return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum(dim=1)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon, mu, logvar = self(x)
        sq = (recon - x).square().sum(dim=1)  # (B,)
        return (sq + self.config.beta * self.kl(mu, logvar)).mean(), sq.mean() / x.shape[1]


class _SparseMatmul(torch.autograd.Function):
    """x @ w for a constant sparse CSR x, with the gradient of w as x' @ grad (x' given, also CSR):
    two sparse-dense products, where an EmbeddingBag's backward sorts every index."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, x: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        ctx.xt = xt
        return x @ w

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return ctx.xt @ grad, None, None


@dataclass
class SparseRows:
    """A batch of B rows of a sparse (B, V) matrix: `x` CSR (B, V) and its transpose `xt` CSR (V, B).
    What `take` makes of a SciPy CSR matrix, so that wide sparse inputs (TF-IDF) are never densified."""
    x: torch.Tensor
    xt: torch.Tensor

    @classmethod
    def from_scipy(cls, rows: sp.csr_matrix) -> "SparseRows":
        def csr(m: sp.csr_matrix) -> torch.Tensor:
            return torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                           torch.from_numpy(m.indices.astype(np.int64)),
                                           torch.from_numpy(m.data.astype(np.float32)), m.shape,
                                           check_invariants=False)  # SciPy made them valid
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return cls(csr(rows), csr(rows.T.tocsr()))

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.x.shape)

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> "SparseRows":
        return SparseRows(self.x.to(device), self.xt.to(device))

    def matmul(self, w: torch.Tensor) -> torch.Tensor:
        return _SparseMatmul.apply(w, self.x, self.xt)  # (B, V) @ (V, n) -> (B, n)

    def square_sum(self) -> torch.Tensor:
        return self.x.values().square().sum()

    def dense(self) -> torch.Tensor:
        return self.x.to_dense()


class TopicAutoEncoder(nn.Module):
    """code = relu(x E + b) (B, K), x_hat = code @ W with W (K, V) non-negative, rows of unit length.

    `init` (K, V): the topics to start from (the stage passes K random training documents, as k-means
    starts from K points); None: uniform noise. The encoder E starts as W' (tied), so that a document's
    first code is its similarity to each topic; afterwards E and W are trained apart. `project` puts W
    back on its constraints after each optimiser step (clamp at zero, rescale rows to unit length): the
    scale of a topic lives in the codes, which ReLU lets be exactly zero.
    """

    def __init__(self, n_words: int, n_topics: int, init: torch.Tensor | None = None):
        super().__init__()
        start = torch.rand(n_topics, n_words) if init is None else init.float().clamp(min=0) + 1e-3 * torch.rand(
            n_topics, n_words)  # the noise keeps every word in reach of every topic
        self.topics = nn.Parameter(F.normalize(start, dim=1))  # (K, V)
        self.encoder = nn.Parameter(self.topics.detach().T.clone())  # (V, K)
        self.bias = nn.Parameter(torch.zeros(n_topics))

    @torch.no_grad()
    def project(self) -> None:
        self.topics.clamp_(min=0.0)
        self.topics.div_(self.topics.norm(dim=1, keepdim=True).clamp(min=1e-12))

    def encode(self, x: torch.Tensor | SparseRows) -> torch.Tensor:
        h = x.matmul(self.encoder) if isinstance(x, SparseRows) else x @ self.encoder  # (B, V) @ (V, K)
        return F.relu(h + self.bias)  # (B, K), non-negative

    def forward(self, x: torch.Tensor | SparseRows) -> tuple[torch.Tensor, torch.Tensor]:
        code = self.encode(x)
        return code @ self.topics, code  # (B, K) @ (K, V) -> (B, V)

    def loss(self, x: torch.Tensor | SparseRows) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(x, SparseRows):
            mse = F.mse_loss(self(x)[0], x)
            return mse, mse
        # ||X - H W||^2 = ||X||^2 - 2 sum(H * (X W')) + sum((H'H) * (W W')): the dense squared error
        # without building the (B, V) reconstruction. X E and X W' in one sparse product.
        k = self.bias.shape[0]
        both = x.matmul(torch.cat([self.encoder, self.topics.T], dim=1))  # (B, 2K)
        code, xw = F.relu(both[:, :k] + self.bias), both[:, k:]  # (B, K) each
        sq = x.square_sum() - 2 * (code * xw).sum() + ((code.T @ code) * (self.topics @ self.topics.T)).sum()
        mse = sq / (x.shape[0] * x.shape[1])
        return mse, mse


# ---------------------------------------------------------------------------------------- training

def take(data: Data, index: torch.Tensor | np.ndarray | slice) -> torch.Tensor | SparseRows:
    """Rows of a dense tensor, or of a SciPy CSR matrix as `SparseRows`."""
    if isinstance(data, torch.Tensor):
        return data[index]
    return SparseRows.from_scipy(data[index if isinstance(index, slice) else np.asarray(index)])


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, batch_size: int = 4096, device: torch.device | str = "cpu"
             ) -> tuple[float, float]:
    """(objective, reconstruction MSE per element), averaged over all rows, in eval mode."""
    was_training = model.training
    model.eval()
    n, objective, mse = data.shape[0], 0.0, 0.0
    for lo in range(0, n, batch_size):
        x = take(data, slice(lo, lo + batch_size)).to(device)
        o, m = model.loss(x)
        objective += float(o) * len(x)
        mse += float(m) * len(x)
    model.train(was_training)
    return objective / n, mse / n


@torch.no_grad()
def transform(model: nn.Module, data: Data, batch_size: int = 4096, device: torch.device | str = "cpu",
              reconstruct: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(codes, reconstructions or None) of every row, in eval mode, as float32 NumPy arrays."""
    model.eval()
    codes, recons = [], []
    for lo in range(0, data.shape[0], batch_size):
        x = take(data, slice(lo, lo + batch_size)).to(device)
        codes.append(model.encode(x).cpu())
        if reconstruct:
            recons.append(model(x)[0].cpu())
    return torch.cat(codes).numpy(), torch.cat(recons).numpy() if reconstruct else None


class Trainer:
    def __init__(self, model: nn.Module, config: TrainConfig, callbacks: Sequence[object] = ()):
        self.model, self.config = model, config
        self.callbacks = list(callbacks)
        self.history: list[dict] = []  # per epoch: epoch, train_loss, val_loss, val_objective
        self.stop = False

    def add_callback(self, callback: object) -> None:
        self.callbacks.append(callback)

    def trigger(self, event: str) -> None:
        for callback in self.callbacks:
            hook = getattr(callback, event, None)
            if hook is not None:
                hook(self)

    def fit(self, train: Data, val: Data | None = None) -> "Trainer":
        cfg, model = self.config, self.model
        device = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)  # noise and VAE sampling draw from the global generator
        generator = torch.Generator().manual_seed(cfg.seed)
        model.to(device)
        if isinstance(train, torch.Tensor):
            train = train.to(device)
        if isinstance(val, torch.Tensor):
            val = val.to(device)
        # Fused Adam: one kernel for all parameters (the same update, less per-step overhead).
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, fused=True)
        n = train.shape[0]
        for epoch in range(1, cfg.epochs + 1):
            self.epoch, start = epoch, time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=generator)
            # Dense data is shuffled once per epoch so that every batch is a contiguous slice.
            shuffled = train[order.to(device)] if isinstance(train, torch.Tensor) else None
            losses = []
            for lo in range(0, n, cfg.batch_size):
                if shuffled is not None:
                    x = shuffled[lo:lo + cfg.batch_size]
                else:
                    x = take(train, order[lo:lo + cfg.batch_size].numpy()).to(device)
                objective, mse = model.loss(x)
                self.optimizer.zero_grad(set_to_none=True)
                objective.backward()
                self.optimizer.step()
                losses.append(mse.detach() * len(x))
                self.trigger("on_batch_end")
            total = torch.stack(losses).sum()
            self.train_loss = float(total) / n
            self.val_objective, self.val_loss = (evaluate(model, val, device=device) if val is not None
                                                 else (math.nan, math.nan))
            self.seconds = time.perf_counter() - start
            self.history.append({"epoch": epoch, "train_loss": self.train_loss, "val_loss": self.val_loss,
                                 "val_objective": self.val_objective})
            self.trigger("on_epoch_end")
            if self.stop:
                break
        self.trigger("on_train_end")
        model.eval()
        return self


class Progress:
    def on_epoch_end(self, trainer: Trainer) -> None:
        c = trainer.config
        print(f"{c.name}: epoch {trainer.epoch}/{c.epochs}  train {trainer.train_loss:.5f}  "
              f"val {trainer.val_loss:.5f}  {trainer.seconds:.2f} s", flush=True)


class EarlyStopping:
    """Stop after `patience` epochs without an improvement of the validation objective; at the end,
    load the weights of the best epoch."""

    def __init__(self, patience: int):
        self.patience = patience
        self.best, self.best_epoch, self.best_state, self.wait = math.inf, 0, None, 0

    def on_epoch_end(self, trainer: Trainer) -> None:
        if trainer.val_objective < self.best:
            self.best, self.best_epoch, self.wait = trainer.val_objective, trainer.epoch, 0
            self.best_state = copy.deepcopy(trainer.model.state_dict())
        else:
            self.wait += 1
            trainer.stop = self.wait >= self.patience

    def on_train_end(self, trainer: Trainer) -> None:
        if self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)


class ProjectTopics:
    """Projected gradient: the topic auto-encoder's decoder back onto its constraints after every step."""

    def __init__(self, model: "TopicAutoEncoder"):
        self.model = model

    def on_batch_end(self, trainer: Trainer) -> None:
        self.model.project()


def train(model: nn.Module, train_data: Data, val_data: Data | None, config: TrainConfig,
          callbacks: Sequence[object] = ()) -> Trainer:
    """Fit with the standard callbacks: early stopping when there is validation data and a patience,
    progress lines when verbose."""
    extra = list(callbacks)
    if val_data is not None and config.patience:
        extra.append(EarlyStopping(config.patience))
    if config.verbose:
        extra.append(Progress())
    return Trainer(model, config, extra).fit(train_data, val_data)


def pretrain_stacked(model: AutoEncoder, train_data: torch.Tensor, val_data: torch.Tensor,
                     config: TrainConfig, epochs: int | None = None) -> list[Trainer]:
    """Greedy layer-wise pre-training: the k-th one-layer auto-encoder learns to reconstruct the codes
    of the (k-1)-th, for `epochs` (default config.epochs); its encoder and decoder layers are copied
    into the stack (decoder in mirror order)."""
    sizes = [model.config.n_in, *model.config.hidden, model.config.dim]
    enc, dec = linears(model.encoder), linears(model.decoder)
    trainers = []
    for k in range(len(sizes) - 1):
        torch.manual_seed(config.seed + k)
        layer = AutoEncoder(ModelConfig(sizes[k], sizes[k + 1], activation=model.config.activation,
                                        output_activation=k > 0))
        layer_config = replace(config, name=f"{config.name} pretrain {k + 1}/{len(sizes) - 1}",
                               epochs=epochs or config.epochs)
        trainers.append(train(layer, train_data, val_data, layer_config))
        with torch.no_grad():
            for src, dst in ((linears(layer.encoder)[0], enc[k]), (linears(layer.decoder)[0], dec[-1 - k])):
                dst.weight.copy_(src.weight)
                dst.bias.copy_(src.bias)
            device = next(layer.parameters()).device
            train_data = layer.encode(train_data.to(device))  # (N, sizes[k + 1])
            val_data = layer.encode(val_data.to(device))
    return trainers
