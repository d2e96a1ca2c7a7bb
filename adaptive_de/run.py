"""One population run per method: the agent learns while the population trains, then the comparison.

    python -m adaptive_de.run --agent ppo                         # cpu preset: within 15 minutes on 2 cores
    python -m adaptive_de.run --agent ppo --preset smoke --compare prior,none
    python -m adaptive_de.run --agent ppo --env members=8 rounds=10 --reward-kw w=0.5
    python -m adaptive_de.run --resume runs/ppo-cpu-20250101-120000

The agent's run is one ``envs.PopulationEnv`` run: ``members`` inner trainers side by side, the agent
choosing each member's augmentation and sampling every round and learning from the members'
group-relative rewards as they train, the worst members taking the best one's weights every
``exploit_every`` rounds. Its final model is the best member on the selection subset of val. Each
``--compare`` method then trains the same population from the same warm-up and seed, with the same
inner steps (printed), and every final model is scored once on the TEST split.

The run folder ``<logdir>/<name>/`` holds:

=======================  ========================================================================
config.yaml              the resolved run config (reusable with ``--config``)
tb/<method>/             TensorBoard, one folder per method (x axis: the round): best and mean
                         member reward, group-relative reward spread, exploits, chosen levels, for
                         a learner ``policy/kl_from_prior`` and ``policy/entropy`` (and SB3's
                         ``train/`` in ``sb3/``); the final member's predictions and test score
checkpoints/latest.pt    every member's trainer state, the agent, RNG states, finished methods' rows
agent.pt                 the trained agent (``Agent.load``)
final_model.pt           the agent's final (best) member's trainer state; model weights under ``"model"``
results.json             ``{"agent": NAME, "methods": {NAME: {test_mean_f1, test_f1, test_fp_rate,
                         wall_seconds, compute_inner_steps, best_member, selection_reward, schedule}}}``
results.md, schedule.png the comparison table; the levels the agent chose per round
curves.png               the best member's reward-subset value per round, every method
=======================  ========================================================================

``--resume RUN_DIR`` continues a killed run from its last checkpoint (after a round, or after an agent
update) and ends with the numbers the uninterrupted run would have given (on CPU).
"""
from __future__ import annotations

import json
import math
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from agents import AGENT_FORMS, Agent, agent_class, make_agent
from agents.callbacks import tensorboard_logger
from agents.population import play_method
from envs import SAMPLING_MODES, PopulationEnv
from envs.face_parsing import prediction_grid
from envs.population import check_population

from .augment import OPS
from .config import LOSSES, from_yaml, parse_kv, to_yaml
from .data import load
from .errors import CliParser, UserError, run_cli
from .files import atomic_path, atomic_write_text
from .presets import DEFAULT_COMPARE, PRESETS, EnvConfig, RunConfig, check_choice
from .rewards import get_reward
from .trainer import load_checkpoint

CHECKPOINT = Path("checkpoints/latest.pt")
CHECKPOINT_FORMAT = "adaptive_de.run/4"  # /4: augmentation draws from a CPU generator (rng key "augment")
FINAL_MODEL = "final_model.pt"
RESUMABLE_FLAGS = ("device", "backend", "ray_address", "member_cpus", "member_gpus")
BACKEND_FLAGS = {"ray_address": "address", "member_cpus": "num_cpus", "member_gpus": "num_gpus"}
ENV_FLAGS = ("data", "inner_loss", "device", "seed")


def build_parser() -> CliParser:
    p = CliParser(prog="python -m adaptive_de.run", description=__doc__.splitlines()[0])
    p.add_argument("--agent", help=f"the agent (default ppo): {AGENT_FORMS}")
    p.add_argument("--preset", help=f"size preset: {', '.join(PRESETS)} (default cpu)")
    p.add_argument("--data", help="data set spec: synth[:k=v,...] | lapa:DIR | celebamask:DIR "
                   "| folder:DIR[,k=v,...] (default: the preset's)")
    p.add_argument("--reward", help="reward spec for the env reward and the inner REINFORCE loss (default f1_fp)")
    p.add_argument("--reward-kw", nargs="*", metavar="K=V", help="reward parameters, e.g. w=0.3")
    p.add_argument("--env-reward", help="env reward spec only (its parameters: --env-reward-kw)")
    p.add_argument("--env-reward-kw", nargs="*", metavar="K=V")
    p.add_argument("--inner-reward", help="inner REINFORCE reward spec only (its parameters: --inner-reward-kw)")
    p.add_argument("--inner-reward-kw", nargs="*", metavar="K=V")
    p.add_argument("--inner-loss", help=f"inner training loss: {', '.join(LOSSES)} (default ce_then_reinforce)")
    p.add_argument("--n-envs", type=int, help="population size: members trained side by side (default: the preset's)")
    p.add_argument("--env", nargs="*", metavar="K=V", help="any env option over the preset's, e.g. rounds=8 "
                                                          "exploit_every=2 (adaptive_de.presets.EnvConfig)")
    p.add_argument("--device", help="inner trainer device: auto | cpu | cuda | cuda:N (agents run on the CPU)")
    p.add_argument("--seed", type=int, help="seed of the warm-up, the population and the agent (0)")
    p.add_argument("--backend", help="where the members train: inprocess (default, one after another) or ray "
                                     "(one Ray actor each, side by side; a local Ray unless --ray-address)")
    p.add_argument("--ray-address", help="an existing Ray cluster for --backend ray, e.g. auto or ray://HOST:10001")
    p.add_argument("--member-cpus", type=float, help="CPUs per member with --backend ray (also its torch threads; 1)")
    p.add_argument("--member-gpus", type=float, help="GPUs per member with --backend ray (0; e.g. 0.25 shares one)")
    p.add_argument("--logdir", help="folder of run folders (default runs)")
    p.add_argument("--name", help="run folder name (default <agent>-<preset>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--compare", help=f"comma-separated methods trained after the agent on the same population "
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
    env = {**file_env, **parse_kv(args.env), **{k: getattr(args, k) for k in ENV_FLAGS if getattr(args, k) is not None}}
    if args.n_envs is not None:
        env["members"] = args.n_envs
    env.update(resolve_rewards(args, EnvConfig.from_preset(preset, **file_env)))
    env_config = EnvConfig.from_preset(preset, **env)
    check_population(env_config)
    agent = args.agent or base.pop("agent", None) or "ppo"
    compare = base.pop("compare", list(DEFAULT_COMPARE)) if args.compare is None else args.compare
    fields = {**base, "agent": agent, "compare": parse_compare(compare, agent), "seed": env_config.seed,
              "env": env_config.to_dict(), **backend_fields(args, base)}
    name = args.name or f"{re.sub(r'[^A-Za-z0-9_-]+', '_', agent)}-{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    return checked_run_config({**fields, "name": name})


def backend_fields(args, base: dict[str, Any]) -> dict[str, Any]:
    """``backend`` and ``backend_options`` from the flags over a config file's (or a resumed run's)."""
    options = {**(base.get("backend_options") or {}),
               **{key: getattr(args, flag) for flag, key in BACKEND_FLAGS.items() if getattr(args, flag) is not None}}
    return {"backend": args.backend or base.get("backend", "inprocess"), "backend_options": options}


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


def parse_compare(value: str | list[str], agent: str) -> list[str]:
    """Comparison methods from ``"none,random,fixed:0,...,2,mixed"`` (a fixed agent's own commas stay with it),
    without the run's own agent."""
    specs: list[str] = [] if isinstance(value, str) else [str(spec) for spec in value]
    for part in value.split(",") if isinstance(value, str) else []:
        part = part.strip()
        # no agent is named like a level or a sampling mode, so such a part continues a fixed:... spec
        if specs and specs[-1].startswith("fixed:") and (part.isdigit() or part in SAMPLING_MODES):
            specs[-1] += f",{part}"
        elif part:
            specs.append(part)
    for spec in specs:
        agent_class(spec)  # an unknown method fails here, before anything is loaded
    if len(set(specs)) != len(specs):
        raise UserError(f"--compare names a method twice: {','.join(specs)}")
    return [spec for spec in specs if spec != agent]


def checked_run_config(fields: dict[str, Any]) -> RunConfig:
    try:
        config = RunConfig.from_dict(fields)
        env = config.env_config()
    except TypeError as e:  # a value of the wrong type in a config file
        raise UserError(f"bad config: {e}") from None
    agent_class(config.agent)[0].check_options(config.agent_kw)
    for spec in (config.agent, *config.compare):
        cls, argument = agent_class(spec)
        cls.check_spec(argument, rounds=env.rounds, seed=env.seed)
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
    if args.device is not None and isinstance(fields.get("env"), dict):
        fields["env"]["device"] = args.device
    config = checked_run_config({**fields, **backend_fields(args, fields)})
    checkpoint = None
    if (run_dir / CHECKPOINT).exists():
        checkpoint = load_checkpoint(run_dir / CHECKPOINT)
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"cannot resume {run_dir}: {run_dir / CHECKPOINT} is not a run checkpoint of this "
                            f"version ({CHECKPOINT_FORMAT})")
        if checkpoint["methods"] != [config.agent, *config.compare]:
            raise UserError(f"cannot resume {run_dir}: its checkpoint is of methods {checkpoint['methods']}, the "
                            f"config says {[config.agent, *config.compare]}")
    return run_dir, config, checkpoint


# ---------------------------------------------------------------------------------------- the methods

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


class RoundLogger:
    """TensorBoard scalars of one method's rounds (x axis: the round), and a learner's distance from its prior:

    ``population/val_reward_best``, ``val_reward_mean``, ``val_mean_f1_best`` (reward subset), ``train_loss``,
    ``reward_spread`` (max - min group-relative reward), ``exploited`` (members replaced); ``levels/<op>``
    (mean over members); ``policy/kl_from_prior`` and ``policy/entropy`` (nats, on the members' states).
    """

    def __init__(self, writer: SummaryWriter, agent: Agent, env: PopulationEnv):
        self.writer, self.agent, self.env = writer, agent, env

    def __call__(self, round_: dict[str, Any]) -> None:
        w, infos, step = self.writer, round_["infos"], round_["infos"][0]["round"]
        values = [info["val_reward"] for info in infos]
        w.add_scalar("population/val_reward_best", max(values), step)
        w.add_scalar("population/val_reward_mean", float(np.mean(values)), step)
        w.add_scalar("population/val_mean_f1_best", max(info["val_mean_f1"] for info in infos), step)
        w.add_scalar("population/train_loss", float(np.nanmean([info["train_loss"] for info in infos])), step)
        w.add_scalar("population/reward_spread", float(np.ptp(round_["rewards"])), step)
        w.add_scalar("population/exploited", sum(info["exploited_from"] is not None for info in infos), step)
        levels = [info["levels"] for info in infos if info["levels"] is not None]
        for column, op in enumerate(OPS if levels else ()):
            w.add_scalar(f"levels/{op}", float(np.mean([lv[column] for lv in levels])), step)
        kl_from_prior = getattr(self.agent, "kl_from_prior", None)
        moved = kl_from_prior(self.env.observations()) if kl_from_prior else None
        if moved is not None:  # how far learning has moved the policy from its prior (the members' states)
            kl, entropy = moved
            w.add_scalar("policy/kl_from_prior", kl, step)
            w.add_scalar("policy/entropy", entropy, step)


def run_methods(config: RunConfig, run_dir: Path, env: PopulationEnv, test, checkpoint: dict[str, Any] | None,
                console: Console) -> dict[str, dict[str, Any]]:
    """The agent's population run, then each comparison method's, from the same warm-up and seed.

    TensorBoard: one folder per method, ``tb/<method>/`` (x axis: the round, so the methods' curves overlay),
    and for a learner SB3's scalars in ``tb/<method>/sb3/`` (x axis: agent steps). A resumed run purges what
    the killed one logged after its checkpoint, so the curves continue without duplicates.
    """
    methods = [config.agent, *config.compare]
    rows: dict[str, dict[str, Any]] = dict(checkpoint["rows"]) if checkpoint else {}
    in_flight = checkpoint.get("method") if checkpoint else None
    if checkpoint:
        console.print(f"resuming {run_dir}: {len(rows)} of {len(methods)} methods done"
                      + (f", {in_flight} from round {checkpoint['env']['round']}" if in_flight else ""))
    for spec in methods:
        if spec in rows:
            continue
        agent = make_agent(spec, env, seed=config.seed, **(config.agent_kw if spec == config.agent else {}))
        resumed = in_flight == spec
        schedule: list = []
        if resumed:
            env.load_state_dict(checkpoint["env"])
            try:
                agent.load_state_dict(checkpoint["agent"])
            except (KeyError, TypeError, ValueError, RuntimeError) as e:
                raise UserError(f"cannot resume {run_dir}: its checkpoint does not fit the agent ({e})") from None
            set_rng_state(checkpoint["rng"])
            schedule = list(checkpoint["schedule"])
        folder = run_dir / "tb" / re.sub(r"[^\w.+=-]+", "_", spec)
        # After a kill: drop the killed run's events past the checkpoint (all of them for a method not yet saved).
        purge = (len(schedule) + 1 if resumed else 1) if checkpoint else None
        writer = SummaryWriter(str(folder), purge_step=purge)
        if agent.learns:
            agent.set_logger(tensorboard_logger(folder / "sb3", purge_step=agent.num_timesteps + 1 if checkpoint
                                                else None))

        def save(method: str | None = spec, agent: Agent = agent, schedule: list = schedule, writer=writer) -> None:
            state = {"format": CHECKPOINT_FORMAT, "methods": methods, "rows": rows, "method": method}
            if method is not None:
                state.update(env=env.state_dict(), agent=agent.state_dict(), rng=rng_state(), schedule=schedule)
            with atomic_path(run_dir / CHECKPOINT) as tmp:
                torch.save(state, tmp)
            writer.flush()  # the curves up to a checkpoint survive a kill

        console.print(f"{spec}: {env.num_envs} members x {env.rounds} rounds x {env.config.steps_per_round} steps "
                      f"= {env.compute_inner_steps:,} inner steps")
        log = RoundLogger(writer, agent, env)
        with tqdm(total=env.rounds, initial=len(schedule), desc=spec, unit="round") as bar:
            def on_round(round_: dict[str, Any], log=log, bar=bar) -> None:
                log(round_)
                bar.update()
                bar.set_postfix(best=f"{100 * max(i['val_mean_f1'] for i in round_['infos']):.1f}")

            rows[spec] = play_method(env, agent, test, on_round=on_round, checkpoint=save, resumed=resumed,
                                     schedule=schedule)
        selection = env.selection_set
        writer.add_image("final/predictions", prediction_grid(env.final_trainer(), selection.images[:4],
                                                              selection.labels[:4], env.scheme), 0)
        writer.add_scalar("final/test_mean_f1", rows[spec]["test_mean_f1"], env.rounds)
        writer.close()
        if spec == config.agent:
            with atomic_path(run_dir / FINAL_MODEL) as tmp:
                torch.save(env.final["state"], tmp)
            agent.save(run_dir / "agent.pt")
        in_flight = None
        save(method=None)
    with SummaryWriter(str(run_dir / "tb")) as writer:
        writer.add_text("results", results_markdown(config, rows, env.class_names))
    return rows


# ---------------------------------------------------------------------------------------- results

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
    header = ["method", "test mean F1", "FP rate", "inner steps", "wall s", *class_names]
    lines = [f"# {config.name}: {config.agent} vs baselines", "",
             f"Test split of `{env.data}`, scored once per method. Every method trained the same population "
             f"({env.members} members x {env.rounds} rounds x {env.steps_per_round} steps, exploit every "
             f"{env.exploit_every} rounds, inner loss {env.inner_loss}, {env.start} start, seed {config.seed}); its "
             f"final model is its best member on the selection subset of val. F1, FP rate and per-class F1 in %.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        cells = [f"`{name}`", _percent(row["test_mean_f1"]), _percent(row["test_fp_rate"]),
                 f"{row['compute_inner_steps']:,}", f"{row['wall_seconds']:.1f}", *map(_percent, row["test_f1"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_schedule(path: Path, row: dict[str, Any], agent: str) -> None:
    """The levels the agent chose per round (mean over members), and its sampling modes."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    fig = Figure(figsize=(9, 4.5), layout="tight")
    ax = fig.subplots()
    chosen = [r["levels"] for r in row["schedule"]]
    if chosen and chosen[0][0] is not None:
        levels = np.array(chosen, dtype=float).mean(axis=1)  # [rounds, ops]
        image = ax.imshow(levels.T, aspect="auto", cmap="viridis", vmin=0, vmax=4)
        fig.colorbar(image, ax=ax, label="level (mean over members)")
        ax.set(yticks=range(len(OPS)), yticklabels=OPS)
        modes = [", ".join(f"{m}: {r['sampler'].count(m)}" for m in SAMPLING_MODES if r["sampler"].count(m))
                 for r in row["schedule"]]
        ax.set_xticks(range(len(modes)), [f"{i + 1}\n{m}" for i, m in enumerate(modes)], fontsize=6)
    else:
        ax.text(0.5, 0.5, f"{agent} trains a policy object: no levels", ha="center", va="center",
                transform=ax.transAxes)
    ax.set(xlabel="round (and the members' sampling modes)", title=f"{agent}: the learned schedule")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def plot_curves(path: Path, run_dir: Path, methods: list[str]) -> None:
    """The best member's reward-subset value per round, for every method (read back from TensorBoard)."""
    from matplotlib.figure import Figure
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for method in methods:
        events = EventAccumulator(str(run_dir / "tb" / re.sub(r"[^\w.+=-]+", "_", method)),
                                  size_guidance={"scalars": 0})
        events.Reload()
        if "population/val_reward_best" in events.Tags()["scalars"]:
            points = events.Scalars("population/val_reward_best")
            ax.plot([p.step for p in points], [p.value for p in points], marker="o", label=method)
    ax.set(xlabel="round", ylabel="best member's reward-subset value", title="population runs (same seed)")
    ax.legend(fontsize="small")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_results(config: RunConfig, run_dir: Path, rows: dict[str, dict[str, Any]],
                  class_names: tuple[str, ...]) -> None:
    atomic_write_text(run_dir / "results.json",
                      json.dumps(_nan_to_none({"agent": config.agent, "methods": rows}), indent=2) + "\n")
    atomic_write_text(run_dir / "results.md", results_markdown(config, rows, class_names))
    plot_schedule(run_dir / "schedule.png", rows[config.agent], config.agent)
    plot_curves(run_dir / "curves.png", run_dir, list(rows))


def results_table(rows: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="Test split (%)")
    for column in ("method", "mean F1", "FP rate", "inner steps", "wall s"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name, row in rows.items():
        table.add_row(name, _percent(row["test_mean_f1"]), _percent(row["test_fp_rate"]),
                      f"{row['compute_inner_steps']:,}", f"{row['wall_seconds']:.1f}")
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
    # Loads the data and trains the warm-up if needed: every input error surfaces before the folder exists.
    env = PopulationEnv(**config.env, progress=True, backend=config.backend, backend_options=config.backend_options)
    test = load(env.config.data, "test", size=env.reference.image_size)
    c = env.config
    console.print(f"run {run_dir}: agent {config.agent}, preset {c.preset}; populations of {c.members} x {c.rounds} "
                  f"rounds x {c.steps_per_round} {c.inner_loss} steps of {c.model} on {c.data} "
                  f"({len(env.reference.data['train'].images)} train images, {env.reference.device})")
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", to_yaml(config.to_dict()))
    rows = run_methods(config, run_dir, env, test, checkpoint, console)
    write_results(config, run_dir, rows, env.class_names)
    Console().print(results_table(rows))
    console.print(f"results: {run_dir / 'results.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``adaptive-de``): user errors become one ``error:`` line and exit code 2."""
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
