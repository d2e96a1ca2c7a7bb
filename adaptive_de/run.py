"""Train an agent that steers a face-parsing trainer's augmentation and sampling, then compare it with baselines.

    python -m adaptive_de.run --agent ppo                         # cpu preset, about 10-11 minutes on 2 cores
    python -m adaptive_de.run --agent dqn --preset smoke
    python -m adaptive_de.run --agent ppo --reward f1_fp --reward-kw w=0.5 --inner-loss ce
    python -m adaptive_de.run --resume runs/ppo-cpu-20250101-120000

After training, the agent (acting deterministically) and each ``--compare`` baseline train one
episode each from the same start and seed; each final inner model is scored on the TEST split.

The run folder ``<logdir>/<name>/`` holds:

=======================  ========================================================================
config.yaml              the resolved run config (reusable with ``--config``)
tb/                      TensorBoard events: SB3's scalars, the inner trainer's (``agents.callbacks``),
                         ``final/<method>/val_mean_f1`` per round and ``final/<method>/predictions``
checkpoints/latest.pt    agent, normaliser, counters, RNG states, env 0's trainer state (weights-only)
episodes.jsonl           one line per training episode (timesteps, return, final val scores)
agent.pt                 the trained agent (``Agent.load``)
final_model.pt           the agent's final inner trainer state; its model weights under ``"model"``
results.json             ``{"agent": NAME, "methods": {NAME: {test_mean_f1, test_f1, test_fp_rate,
                         wall_seconds}}}``, the agent first (NaN F1 of an absent class: null)
results.md, curves.png   the comparison table; training returns and val F1 per round
=======================  ========================================================================

``--resume RUN_DIR`` continues from the last checkpoint to the run's total timesteps (the episode in
flight when the run stopped is started afresh), with its TensorBoard curves continuing, then runs the
final comparison.
"""
from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv
from tqdm import tqdm

from agents import Agent, agent_class, make_agent
from agents.callbacks import CheckpointCallback, InnerMetricsCallback, tensorboard_logger, tensorboard_writer
from agents.evaluation import run_episode
from envs import ENV_ID, SAMPLING_MODES, FaceParsingAugmentEnv, MenuActionWrapper

from .config import LOSSES, from_yaml, parse_kv, to_yaml
from .errors import CliParser, UserError, run_cli
from .files import atomic_path, atomic_write_text
from .presets import DEFAULT_COMPARE, PRESETS, EnvConfig, RunConfig, check_choice
from .rewards import get_reward
from .trainer import load_checkpoint

CHECKPOINT = Path("checkpoints/latest.pt")
CHECKPOINT_FORMAT = "adaptive_de.run/1"
EPISODES = "episodes.jsonl"
FINAL_MODEL = "final_model.pt"
RESUMABLE_FLAGS = ("timesteps", "n_envs", "device")
ENV_FLAGS = ("data", "inner_loss", "device", "seed")


def build_parser() -> CliParser:
    p = CliParser(prog="python -m adaptive_de.run", description=__doc__.splitlines()[0])
    p.add_argument("--agent", help="ppo (default), a2c, dqn, ppo_menu, random, none, randaugment, trivialaugment, "
                                   "fixed:L1,...,L16[,MODE]")
    p.add_argument("--preset", help=f"env and budget preset: {', '.join(PRESETS)} (default cpu)")
    p.add_argument("--data", help="data set spec: synth[:k=v,...] | lapa:DIR | celebamask:DIR (default: the preset's)")
    p.add_argument("--reward", help="reward spec for the env reward and the inner REINFORCE loss (default f1_fp)")
    p.add_argument("--reward-kw", nargs="*", metavar="K=V", help="reward parameters, e.g. w=0.3")
    p.add_argument("--env-reward", help="env reward spec only (its parameters: --env-reward-kw)")
    p.add_argument("--env-reward-kw", nargs="*", metavar="K=V")
    p.add_argument("--inner-reward", help="inner REINFORCE reward spec only (its parameters: --inner-reward-kw)")
    p.add_argument("--inner-reward-kw", nargs="*", metavar="K=V")
    p.add_argument("--inner-loss", help=f"inner training loss: {', '.join(LOSSES)} (default ce_then_reinforce)")
    p.add_argument("--timesteps", type=int, help="total agent env steps (default: the preset's)")
    p.add_argument("--n-envs", type=int, help="parallel envs (>1: one process each)")
    p.add_argument("--device", help="inner trainer device: auto | cpu | cuda | cuda:N (agents run on the CPU)")
    p.add_argument("--seed", type=int, help="seed of the agent, the inner model and the comparison episodes (0)")
    p.add_argument("--logdir", help="folder of run folders (default runs)")
    p.add_argument("--name", help="run folder name (default <agent>-<preset>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--compare", help=f"comma-separated baselines for the final comparison "
                                     f"(default {','.join(DEFAULT_COMPARE)}; '' for none)")
    p.add_argument("--config", metavar="FILE.yaml", help="a run config (e.g. another run's config.yaml); "
                                                         "flags override it")
    return p


# ---------------------------------------------------------------------------------------- config

def new_config(args) -> RunConfig:
    """The run config from preset < --config file < flags, every value resolved and validated."""
    base = read_yaml(Path(args.config)) if args.config else {}
    file_env = base.pop("env", None) or {}
    if not isinstance(file_env, dict):
        raise UserError(f"{args.config}: env must be a mapping of env options")
    file_env = dict(file_env)
    base.pop("name", None)  # a copied config must not reuse its run's folder
    file_preset = file_env.pop("preset", None)
    if args.preset and file_preset and args.preset != file_preset:
        raise UserError(f"--preset {args.preset} conflicts with {args.config}, whose env sizes come from preset "
                        f"{file_preset}; edit the file's env section instead")
    preset = args.preset or file_preset or "cpu"
    check_choice("preset", preset, PRESETS)
    env = {**file_env, **{k: getattr(args, k) for k in ENV_FLAGS if getattr(args, k) is not None}}
    env.update(resolve_rewards(args, EnvConfig.from_preset(preset, **file_env)))
    env_config = EnvConfig.from_preset(preset, **env)
    sizes = PRESETS[preset]
    agent = args.agent or base.pop("agent", None) or "ppo"
    compare = base.pop("compare", list(DEFAULT_COMPARE)) if args.compare is None else args.compare
    fields = {"timesteps": sizes.timesteps, "checkpoint_every": sizes.checkpoint_every,
              "image_every": sizes.image_every, **base, "agent": agent, "compare": parse_compare(compare),
              "seed": env_config.seed, "env": env_config.to_dict()}
    for flag in ("timesteps", "n_envs"):
        if getattr(args, flag) is not None:
            fields[flag] = getattr(args, flag)
    name = args.name or f"{re.sub(r'[^A-Za-z0-9_-]+', '_', agent)}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    return checked_run_config({**fields, "name": name})


def resolve_rewards(args, base: EnvConfig) -> dict[str, Any]:
    """Env and inner reward specs and parameters. ``--reward``/``--reward-kw`` set both sides; ``--env-reward[-kw]``
    and ``--inner-reward[-kw]`` then override one side (a side given its own spec starts with no parameters)."""
    env_spec, env_kw = base.reward, base.reward_kw
    inner_spec, inner_kw = base.resolved_inner_reward()
    if args.reward:
        env_spec = inner_spec = args.reward
        env_kw = inner_kw = {}
    if args.reward_kw is not None:
        env_kw = inner_kw = parse_kv(args.reward_kw)
    if args.env_reward:
        env_spec, env_kw = args.env_reward, {}
    if args.env_reward_kw is not None:
        env_kw = parse_kv(args.env_reward_kw)
    if args.inner_reward:
        inner_spec, inner_kw = args.inner_reward, {}
    if args.inner_reward_kw is not None:
        inner_kw = parse_kv(args.inner_reward_kw)
    for spec, kw in ((env_spec, env_kw), (inner_spec, inner_kw)):
        get_reward(spec, **kw)  # an unknown spec or parameter fails here, before anything is loaded
    return {"reward": env_spec, "reward_kw": env_kw, "inner_reward": inner_spec, "inner_reward_kw": inner_kw}


def parse_compare(value: str | list[str]) -> list[str]:
    """Baseline specs from ``"none,random,fixed:0,...,2,mixed"`` (a fixed agent's own commas stay with it)."""
    specs: list[str] = [] if isinstance(value, str) else [str(spec) for spec in value]
    for part in value.split(",") if isinstance(value, str) else []:
        part = part.strip()
        # no agent is named like a level or a sampling mode, so such a part continues a fixed:... spec
        if specs and specs[-1].startswith("fixed:") and (part.isdigit() or part in SAMPLING_MODES):
            specs[-1] += f",{part}"
        elif part:
            specs.append(part)
    for spec in specs:
        if agent_class(spec)[0].learns:
            raise UserError(f"--compare takes baselines that do not learn; {spec!r} is a learning agent")
    return specs


def checked_run_config(fields: dict[str, Any]) -> RunConfig:
    try:
        config = RunConfig.from_dict(fields)
        config.env_config()
    except TypeError as e:  # a value of the wrong type in a config file
        raise UserError(f"bad config: {e}") from None
    agent_class(config.agent)[0].check_options(config.agent_kw)
    if not re.fullmatch(r"[A-Za-z0-9][\w.+=-]*", config.name):
        raise UserError(f"bad run name {config.name!r}: use letters, digits and _ . - + =")
    return config


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    return from_yaml(path.read_text())


def resume_inputs(args) -> tuple[Path, RunConfig, dict[str, Any] | None]:
    """The run folder, its config (with --timesteps/--n-envs/--device applied) and its checkpoint (None: none yet)."""
    given = [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
             if v is not None and k not in (*RESUMABLE_FLAGS, "resume")]
    if given:
        raise UserError(f"--resume continues a run with its own config; {', '.join(given)} cannot change "
                        f"(only {', '.join('--' + f.replace('_', '-') for f in RESUMABLE_FLAGS)} can)")
    run_dir = Path(args.resume)
    if not run_dir.is_dir():
        raise UserError(f"cannot resume {run_dir}: the folder does not exist")
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"cannot resume {run_dir}: not a run folder (no config.yaml)")
    fields = read_yaml(run_dir / "config.yaml")
    for flag in ("timesteps", "n_envs"):
        if getattr(args, flag) is not None:
            fields[flag] = getattr(args, flag)
    if args.device is not None and isinstance(fields.get("env"), dict):
        fields["env"]["device"] = args.device
    config = checked_run_config(fields)
    checkpoint = None
    if (run_dir / CHECKPOINT).exists():
        checkpoint = load_checkpoint(run_dir / CHECKPOINT)
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"cannot resume {run_dir}: {run_dir / CHECKPOINT} is not a run checkpoint")
        if checkpoint["agent"].get("agent") != config.agent:
            saved = checkpoint["agent"].get("agent")
            raise UserError(f"cannot resume {run_dir}: its checkpoint holds agent {saved!r}, the config says "
                            f"{config.agent!r}")
    return run_dir, config, checkpoint


# ---------------------------------------------------------------------------------------- envs and training

def env_options(config: RunConfig) -> dict[str, Any]:
    """Keyword options of the run's envs: the recorded EnvConfig, plus the infos the callbacks log."""
    return {**config.env, "frames_in_info": True, "timing_info": True}


def _monitored_env(options: dict[str, Any], menu: bool) -> gym.Env:
    env = gym.make(ENV_ID, **options)
    return Monitor(MenuActionWrapper(env) if menu else env)


def training_env(config: RunConfig, env: FaceParsingAugmentEnv, menu: bool) -> VecEnv:
    """One env: ``env`` itself in a DummyVecEnv; several: one process each, sharing the CPU cores."""
    if config.n_envs == 1:
        return DummyVecEnv([lambda: Monitor(MenuActionWrapper(env) if menu else env)])
    options = {**env_options(config), "torch_threads": max(1, (os.cpu_count() or 1) // config.n_envs)}
    return SubprocVecEnv([partial(_monitored_env, options, menu)] * config.n_envs)


def rng_state() -> dict[str, Any]:
    """The global RNGs an agent draws from (Python, NumPy, torch), as weights-only-loadable data."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                    cached], "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


def train(config: RunConfig, run_dir: Path, env: FaceParsingAugmentEnv, checkpoint: dict[str, Any] | None,
          console: Console) -> Agent:
    """Build the agent (restoring the checkpoint) and train it to ``config.timesteps`` with logging and checkpoints."""
    cls, _ = agent_class(config.agent)
    if not cls.learns:
        return make_agent(config.agent, env, seed=config.seed)
    venv = training_env(config, env, cls.menu_actions)
    agent = make_agent(config.agent, venv, seed=config.seed, episode_length=env.rounds, **config.agent_kw)
    start = 0
    if checkpoint is not None:
        try:
            agent.load_state_dict(checkpoint["agent"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise UserError(f"cannot resume {run_dir}: its checkpoint does not fit the agent ({e})") from None
        start = agent.num_timesteps
        venv.seed(config.seed + start)  # new episode seeds, not a replay of the first episodes
        set_rng_state(checkpoint["rng"])
        keep_episodes(run_dir / EPISODES, start)
        console.print(f"resuming {run_dir} from timestep {start} of {config.timesteps}")
    # purge what a killed run logged after its checkpoint (steps > start; the checkpoint's own step is kept)
    logger = tensorboard_logger(run_dir / "tb", purge_step=start + 1 if checkpoint is not None else None)
    agent.set_logger(logger)

    def make_checkpoint() -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "timesteps": agent.num_timesteps, "agent": agent.state_dict(),
                "trainer": venv.env_method("trainer_state", indices=[0])[0], "rng": rng_state()}

    callbacks = [InnerMetricsCallback(env.class_names, episodes_path=run_dir / EPISODES,
                                      image_every=config.image_every),
                 CheckpointCallback(run_dir / CHECKPOINT, config.checkpoint_every, make_checkpoint)]
    if config.timesteps > start:
        agent.learn(config.timesteps - start, callback=callbacks, reset_num_timesteps=checkpoint is None,
                    progress_bar=True)
    if config.n_envs > 1:
        venv.close()
    logger.close()
    return agent


def keep_episodes(path: Path, timesteps: int) -> None:
    """Drop the episode-log lines a killed run wrote after its last checkpoint."""
    if path.exists():
        kept = [e for e in read_episodes(path) if e["timesteps"] <= timesteps]
        atomic_write_text(path, "".join(json.dumps(e) + "\n" for e in kept))


def read_episodes(path: Path) -> list[dict[str, Any]]:
    """The episode log, skipping a line cut short by a kill."""
    episodes = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            episodes.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return episodes


# ---------------------------------------------------------------------------------------- final comparison

def final_comparison(config: RunConfig, run_dir: Path, env: FaceParsingAugmentEnv, agent: Agent
                     ) -> tuple[dict[str, dict[str, Any]], dict[str, list[float]]]:
    """One deterministic episode per method from the same seed; test scores per method and val curves."""
    methods = [agent] + [make_agent(spec, env, seed=config.seed) for spec in config.compare if spec != agent.name]
    rows, curves = {}, {}
    logger = tensorboard_logger(run_dir / "tb")
    writer = tensorboard_writer(logger)
    with tqdm(total=len(methods) * env.rounds, desc="final comparison", unit="round") as bar:
        for method in methods:
            bar.set_postfix_str(method.name)
            episode = run_episode(method, env, seed=config.seed, on_step=lambda _: bar.update())
            test = env.evaluate("test")
            if method is agent:
                env.trainer.save(run_dir / FINAL_MODEL)
            # What the method chose each round (levels are None under a policy override), for "what did it learn?".
            rows[method.name] = {"test_mean_f1": test["mean_f1"], "test_f1": test["f1"],
                                 "test_fp_rate": test["fp_rate"], "wall_seconds": episode.wall_seconds,
                                 "levels": [info["levels"] for info in episode.infos[1:]],
                                 "sampler": [info["sampler"] for info in episode.infos[1:]]}
            curves[method.name] = episode.val_mean_f1
            for round_index, value in enumerate(episode.val_mean_f1):
                writer.add_scalar(f"final/{method.name}/val_mean_f1", value, round_index)
            writer.add_image(f"final/{method.name}/predictions", env.prediction_grid(), 0)
    writer.add_text("final/results", results_markdown(config, rows, env.class_names))
    logger.close()
    return rows, curves


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    return value


def _percent(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def results_markdown(config: RunConfig, rows: dict[str, dict[str, Any]], class_names: tuple[str, ...]) -> str:
    env = config.env_config()
    header = ["method", "test mean F1", "FP rate", "wall s", *class_names]
    lines = [f"# {config.name}: {config.agent} vs baselines", "",
             f"Test split of `{env.data}`. Each method trained one episode ({env.rounds} rounds x "
             f"{env.steps_per_round} steps, inner loss {env.inner_loss}, {env.start} start) from the same seed "
             f"({config.seed}). F1, FP rate and per-class F1 in %.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        cells = [f"`{name}`", _percent(row["test_mean_f1"]), _percent(row["test_fp_rate"]),
                 f"{row['wall_seconds']:.1f}", *map(_percent, row["test_f1"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(path: Path, episodes: list[dict[str, Any]], curves: dict[str, list[float]], agent: str) -> None:
    """Left: the agent's training episode returns; right: val-subset mean F1 per round of each method's episode."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    fig = Figure(figsize=(11, 4), layout="tight")
    left, right = fig.subplots(1, 2)
    if episodes:
        steps, returns = [e["timesteps"] for e in episodes], [e["return"] for e in episodes]
        left.plot(steps, returns, ".", alpha=0.5, label="episode")
        window = len(returns) // 10
        if window > 1:
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            left.plot(steps[window - 1:], smooth, label=f"mean of {window}")
        left.legend()
    else:
        left.text(0.5, 0.5, "no training episodes", ha="center", va="center", transform=left.transAxes)
    left.set(xlabel="agent env steps", ylabel="episode return", title=f"{agent}: training")
    for name, values in curves.items():
        right.plot(range(len(values)), values, marker="o", label=name)
    right.set(xlabel="round", ylabel="val-subset mean F1", title="final comparison (same seed)")
    right.legend(fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_results(config: RunConfig, run_dir: Path, rows: dict[str, dict[str, Any]], curves: dict[str, list[float]],
                  class_names: tuple[str, ...]) -> None:
    atomic_write_text(run_dir / "results.json",
                      json.dumps(_nan_to_none({"agent": config.agent, "methods": rows}), indent=2) + "\n")
    atomic_write_text(run_dir / "results.md", results_markdown(config, rows, class_names))
    plot_curves(run_dir / "curves.png", read_episodes(run_dir / EPISODES), curves, config.agent)


def results_table(rows: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Test split (%)")
    for column in ("method", "mean F1", "FP rate", "wall s"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, row in rows.items():
        table.add_row(name, _percent(row["test_mean_f1"]), _percent(row["test_fp_rate"]), f"{row['wall_seconds']:.1f}")
    return table


# ---------------------------------------------------------------------------------------- main

def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=True, soft_wrap=True)  # long paths stay on one line
    if args.resume:
        run_dir, config, checkpoint = resume_inputs(args)
    else:
        config, checkpoint = new_config(args), None
        run_dir = Path(args.logdir or "runs") / config.name
        if run_dir.exists():
            raise UserError(f"run folder {run_dir} exists; continue it with --resume {run_dir} or pick another --name")
    # Loads the data and pre-trains the start model if needed: every input error surfaces before the folder exists.
    env = FaceParsingAugmentEnv(**env_options(config), progress=True)
    c = env.config
    console.print(f"run {run_dir}: agent {config.agent}, preset {c.preset}, {config.timesteps} timesteps; episodes of "
                  f"{c.rounds} x {c.steps_per_round} {c.inner_loss} steps of {c.model} on {c.data} "
                  f"({len(env.trainer.data['train'].images)} train images, {env.trainer.device})")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", to_yaml(config.to_dict()))
    agent = train(config, run_dir, env, checkpoint, console)
    agent.save(run_dir / "agent.pt")
    rows, curves = final_comparison(config, run_dir, env, agent)
    write_results(config, run_dir, rows, curves, env.class_names)
    Console().print(results_table(rows))
    console.print(f"results: {run_dir / 'results.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``adaptive-de``): user errors become one ``error:`` line and exit code 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":  # the guard SubprocVecEnv's worker processes rely on
    sys.exit(main())
