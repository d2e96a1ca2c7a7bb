"""The InnerTrainer: trains the face-parsing model in rounds, with injected augmentation and sampling.

One training step::

    idx    = sampler.draw(batch)                       which images  (data/sampling.py)
    x, y   = policy(images[idx], labels[idx])          augmentation  (augment/)
    logits = model(normalise(x))                       Face Transformer (models/)
    loss   = CE | REINFORCE(reward_fn)                 losses/, rewards.py

The data sit on the training device as uint8 tensors; augmentation runs there, batched. The
learning rate follows warm-up + cosine within each phase: ``ce`` and ``reinforce`` have one phase,
``ce_then_reinforce`` trains with cross-entropy for ``tune_from`` of the steps and then tunes with
REINFORCE at ``tune_lr_factor`` times the learning rate (Pinto et al. tune from an MLE model).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .augment import NoAugment
from .config import TrainConfig
from .data import FaceParsingSet, load
from .data.folders import cache_root
from .data.sampling import MixtureSampler, Sampler
from .device import autocast, pick_device, prepare
from .errors import UserError
from .files import atomic_path
from .graphs import CapturedStep, plain_lr, set_lr, tensor_lr
from .losses import reinforce_loss
from .metrics import ConfusionAccumulator
from .models import build_model, default_image_size
from .rewards import check_reward_sum, get_reward, without_ignored

Policy = Callable[..., tuple[torch.Tensor, torch.Tensor]]
# Eager cross-entropy steps before one is recorded as a CUDA graph: the first compiles the model and makes
# AdamW's moments, the second runs in the steady state that the graph then repeats.
GRAPH_WARMUP = 2


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf; the optimiser step was not taken."""


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1], the model's input range."""
    return images.float().mul_(1 / 127.5).sub_(1.0)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: no weight decay on 1-d parameters (norms, biases) and on the token embeddings."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(("pos_embed", "cls_token")) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(step: int, steps: int, warmup: float) -> float:
    """Learning-rate factor at ``step`` of a phase of ``steps``: linear warm-up, then cosine to zero."""
    warm = max(1, round(warmup * steps))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


class InnerTrainer:
    """Trains one face-parsing model for ``config.steps`` steps, in rounds the caller decides.

    ``train_round(policy, sampler, steps)`` runs steps with an augmentation policy and a sampler;
    ``evaluate(split)`` scores the model on a split with the pooled-confusion protocol and the mean
    reward. ``state_dict``/``load_state_dict`` capture everything (model, optimiser, step, sampler,
    RNGs), so a restored trainer continues bit-identically on CPU.
    """

    def __init__(self, config: TrainConfig, *, data: dict[str, FaceParsingSet] | None = None,
                 splits: tuple[str, ...] = ("train", "val", "test")):
        self.config = config
        self.device = pick_device(config.device)
        self.graphed = self.device.type == "cuda" if config.cuda_graph is None else config.cuda_graph
        if self.graphed and self.device.type != "cuda":  # before any data are loaded
            raise UserError(f"cuda_graph needs a CUDA device, not {self.device}")
        prepare(self.device)
        torch.manual_seed(config.seed)  # model initialisation and dropout
        self.data = {s: self._to_device(data[s] if data and s in data else self._load(s)) for s in splits}
        train = self.data["train"]
        self.scheme = train.scheme
        self.num_classes = train.scheme.num_classes
        # F.cross_entropy's own "no ignore id" default
        self.ce_ignore_index = -100 if train.scheme.ignore_index is None else train.scheme.ignore_index
        self.model = build_model(config.model, num_classes=self.num_classes, head=config.head,
                                 image_size=self.image_size, weights=config.encoder_weights).to(self.device)
        compiled = self.device.type == "cuda" if config.compile is None else config.compile
        self._forward = torch.compile(self.model) if compiled else self.model
        # fused AdamW: one kernel for all parameters, and it skips a step on device when found_inf is set
        self.optimizer = torch.optim.AdamW(param_groups(self.model, config.weight_decay), lr=config.lr,
                                           betas=(0.9, 0.999), fused=True)
        self._params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self._graph: CapturedStep | None = None
        self._eager_steps = 0  # cross-entropy steps run eagerly since the graph was last dropped
        self.reward_fn = get_reward(config.reward, **config.reward_kw)
        has_split = hasattr(self.reward_fn, "class_terms")
        if config.loss != "ce" and config.credit == "class" and not has_split:
            raise UserError(f"reward {self.reward_fn.__name__} has no per-class split (class_terms) for REINFORCE's "
                            "credit='class'; use credit='image' or register one with register_reward(class_terms=...)")
        # the credit REINFORCE uses: "auto" takes the per-class credit wherever the reward allows it
        self.credit = ("class" if has_split else "image") if config.credit == "auto" else config.credit
        self.sampler = MixtureSampler(train.labels, self.num_classes)
        # The sampler and augmentation decide on the CPU (which images, which ops, which samples), so that
        # nothing in a step waits for the GPU; REINFORCE samples its label maps on the data's device.
        self.sample_generator = torch.Generator().manual_seed(config.seed + 1)
        self.augment_generator = torch.Generator().manual_seed(config.seed + 2)
        # REINFORCE's label maps draw from their own stream, so runs that differ only in the loss see the
        # same augmentation and batches (paired comparisons).
        self.reinforce_generator = torch.Generator(device=self.device).manual_seed(config.seed + 3)
        self.step = 0

    # ------------------------------------------------------------------ data
    def _load(self, split: str) -> FaceParsingSet:
        return load(self.config.data, split, size=self.image_size)

    @property
    def image_size(self) -> int:
        # default_image_size also rejects an unknown preset before any data are loaded for it
        return self.config.image_size or default_image_size(self.config.model)

    def _to_device(self, ds: FaceParsingSet) -> FaceParsingSet:
        early = None if ds.early is None else self._to_device(ds.early)
        return FaceParsingSet(images=ds.images.to(self.device), labels=ds.labels.to(self.device, torch.uint8),
                              scheme=ds.scheme, names=ds.names, early=early, early_until=ds.early_until)

    def train_set(self, step: int) -> FaceParsingSet:
        """The images training draws from at ``step``: a drifting stream's ``early`` set until its switch, which falls
        at the same fraction of every run (``FaceParsingSet.early_until``)."""
        train = self.data["train"]
        if train.early is not None and step < round(train.early_until * self.config.steps):
            return train.early
        return train

    # ------------------------------------------------------------------ schedule
    @property
    def switch_step(self) -> int:
        """First step of the REINFORCE phase (``config.steps`` when there is none)."""
        c = self.config
        return {"ce": c.steps, "reinforce": 0, "ce_then_reinforce": round(c.tune_from * c.steps)}[c.loss]

    def phase(self, step: int | None = None) -> str:
        """``"ce"`` or ``"reinforce"``: the loss used at ``step`` (default: the next step)."""
        return "reinforce" if (self.step if step is None else step) >= self.switch_step else "ce"

    def lr_at(self, step: int) -> float:
        c, switch = self.config, self.switch_step
        if step < switch:
            return c.lr * warmup_cosine(step, switch, c.warmup)
        factor = c.tune_lr_factor if c.loss == "ce_then_reinforce" else 1.0
        return c.lr * factor * warmup_cosine(step - switch, c.steps - switch, c.warmup)

    # ------------------------------------------------------------------ training
    def train_round(self, policy: Policy | None = None, sampler: Sampler | None = None, steps: int = 100,
                    *, on_step: Callable[[dict], None] | None = None) -> dict[str, float]:
        """Train ``steps`` steps; returns means over the round of loss, reward, grad norm, and images/s.

        ``policy`` defaults to ``NoAugment()``, ``sampler`` to the trainer's own ``MixtureSampler``
        (whose coefficients a caller may set). ``on_step`` gets each step's numbers (for progress bars;
        reading them waits for the device, so pass it only where a bar is shown).

        A step never waits for the device: losses and gradient norms add up on it, and the round reads
        them once at its end. A step whose loss or gradient is NaN or inf is not applied (the fused
        optimiser skips it on the device); the round then raises ``NonFiniteLossError`` naming the first
        such step, after the remaining steps have run.
        """
        policy = policy or NoAugment(self.scheme)
        sampler = sampler or self.sampler
        c, device = self.config, self.device
        # sums of loss, grad norm and REINFORCE reward, and the first non-finite step (-1: none), on the device
        totals = torch.zeros(4, device=device)
        totals[3].fill_(-1)  # not `totals[3] = -1`: that copies a pageable CPU scalar, and waits for the GPU
        tuned = 0
        start = time.perf_counter()
        for _ in range(steps):
            idx = sampler.draw(c.batch_size, self.sample_generator)
            idx = idx.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else idx
            train = self.train_set(self.step)
            x, y = policy(train.images[idx], train.labels[idx], generator=self.augment_generator)
            set_lr(self.optimizer, self.lr_at(self.step))
            tuning = self.phase() == "reinforce"
            # REINFORCE samples from the network that is evaluated: dropout off (no BatchNorm in the ViT)
            self.model.train(not tuning or c.policy_dropout)
            if tuning:
                with autocast(device):
                    logits = self._forward(normalise(x))
                loss, info = self.tuning_loss(logits, y.long())
                per_image_ce = info["per_image_ce"].detach()
                grad_norm, bad = self._update(loss)
            else:
                loss, per_image_ce, grad_norm, bad, logits = self._ce(x, y)
                info = {}
            sampler.update(idx, per_image_ce)
            if "reward" in info:  # REINFORCE steps that sample (not the reward_weight=0 control)
                totals[2] += info["reward"]
                tuned += 1
            totals[:2] += torch.stack([loss.detach(), grad_norm])
            totals[3] = torch.where((totals[3] < 0) & bad, float(self.step), totals[3])
            self.step += 1
            if on_step is not None:
                on_step({"step": self.step, "loss": float(loss.detach()), "phase": self.phase(self.step - 1),
                         **{k: float(v) for k, v in info.items() if v.dim() == 0}})
        self.optimizer.__dict__.pop("found_inf", None)  # only this loop's steps are guarded by it
        if steps and not tuned:  # no sampled rewards: the reward of the last batch's greedy prediction
            with torch.no_grad():
                totals[2] = self.reward_fn(*without_ignored(logits.argmax(1), y.long(), self.scheme.ignore_index),
                                           self.num_classes).mean()
                tuned = 1
        loss_sum, grad_sum, reward_sum, bad_step = totals.tolist()  # the round's one host sync
        seconds = time.perf_counter() - start
        if bad_step >= 0:
            bad_step = int(bad_step)
            raise NonFiniteLossError(f"non-finite training loss or gradient at step {bad_step} ({self.phase(bad_step)} "
                                     f"phase, lr {self.lr_at(bad_step):.2e}); its update was not applied")
        check_reward_sum(reward_sum, self.reward_fn, "in this round's batches")
        n = max(steps, 1)
        return {"loss": loss_sum / n, "grad_norm": grad_sum / n, "reward": reward_sum / max(tuned, 1),
                "images_per_s": steps * c.batch_size / max(seconds, 1e-9), "seconds": seconds, "steps": steps,
                "lr": self.lr_at(max(self.step - 1, 0)), "step": self.step}

    def _ce(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """A cross-entropy step (``_ce_step``), replayed from a CUDA graph once the trainer records one."""
        if not self.graphed:
            return self._ce_step(x, y)
        if self._graph is not None and not self._graph.matches(x, y):
            self._drop_graph()  # a new batch shape: warm up and record again
        if self._graph is None:
            if self._eager_steps < GRAPH_WARMUP:
                self._eager_steps += 1
                return self._ce_step(x, y)
            tensor_lr(self.optimizer, self.device)  # a recorded step reads its learning rate from the device
            self._graph = CapturedStep(self._ce_step, (x, y), self.optimizer)
        return self._graph(x, y)

    def _drop_graph(self) -> None:
        self._graph, self._eager_steps = None, 0

    def _ce_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Cross-entropy on an augmented batch (uint8 images, integer labels) and the update; returns the
        loss, per-image losses, gradient norm, whether the update was skipped, and the logits."""
        with autocast(self.device):
            logits = self._forward(normalise(x))
        per_image_ce = F.cross_entropy(logits.float(), y.long(), reduction="none",
                                       ignore_index=self.ce_ignore_index).mean((1, 2))
        loss = per_image_ce.mean()
        grad_norm, bad = self._update(loss)
        return loss.detach(), per_image_ce.detach(), grad_norm, bad, logits.detach()

    def _update(self, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward, gradient clipping and the AdamW step, skipped on the device where the loss or gradient
        is not finite; returns the gradient norm and that skip flag."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self._params, self.config.grad_clip, foreach=True)
        bad = ~(torch.isfinite(loss) & torch.isfinite(grad_norm))
        self.optimizer.found_inf = bad.float()  # read by the fused AdamW step: no update where set
        self.optimizer.step()
        return grad_norm, bad

    def tuning_loss(self, logits: torch.Tensor, target: torch.Tensor, **overrides: Any) -> tuple[torch.Tensor, dict]:
        """The REINFORCE phase's loss of ``logits`` against ``target`` as the config sets it (``reinforce_loss``);
        ``overrides`` replace its keyword arguments (e.g. ``ce_weight=0`` for the reward term alone)."""
        c = self.config
        kwargs = dict(num_samples=c.num_samples, baseline=c.baseline, reduction=c.reduction, credit=self.credit,
                      reward_weight=c.reward_weight, temperature=c.temperature, entropy_weight=c.entropy_weight,
                      ce_weight=c.ce_weight, num_classes=self.num_classes, generator=self.reinforce_generator,
                      ignore_index=self.scheme.ignore_index)
        return reinforce_loss(logits, target, self.reward_fn, **{**kwargs, **overrides})

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Greedy label maps int64 [N, H, W] for uint8 images [N, 3, H, W], in evaluation batches."""
        was_training = self.model.training
        self.model.eval()
        out = []
        for chunk in images.split(self.config.eval_batch_size):
            x = normalise(chunk.to(self.device))
            if self._forward is not self.model:  # a dynamic batch: evaluation sizes share a graph, not one each
                torch._dynamo.mark_dynamic(x, 0)
            with autocast(self.device):
                out.append(self._forward(x).argmax(1))
        self.model.train(was_training)
        return torch.cat(out)

    @torch.no_grad()
    def evaluate(self, split: str | FaceParsingSet = "val", *, limit: int | None = None,
                 reward_fn: Callable | None = None) -> dict[str, Any]:
        """Pooled-confusion scores on a split (or a given set): mean F1, per-class F1, FP rate, IoU,
        and ``reward``, the mean per-image value of ``reward_fn`` (default: the trainer's own reward).
        ``limit`` keeps the first N images. The one evaluation function: the envs, the run's final
        scores and the evaluate CLI all score through it."""
        ds = self.data[split] if isinstance(split, str) else self._to_device(split)
        images, labels = ds.images[:limit], ds.labels[:limit].long()
        reward_fn = reward_fn or self.reward_fn
        acc = ConfusionAccumulator(self.num_classes, self.device, self.scheme.ignore_index)
        reward_sum = 0.0
        for lo in range(0, len(images), self.config.eval_batch_size):
            hi = lo + self.config.eval_batch_size
            pred, target = self.predict(images[lo:hi]), labels[lo:hi]
            acc.update(pred, target)
            reward_sum += float(reward_fn(*without_ignored(pred, target, self.scheme.ignore_index),
                                          self.num_classes).sum())
        check_reward_sum(reward_sum, reward_fn, f"on {len(images)} images")
        scores = acc.compute()
        return {"mean_f1": float(scores["mean_f1"]), "f1": [float(v) for v in scores["f1"]],
                "fp_rate": float(scores["fp_rate"]), "iou": [float(v) for v in scores["iou"]],
                "pixel_acc": float(scores["pixel_acc"]), "reward": reward_sum / max(len(images), 1)}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain data only (loads with weights_only=True)."""
        return {
            "config": self.config.to_dict(),
            "step": self.step,
            **self.weights_state(),
            "rng": {"sample": self.sample_generator.get_state(), "augment": self.augment_generator.get_state(),
                    "reinforce": self.reinforce_generator.get_state(),
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        }

    def weights_state(self) -> dict[str, Any]:
        """What training has learnt, without the step and RNGs: model, optimiser and sampler (a PBT exploit)."""
        return {"model": self.model.state_dict(), "optimizer": plain_lr(self.optimizer.state_dict()),
                "sampler": self.sampler.state_dict()}

    def load_weights(self, state: dict[str, Any]) -> None:
        """Load ``weights_state``'s parts (from any state that has them)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))  # else it keeps the given tensors
        self.sampler.load_state_dict(state["sampler"])
        self._drop_graph()  # it reads the optimiser's former tensors

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.load_weights(state)
        rng = state["rng"]
        self.sample_generator.set_state(rng["sample"])
        self.augment_generator.set_state(rng["augment"])
        self.reinforce_generator.set_state(rng["reinforce"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def save(self, path: str | os.PathLike) -> None:
        """Write the trainer state atomically (a reader never sees a half-written file)."""
        with atomic_path(path) as tmp:
            torch.save(self.state_dict(), tmp)

    def load(self, path: str | os.PathLike) -> None:
        self.load_state_dict(load_checkpoint(path))

    # ------------------------------------------------------------------ CE-pretrained starts
    def load_pretrained(self, steps: int, *, cache_dir: str | os.PathLike | None = None,
                        progress: bool = False) -> Path:
        """Load the model of a CE run of ``steps`` steps (no augmentation) for this config, training it
        once and caching it under a key of the config, so env episodes can start from it."""
        c = self.config
        key_fields = {k: getattr(c, k) for k in ("model", "head", "encoder_weights", "data", "image_size",
                                                  "batch_size", "lr", "weight_decay", "warmup", "grad_clip", "seed")}
        key_fields["steps"] = steps
        key_fields["train_data"] = _fingerprint(self.data["train"])  # a regenerated or edited data set retrains
        key = hashlib.sha256(json.dumps(key_fields, sort_keys=True).encode()).hexdigest()[:16]
        # a plug-in's "package.module:factory" has a ':' (not allowed in Windows file names) and may be long
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", c.model)[:64]
        path = Path(cache_dir or cache_root() / "pretrained") / f"{name}-{key}.pt"
        if not path.exists():
            pre = InnerTrainer(c.replace(loss="ce", steps=steps), data=self.data)
            _train_with_progress(pre, steps, desc=f"CE pre-training {c.model} ({steps} steps)", enabled=progress)
            with atomic_path(path) as tmp:
                torch.save({"key": key_fields, "model": pre.model.state_dict()}, tmp)
        self.model.load_state_dict(load_checkpoint(path)["model"])
        return path


def _fingerprint(ds: FaceParsingSet) -> str:
    """A hash of a split's pixels and labels (about 0.1 s for 10,000 images of 64 px)."""
    digest = hashlib.sha256()
    for tensor in (ds.images, ds.labels):
        digest.update(tensor.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: a foreign or tampered file is refused instead of running code."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types; all mean "not one of our checkpoints"
        raise UserError(f"cannot load checkpoint {path}: {type(e).__name__}: {str(e).splitlines()[0]}") from None


def _train_with_progress(trainer: InnerTrainer, steps: int, *, desc: str, enabled: bool = True,
                         policy: Policy | None = None, chunk: int = 50) -> None:
    from tqdm import tqdm
    with tqdm(total=steps, desc=desc, disable=not enabled, leave=False) as bar:
        for done in range(0, steps, chunk):
            n = min(chunk, steps - done)
            stats = trainer.train_round(policy, steps=n)
            bar.update(n)
            bar.set_postfix(loss=f"{stats['loss']:.3f}")
