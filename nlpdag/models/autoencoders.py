"""The PyTorch auto-encoders of the `reduce` and `topics` stages.

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

Every model's `loss` returns (objective, reconstruction MSE per element) and `batch_loss` hands both to
the shared Trainer (nlpdag/training/trainer.py), which optimises the first and records the second
(train: over the epoch's batches, in training mode, so with noise or sampling; validation: after the
epoch, in eval mode). `train` runs it with Adam over shuffled mini-batches (`Rows`, seeded), early
stopping on the validation objective and progress lines; `pretrain_stacked` trains a stacked one
greedily layer by layer.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from nlpdag.training.callbacks import EarlyStopping
from nlpdag.training.progress import Progress
from nlpdag.training.trainer import Trainer, TrainerConfig

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}
Data = torch.Tensor | sp.csr_matrix


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


class _BatchLoss:
    def batch_loss(self, x) -> tuple[torch.Tensor, dict]:
        objective, mse = self.loss(x)
        return objective, {"loss": mse.detach() * len(x), "n": len(x)}


class AutoEncoder(_BatchLoss, nn.Module):
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


class VariationalAutoEncoder(_BatchLoss, nn.Module):
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


class TopicAutoEncoder(_BatchLoss, nn.Module):
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


class Rows:
    """The Trainer's mini-batches of rows: a permutation per epoch from a generator seeded once (dense
    data is shuffled once per epoch so that every batch is a contiguous slice)."""

    def __init__(self, data: Data, batch_size: int, seed: int):
        self.data, self.batch_size = data, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(self.data.shape[0] / self.batch_size)

    def epoch_batches(self, epoch: int, device: torch.device, shard: bool = False
                      ) -> Iterator[tuple[torch.Tensor | SparseRows, float]]:
        if isinstance(self.data, torch.Tensor):
            self.data = self.data.to(device)
        n, bs = self.data.shape[0], self.batch_size
        order = torch.randperm(n, generator=self.generator)
        if isinstance(self.data, torch.Tensor):
            shuffled = self.data[order.to(device)]
            for lo in range(0, n, bs):
                yield shuffled[lo:lo + bs], 1.0
        else:
            for lo in range(0, n, bs):
                yield take(self.data, order[lo:lo + bs].numpy()), 1.0


class ProjectTopics:
    """Projected gradient: the topic auto-encoder's decoder back onto its constraints after every step."""

    def __init__(self, model: "TopicAutoEncoder"):
        self.model = model

    def on_batch_end(self, trainer: Trainer) -> None:
        self.model.project()


def train(model: nn.Module, train_data: Data, val_data: Data | None, config: TrainerConfig,
          callbacks: Sequence[object] = ()) -> Trainer:
    """Fit with the standard callbacks: early stopping on the validation objective when there is
    validation data and a patience, then `callbacks`, then progress lines when verbose."""
    hooks = [EarlyStopping(config.patience, "val_objective")] if val_data is not None and config.patience else []
    hooks += list(callbacks) + ([Progress()] if config.verbose else [])
    trainer = Trainer(model, config, hooks)

    on_device = {}

    def validate(net: nn.Module) -> dict:
        if not on_device:  # moved once, on the first call (the Trainer has chosen the device by then)
            on_device["val"] = val_data.to(trainer.device) if isinstance(val_data, torch.Tensor) else val_data
        objective, mse = evaluate(net, on_device["val"], device=trainer.device)
        return {"val_loss": mse, "val_objective": objective}

    return trainer.fit(Rows(train_data, config.batch_size, config.seed or 0), None if val_data is None else validate)


def pretrain_stacked(model: AutoEncoder, train_data: torch.Tensor, val_data: torch.Tensor,
                     config: TrainerConfig, epochs: int | None = None) -> list[Trainer]:
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
        layer_config = replace(config, name=f"{config.name} layer {k + 1}/{len(sizes) - 1}",
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
