"""Learning-quality study: does the agent, learning during a population run, beat fixed recipes at equal compute?

    python -m benchmarks.learning [--seeds 0 1 2] [--preset cpu] [--env K=V ...] [--methods ...] [--jobs 2]
                                  [--out docs] [--tag T] [--resume] [--merge FILE ...] [--probe FILE] [--quick]
    python -m benchmarks.learning --report --tag T [--pair-with TAG ...]

Per seed, every method trains the same population (``envs.PopulationEnv``: ``members`` x ``rounds`` x
``steps_per_round`` inner steps from the seed's shared CE warm-up, the same exploit schedule, the same
batches per round) and differs only in how it chooses the members' actions (``agents.population``).
Each method's final model is its best member on the selection subset of val (disjoint from the
reward subset); it is scored once on the test split. So every method spends the same inner steps
(``compute_inner_steps``), selection included, and seeds pair the methods.

``oracle`` (the headroom study's hand-made policy, which knows the test nuisances, for every member)
is a reference, not a method: the pre-flight asks that it beat ``best_fixed`` by >= 2 points, or
no agent can show a 1-point gain at these sizes. On a drifting stream (``--env data=synth:wide_until=F``) the
reference is ``oracle_switch``: no augmentation while the training faces are as wide as test's, the oracle's recipe
from the round they narrow, held against every constant that ran, ``oracle`` and ``none`` included.

Writes ``OUT/learning.json`` (``methods.<name>.test_mean_f1`` and ``test_fp_rate`` per seed,
``compute_inner_steps``; ``search_cost_runs`` = a method's inner steps / one member's steps; paired
gaps with 95% intervals; the pre-flight) and the plots ``OUT/learning_{methods,levels,strengths}.png``, or
with ``--tag T`` a side study's ``OUT/learning_T.json`` (and ``learning_T_strengths.png`` where a method of
``STRENGTH_CHOOSERS`` ran: the strength offset chosen per round); with ``--out docs`` also the RESULTS.md section.
``--merge docs/learning_T.json`` adds a side study's methods when the methods both ran agree bit for bit.
``--probe docs/learning_T.json`` names the probe study whose runs ``fitted`` and the other ``PROBE_READERS`` read
(default ``PROBE_FILE``); the study file records it, and its store keeps their runs apart per probe file.
``--report --tag T --pair-with A B`` pairs side study T's methods by seed with those of side studies A and B that
trained another population size on the same seeds (an arm given more members to match another method's compute).
``--quick`` runs the ``smoke`` preset with one seed into ``runs/learning-quick/``. ``--report``
re-renders the plots and the section from ``OUT/learning.json`` (with ``--tag T``, a side study's table
and section); ``--thread-check`` reruns one method at 2 torch threads (the study runs 1 per worker) into
``OUT/learning_noise.json``.
"""
from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from torch import get_num_threads

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from adaptive_de.augment import OPS  # noqa: E402
from adaptive_de.config import parse_kv  # noqa: E402
from adaptive_de.data import load  # noqa: E402
from adaptive_de.errors import UserError, run_cli  # noqa: E402
from adaptive_de.presets import EnvConfig  # noqa: E402
from agents import make_agent  # noqa: E402
from agents.fitted import (  # noqa: E402
    BASE_OFFSET,
    EDIT_Z,
    PROBE,
    fitted_levels,
    fitted_menu,
    fitted_recipe,
    fitted_search,
    op_effects,
    probe_samples,
    read_probe,
    recipe_edits,
)
from agents.population import (  # noqa: E402
    FAMILIES,
    GRID,
    GRID_MENU,
    PRIOR_LEVELS,
    PRIOR_MODE,
    STRENGTH_MENU,
    STRENGTHS,
    family_changes,
    play_method,
    strength_frequencies,
    strength_index,
    strength_levels,
)
from benchmarks.family_bandit import EARLY, LATE  # noqa: E402
from benchmarks.headroom import MATCHED_LEVELS  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    DOCS,
    apply_threads,
    fmt_gap,
    fmt_mean_ci,
    fmt_pct,
    map_runs,
    paired,
    save_figure,
    study_parser,
    update_results_section,
    write_json,
)
from envs.population import exploit_count  # noqa: E402

LEARNERS = ("ppo", "ppo_flat", "ppo_return", "ppo_grid", "ppo_families", "ppo_levels", "fitted", "ppo_fitted",
            "ppo_fitted_often", "ppo_fitted_bandit")
# each learner's frozen prior: learning vs selection; fitted learns across runs, and its control is the recipe its
# learned edits start from
CONTROLS = {"ppo": "prior", "ppo_flat": "prior_flat", "ppo_return": "prior", "ppo_grid": "prior_grid",
            "ppo_families": "prior_families", "ppo_levels": "prior_levels", "fitted": "strength+2",
            "ppo_fitted": "prior_fitted", "ppo_fitted_often": "prior_fitted", "ppo_fitted_bandit": "prior_fitted"}
CONTROL_ROLES = {"fitted": "the recipe its edits start from"}  # what a control is, where it is not a frozen prior


def fixed_spec(levels: dict[str, int], mode: str = "uniform") -> str:
    """The ``fixed:`` agent spec of constant ``levels`` (op -> level; an op not named is off) and sampling mode."""
    return "fixed:" + ",".join(str(levels.get(op, 0)) for op in OPS) + f",{mode}"


def study_file(tag: str | None) -> str:
    """The study's JSON file name: ``learning.json``, or a side study's ``learning_TAG.json``."""
    return f"learning_{tag}.json" if tag else "learning.json"


# ppo's menu held constant: every member trains one strength offset for the whole run (exploit only). ppo against
# the best of them asks whether its schedule beats the best single choice it could have made; run on request.
HELD_STRENGTHS = {f"strength{offset:+d}": offset for offset in STRENGTHS if offset}  # method -> its offset
STRENGTH_SPECS = {m: fixed_spec(strength_levels(offset), PRIOR_MODE) for m, offset in HELD_STRENGTHS.items()}
NON_LEARNING = ("prior", "prior_flat", "prior_grid", "prior_families", "prior_levels", "prior_fitted", "pbt",
                "pbt_tune", "best_fixed", "strength_grid", "trivialaugment", "randaugment", "none", *STRENGTH_SPECS)
ORACLE = "oracle"
# On a drifting stream (synth's wide_until) the oracle is a schedule: no augmentation while the training faces are as
# wide as test's, the oracle's recipe from the round they narrow. Its pre-flight holds it against every constant that
# ran, the oracle's recipe and none (each one half of the schedule, held throughout) among them.
ORACLE_SWITCH = "oracle_switch"
# A diagnostic, in no comparison: every member draws fitted's recipe (from the study's probe runs) or the oracle's, at
# random, every round, so the two groups' rewards within a round show which recipe the round reward favours, the
# signal a learner choosing between them would follow, beside their final scores as constant populations.
ORACLE_MIX = "oracle_mix"
# ppo's schedule from the main study (seeds 0-7), replayed without learning on other seeds: ppo vs it is the
# in-run learning beyond the schedule ppo tends to find; run on request, on seeds outside the main study's
REPLAY = "ppo_replay"
# experience carried across runs: probe's runs (a random design over every op's level) in one side study, and fitted,
# strength+2 edited by the op effects those runs' rewards show, run on other seeds (agents.fitted)
FITTED, PROBE_STUDY = "fitted", "probe16"
PROBE_FILE = DOCS / study_file(PROBE_STUDY)  # the probe runs PROBE_READERS read unless a study names another
# the methods whose members choose an offset of fitted's recipe (agents.fitted.fitted_menu), reported as strengths:
# ppo started from fitted's recipe, updated about three times a run or every two rounds (reading the observation or
# not), and their frozen prior
FITTED_CHOOSERS = ("ppo_fitted", "ppo_fitted_often", "ppo_fitted_bandit", "prior_fitted")
# the methods that read those probe runs
PROBE_READERS = (FITTED, *FITTED_CHOOSERS)
# the methods whose runs depend on the probe file, checked against it before training and stored under its name: its
# readers, and oracle_mix, which takes fitted's recipe from it (counting its own steps only, not the probe's)
PROBE_DEPENDENT = (*PROBE_READERS, ORACLE_MIX)
# the methods whose schedules move over ppo's strength menu
STRENGTH_CHOOSERS = ("ppo", "ppo_flat", "ppo_return", REPLAY, "strength_grid")
# the learners whose levels are not one strength offset: a side study plots the levels of the first that ran per round
PER_OP_LEARNERS = ("ppo_levels", "ppo_families")
# the methods whose members train one strength offset per op family: a side study reports how their families moved
FAMILY_CHOOSERS = ("ppo_families", "prior_families")
# the methods whose members train best_fixed's grid candidates
GRID_CHOOSERS = ("best_fixed", "ppo_grid", "prior_grid")
# Further paired gaps, reported where both ran; each pair differs in what its comment says (one thing, but for the
# last, a reading that sums two):
ONE_CHANGE_PAIRS = (
    ("ppo_flat", "ppo"),  # the prior the learner starts from
    ("ppo_return", "ppo"),  # the credit: the rest of the rollout's rewards, or the round's own
    ("ppo", REPLAY),  # ppo's learning within the run, beyond its typical schedule
    (REPLAY, "prior"),  # that schedule, transferred, vs the prior it grew from
    ("pbt_tune", "pbt"),  # Ray Tune's PBT cross-checks the in-house one
    ("prior_fitted", "fitted"),  # fitted's recipe drawn with the prior's spread every round, or held
    ("ppo_fitted", "fitted"),  # the spread and the learning on top of it, against the recipe held
    ("ppo_fitted_often", "ppo_fitted"),  # the update size: every two rounds, or about three times a run
    ("ppo_fitted_bandit", "ppo_fitted_often"),  # the policy's input: none (one distribution), or the observation
    (ORACLE_SWITCH, ORACLE),  # the drifting stream's schedule, or its late half held from the start
    (ORACLE_SWITCH, "none"),  # the schedule, or its early half held to the end
)
PREFLIGHT = "preflight_oracle_vs_best_constant"  # the comparisons key of the pre-flight target
# The pre-flight's baseline: the best population of constant recipes that ran, a grid with selection (best_fixed,
# strength_grid) or one recipe for every member (strength+K, or fitted's recipe from the probe runs), so that at every
# size the oracle is held against the strongest constant measured there, not only against best_fixed's four candidates.
CONSTANT_POPULATIONS = ("best_fixed", "strength_grid", *STRENGTH_SPECS, FITTED)
ORACLE_LEVELS = {op: MATCHED_LEVELS.get(op, 0) for op in OPS}  # every op's level, as ORACLE_SPEC sets them
ORACLE_SPEC = fixed_spec(ORACLE_LEVELS)
SWITCH_CONSTANTS = (*CONSTANT_POPULATIONS, ORACLE, "none")
METHODS = (*LEARNERS, *NON_LEARNING, REPLAY, PROBE, ORACLE, ORACLE_SWITCH, ORACLE_MIX)
# What the issue names, the pre-flight's oracle and nothing else, so that 3 seeds fit the 100-minute target on 2 cores;
# ppo_levels and prior_levels (the per-op learner and its control), ppo_families and prior_families (one offset per op
# family, and its control), ppo_flat and prior_flat (ppo from a flat prior and its control) and pbt_tune (Ray Tune's
# PBT) run on request.
DEFAULT_METHODS = ("ppo", "prior", "pbt", "best_fixed", "trivialaugment", "randaugment", "none", ORACLE)
STUDY_MINUTES = 100  # the issue-12 target for 3 seeds on the 2-core CPU
SECTION = "Learning quality: the agent in a population run vs fixed recipes at equal compute (issue 12)"


def method_task(preset: str, env: dict[str, Any], method: str, seed: int,
                store: Path | None = None, probe: Path = PROBE_FILE) -> dict[str, Any]:
    """One method's population run on one seed (module level: ``--jobs`` workers call it); ``PROBE_READERS`` read
    the probe runs in ``probe``.

    With a ``store`` folder, a finished run's result is written there and a stored one is read back
    instead of rerun, so a study killed after hours resumes with ``--resume`` and loses only the runs
    in flight.
    """
    path = None if store is None else stored_run(store, method, seed, probe)
    if path is not None and path.exists():
        return json.loads(path.read_text())
    from envs import PopulationEnv

    if method == "pbt_tune":  # Ray Tune's PBT drives its own trials: no PopulationEnv
        from agents.pbt_tune import run_pbt_tune
        from envs.face_parsing import build_trainer
        config = EnvConfig.from_preset(preset, **{**env, "seed": seed})
        test = load(config.data, "test", size=build_trainer(config).image_size)
        row = run_pbt_tune(config, test, seed=seed)
    else:
        population = PopulationEnv(preset, **{**env, "seed": seed})
        test = load(population.config.data, "test", size=population.reference.image_size)
        specs = {ORACLE: ORACLE_SPEC, REPLAY: f"replay:{DOCS / study_file(None)}", **STRENGTH_SPECS,
                 **{m: f"{m}:{probe}" for m in PROBE_READERS}}
        if method == ORACLE_SWITCH:
            specs[method] = switch_spec(population)
        if method == ORACLE_MIX:
            specs[method] = mix_spec(probe, seed)
        agent = make_agent(specs.get(method, method), population, seed=seed)
        row = play_method(population, agent, test)
    row["torch_threads"] = get_num_threads()  # a run's numbers depend on it, so runs pair only at one count
    print(f"{method:>15} seed {seed}: test mean F1 {100 * row['test_mean_f1']:.2f} "
          f"({row['wall_seconds']:.0f} s, {row['compute_inner_steps']} inner steps)", flush=True)
    result = {"method": method, "seed": seed, "row": row}
    if path is not None:
        write_json(path.name, result, folder=path.parent)
    return result


def switch_spec(population: Any) -> str:
    """``oracle_switch``'s agent spec for a population on a drifting stream: no augmentation until the round the
    stream narrows, the oracle's recipe from then on; a UserError where the stream does not drift or narrows within a
    round."""
    train, rounds = population.reference.data["train"], population.config.rounds
    switch = train.early_until * rounds
    if train.early is None or switch != round(switch):
        raise UserError(f"{ORACLE_SWITCH} needs a training stream that narrows at the end of a round (synth option "
                        f"wide_until a multiple of 1/{rounds}), got wide_until={train.early_until}")
    return f"switch:{round(switch)}/{fixed_spec({}).removeprefix('fixed:')}/{ORACLE_SPEC.removeprefix('fixed:')}"


def mix_spec(probe: Path, seed: int) -> str:
    """``oracle_mix``'s agent spec: ``fitted``'s recipe from the probe runs in ``probe`` or the oracle's, drawn for
    every member every round."""
    fitted = fixed_spec(fitted_search(str(probe), seed=seed)[0], PRIOR_MODE)
    return f"mix:{fitted.removeprefix('fixed:')}/{ORACLE_SPEC.removeprefix('fixed:')}"


def stored_run(store: Path, method: str, seed: int, probe: Path = PROBE_FILE) -> Path:
    """Where a study's store keeps one finished run; a ``PROBE_DEPENDENT`` run is named by its probe file too, so runs
    that read different probes never stand in for each other."""
    name = f"{method}@{probe.stem}" if method in PROBE_DEPENDENT else method
    return store / f"{name}-seed{seed}.json"


def run_store(preset: str, env: dict[str, Any], resume: bool) -> Path:
    """The study's per-run results, one folder per preset and env options; emptied unless resuming."""
    name = "-".join([preset, *(f"{k}={v}" for k, v in sorted(env.items()))])
    store = Path("runs/learning-study") / name
    if not resume:
        shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True, exist_ok=True)
    return store


def warmup_task(preset: str, env: dict[str, Any], seed: int) -> None:
    """Train (or find cached) the seed's CE warm-up, so the methods' runs do not race to train it."""
    from envs.face_parsing import build_trainer

    build_trainer(EnvConfig.from_preset(preset, **{**env, "seed": seed}))


def main(argv: list[str] | None = None) -> None:
    parser = study_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--env", nargs="*", metavar="K=V", help="env options over the preset's, e.g. rounds=8")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(METHODS))
    parser.add_argument("--out", default=None, help="folder of the results and plots (default docs)")
    parser.add_argument("--tag", help="write learning_TAG.json (and its strength plot): a side study")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs a killed study finished (runs/learning-study/); rerun the rest")
    parser.add_argument("--merge", nargs="+", type=Path, default=[], metavar="FILE",
                        help="add the methods of side studies (OUT/learning_T.json) with the same preset, env and "
                             "seeds, if every method both ran scored the same bit for bit")
    parser.add_argument("--report", action="store_true",
                        help="only re-render the plots and RESULTS section from OUT/learning.json, or with --tag "
                             "a side study's section from OUT/learning_TAG.json (no training)")
    parser.add_argument("--pair-with", nargs="+", default=[], metavar="TAG",
                        help="with --report --tag: pair the side study's methods by seed with those of side studies "
                             "TAG that ran the same design and seeds at another population size (members)")
    parser.add_argument("--probe", type=Path, default=PROBE_FILE, metavar="FILE",
                        help=f"the probe study whose runs {', '.join(PROBE_READERS)} read (default {PROBE_FILE})")
    parser.add_argument("--thread-check", action="store_true",
                        help="only rerun `prior` on the study's first seed with 2 torch threads and compare it with "
                             "the study's single-thread figure: OUT/learning_noise.json")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    preset, seeds = ("smoke", [0]) if args.quick else (args.preset, args.seeds)
    out = Path(args.out or ("runs/learning-quick" if args.quick else DOCS))
    if args.thread_check:
        return thread_check(out)
    if args.pair_with and not (args.report and args.tag):
        raise UserError("--pair-with goes with --report --tag T: it pairs a side study that has run")
    if args.report:
        data = read_study(out, args.tag)
        if args.pair_with:
            data["paired_with"] = check_pairing(out, data, args.pair_with)
            data["search_runs"] = pinned_search_runs(out, data)
        data["comparisons"] = comparisons(data["methods"])  # derived from the scores: a comparison added since shows
        publish(data, out, args.tag)
        write_json(study_file(args.tag), data, folder=out)  # after the render: a file it cannot render stays as it was
        return None
    env = parse_kv(args.env)
    config = EnvConfig.from_preset(preset, **env)
    from envs.population import check_population
    check_population(config)
    if len(seeds) != len(set(seeds)):
        raise UserError(f"--seeds repeats a seed: {seeds}")
    readers = [m for m in PROBE_DEPENDENT if m in args.methods]
    for seed in seeds if readers else ():  # a probe that is no study file, or trained on a seed, fails before training
        fitted_search(str(args.probe), seed=seed)
    start = time.perf_counter()
    store = run_store(preset, env, args.resume)
    # a seed whose runs are all stored needs no warm-up
    pending = [seed for seed in seeds if not all(stored_run(store, m, seed, args.probe).exists()
                                                  for m in args.methods)]
    map_runs(warmup_task, [(preset, env, seed) for seed in pending], args.jobs)
    # learners first: the longest tasks, so the pool's last tasks are short ones
    tasks = [(preset, env, method, seed, store, args.probe) for method in args.methods for seed in seeds]
    results = map_runs(method_task, tasks, args.jobs)
    methods: dict[str, dict[str, Any]] = {}
    schedules: dict[str, list] = {}
    for result in sorted(results, key=lambda r: r["seed"]):
        row = result["row"]
        m = methods.setdefault(result["method"], {"test_mean_f1": [], "test_fp_rate": [], "best_member": [],
                                                  "torch_threads": [],
                                                  "compute_inner_steps": row["compute_inner_steps"]})
        m["test_mean_f1"].append(row["test_mean_f1"])
        m["test_fp_rate"].append(row["test_fp_rate"])
        m["best_member"].append(row["best_member"])
        m["torch_threads"].append(row.get("torch_threads"))  # None: a run stored before it was kept
        schedules.setdefault(result["method"], []).append(row["schedule"])
    merged = {str(path): merge_side_study(methods, schedules, path, (preset, env, seeds)) for path in args.merge}
    methods = {m: methods[m] for m in METHODS if m in methods}
    data = {"machine": machine_info(), "preset": preset, "env": env, "seeds": seeds, "merged_from": merged,
            "sizes": {"members": config.members, "rounds": config.rounds, "steps_per_round": config.steps_per_round,
                      "exploit_every": config.exploit_every, "warmup_steps": config.pretrain_steps,
                      "reward_subset": config.val_subset},
            "search_cost_runs": config.members, "wall_seconds": round(time.perf_counter() - start),
            "resumed": args.resume, "jobs": args.jobs,
            "run_seconds": round(sum(r["row"]["wall_seconds"] for r in results)),
            "methods": methods, "comparisons": comparisons(methods), "schedules": schedules,
            **({"probe": args.probe.as_posix()} if readers else {})}
    write_json(study_file(args.tag), data, folder=out)
    publish(data, out, args.tag)


def publish(data: dict[str, Any], out: Path, tag: str | None) -> None:
    """The table on stdout; the main study's plots; in docs/, the study's RESULTS.md section."""
    arms = size_arms(out, data)  # a side study's pairs at another population size (--pair-with), else none
    if not tag:
        plot_methods(data, out)
        plot_levels(data["schedules"].get("ppo"), out)
    else:
        learner = per_op_learner(data)
        if learner:
            plot_levels(data["schedules"][learner], out, tag, learner)
        plot_effects(data, out, tag)
        plot_size_pairs(arms, data, out, tag)
    plot_strengths(data, out, tag)
    print(table(data))
    if out == DOCS:
        if tag:
            update_results_section(f"Learning study, side run `{tag}`",
                                   side_report(data, tag) + size_pairs(arms, data, tag) + other_cpu_reruns(out, data))
        else:
            update_results_section(SECTION, report(data, read_noise(out), side_studies(out, data)))


def merge_side_study(methods: dict[str, Any], schedules: dict[str, list], path: Path,
                     design: tuple[str, dict[str, Any], list[int]]) -> list[str]:
    """Add the methods of a side study (``--tag``) that this study did not run; return their names.

    Only a side study of the same preset, env options and seeds, whose every method that this study also
    ran scored the same per seed bit for bit (a seeded CPU run is reproducible on one CPU model; another
    model's kernels round differently): then both ran the same runs on equivalent code, and its other
    methods pair by seed with these.
    """
    if not path.is_file():
        raise UserError(f"{path} does not exist")
    side = json.loads(path.read_text())
    if (side["preset"], side["env"], side["seeds"]) != design:
        raise UserError(f"{path} ran preset {side['preset']}, env {side['env']}, seeds {side['seeds']}; this study "
                        f"runs {design[0]}, {design[1]}, {design[2]}")
    shared = [m for m in side["methods"] if m in methods]
    if not shared:
        raise UserError(f"{path} shares no method with this study, so nothing shows that its runs pair with these")
    for m in shared:
        if side["methods"][m]["test_mean_f1"] != methods[m]["test_mean_f1"]:
            there, here = side.get("machine", {}).get("cpu"), machine_info()["cpu"]
            cpus = f" (there on {there}, here on {here}: their kernels round differently)" if there not in (
                None, here) else ""
            raise UserError(f"{path}: {m} scored {side['methods'][m]['test_mean_f1']} there and "
                            f"{methods[m]['test_mean_f1']} here{cpus}; not the same runs, so its methods do not pair")
    added = [m for m in side["methods"] if m not in methods]
    for m in added:
        methods[m] = side["methods"][m]
        schedules[m] = side.get("schedules", {}).get(m, [])
    return added


def study_probe(data: dict[str, Any]) -> Path:
    """The probe study whose runs the study's ``PROBE_READERS`` read (``PROBE_FILE`` for a study before ``--probe``)."""
    return Path(data.get("probe", PROBE_FILE))


def probe_readers(methods: Any) -> list[str]:
    """The ``PROBE_READERS`` among ``methods`` (names, or a study's ``methods`` dict)."""
    return [m for m in PROBE_READERS if m in methods]


def paired_probe(studies: list[dict[str, Any]]) -> Path:
    """The one probe file (``check_pairing``) that the ``PROBE_READERS`` of paired studies read; ``PROBE_FILE`` if
    none of them ran one."""
    return next((study_probe(s) for s in studies if probe_readers(s["methods"])), PROBE_FILE)


def figure_file(kind: str, tag: str | None) -> str:
    """The study's ``kind`` figure (``strengths``, ``levels``): ``learning_KIND.png``, or ``learning_TAG_KIND.png``."""
    return f"learning_{tag}_{kind}.png" if tag else f"learning_{kind}.png"


def per_op_learner(data: dict[str, Any]) -> str | None:
    """The first of ``PER_OP_LEARNERS`` that ran in the study (its levels are plotted per round), or None."""
    return next((m for m in PER_OP_LEARNERS if data["schedules"].get(m)), None)


def read_study(out: Path, tag: str | None = None) -> dict[str, Any]:
    path = out / study_file(tag)
    if not path.exists():
        raise UserError(f"{path} does not exist: run the study first")
    return json.loads(path.read_text())


def read_noise(out: Path) -> dict[str, Any] | None:
    path = out / "learning_noise.json"
    return json.loads(path.read_text()) if path.exists() else None


def same_design(out: Path, data: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    """The study files in ``out`` (``learning*.json``) of ``data``'s preset and env options, as (path, data)."""
    found = []
    for path in sorted(out.glob("learning*.json")):
        study = json.loads(path.read_text())
        if (study.get("preset"), study.get("env")) == (data["preset"], data["env"]):
            found.append((path, study))
    return found


def side_studies(out: Path, data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The side studies (``--tag``) in ``out`` of the main study's preset and env options that ran ``ppo`` against a
    non-learning method, as (tag, data): the main section points to their verdicts, which may differ from its own."""
    return [(path.stem.removeprefix("learning_"), side) for path, side in same_design(out, data)
            if path.name != study_file(None) and "ppo_vs_best_non_learning" in side.get("comparisons", {})]


def other_cpu_reruns(out: Path, data: dict[str, Any]) -> str:
    """Bullets for the runs (method, seed) this study shares with a study in ``out`` run on another CPU model: the
    difference of each, in points (here - there). The same seeded run rounds differently on another CPU's kernels."""
    cpu, lines = data["machine"]["cpu"], []
    for path, other in same_design(out, data):
        if other.get("machine", {}).get("cpu") in (None, cpu):
            continue
        there = {m: dict(zip(other["seeds"], v["test_mean_f1"], strict=True)) for m, v in other["methods"].items()}
        for m, v in data["methods"].items():
            diffs = [f"{100 * (score - there[m][seed]):+.2f}" for seed, score in zip(data["seeds"], v["test_mean_f1"],
                                                                                      strict=True)
                     if seed in there.get(m, {})]
            if diffs:
                lines.append(f"- `{m}` vs {path.name} (on {other['machine']['cpu']}), per shared seed: "
                             f"{', '.join(diffs)}\n")
    return ("\nThe same seeded runs on another CPU model, here minus there (points):\n" + "".join(lines)
            ) if lines else ""


def check_pairing(out: Path, data: dict[str, Any], tags: list[str]) -> list[str]:
    """``tags``, once checked to be side studies in ``out`` whose runs pair by seed with ``data``'s although they
    trained another population size: the same preset, CPU model and env options but ``members`` (one size for all of
    them), between them ``data``'s seeds, each once, each seed's runs at one torch thread count where recorded, and
    one probe file read where ``PROBE_READERS`` ran. Raise UserError otherwise, before anything is written."""
    seeds, sizes, probes, ours = [], set(), set(), run_threads(data)
    for tag in tags:
        other = read_study(out, tag)
        sizes.add(other["sizes"]["members"])
        if probe_readers(other["methods"]):
            probes.add(study_probe(other).name)
        mismatch = [] if other["preset"] == data["preset"] else [f"preset {other['preset']} (here {data['preset']})"]
        if without_members(other["env"]) != without_members(data["env"]):
            mismatch.append(f"env {other['env']} (here {data['env']}), beyond members")
        if other["machine"]["cpu"] != data["machine"]["cpu"]:
            mismatch.append(f"CPU {other['machine']['cpu']} (here {data['machine']['cpu']})")
        mismatch += thread_mismatches(run_threads(other), ours)
        if mismatch:
            raise UserError(f"{study_file(tag)} cannot pair by seed with this study: it ran {'; '.join(mismatch)}")
        seeds += other["seeds"]
    if len(sizes) > 1:
        raise UserError(f"the studies {', '.join(tags)} ran populations of {sorted(sizes)} members: pair with one size")
    if len(probes) > 1:
        raise UserError(f"the studies {', '.join(tags)} read the probe files {', '.join(sorted(probes))}: pair with "
                        "studies that read one")
    if sorted(seeds) != sorted(data["seeds"]):
        raise UserError(f"the studies {', '.join(tags)} ran seeds {sorted(seeds)}; pairing needs this study's "
                        f"{sorted(data['seeds'])}, each once")
    return list(tags)


def run_threads(data: dict[str, Any]) -> dict[int, set[int]]:
    """Each seed's torch thread counts over the study's runs that recorded one (older runs did not)."""
    counts: dict[int, set[int]] = {}
    for m in data["methods"].values():
        for seed, threads in zip(data["seeds"], m.get("torch_threads", []), strict=False):
            if threads is not None:
                counts.setdefault(seed, set()).add(threads)
    return counts


def thread_mismatches(theirs: dict[int, set[int]], ours: dict[int, set[int]]) -> list[str]:
    """``check_pairing``'s mismatches for the seeds whose runs (``run_threads``) trained at more than one count."""
    def counts(threads: set[int]) -> str:
        return " and ".join(map(str, sorted(threads)))
    return [f"seed {seed} at {counts(theirs[seed])} torch thread(s) (here {counts(ours[seed])})"
            for seed in sorted(theirs.keys() & ours.keys()) if len(theirs[seed] | ours[seed]) > 1]


def without_members(env: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in env.items() if k != "members"}


def size_arms(out: Path, data: dict[str, Any]) -> list[dict[str, Any]]:
    """For a study paired with others (``paired_with``): each of their methods against each of this study's, as
    ``{"theirs", "ours", "gap", "compute", "shared", "members"}``, the gap paired by seed (theirs - ours, points) and
    ``members`` their population size. ``compute`` is their method's inner steps per run as counted; ``shared``, where
    that includes a search beyond the run's own steps, its steps with the search shared over ``runs``, the runs that
    reused it (``data["search_runs"]``, pinned when the pairing was first rendered, else ``search_runs``). The
    section and the plot of ``publish`` both use one call's arms."""
    tags = data.get("paired_with")
    if not tags:
        return []
    studies = [read_study(out, tag) for tag in tags]
    scores: dict[str, dict[int, float]] = {}
    for study in studies:
        for name, m in study["methods"].items():
            scores.setdefault(name, {}).update(zip(study["seeds"], m["test_mean_f1"], strict=True))
    z, runs_of = studies[0]["sizes"], {**search_runs(out, paired_probe(studies)), **data.get("search_runs", {})}
    own = z["members"] * z["rounds"] * z["steps_per_round"]  # a run's own inner steps at their population size
    arms = []
    for theirs, by_seed in scores.items():
        if set(by_seed) != set(data["seeds"]):  # ran in only some of the paired studies: no pair for every seed
            continue
        compute, runs = studies[0]["methods"][theirs]["compute_inner_steps"], runs_of[theirs]
        for ours, m in data["methods"].items():
            gap = paired([by_seed[seed] for seed in data["seeds"]], m["test_mean_f1"])
            arms.append({"theirs": theirs, "ours": ours, "gap": gap, "compute": compute, "runs": runs,
                         "shared": own + (compute - own) / runs, "members": z["members"]})
    return arms


def search_runs(out: Path, probe: Path = PROBE_FILE) -> dict[str, int]:
    """Per method in ``out``'s studies, the runs that reused its search: for a method that reads probe runs
    (``PROBE_READERS``), every run of any of them that read ``probe``; else its own runs."""
    runs, readers = method_runs(out), method_runs(out, probe)
    shared = sum(readers.get(m, 0) for m in PROBE_READERS)
    return {m: shared if m in PROBE_READERS else n for m, n in runs.items()}


def pinned_search_runs(out: Path, data: dict[str, Any]) -> dict[str, int]:
    """``search_runs`` of the paired studies' methods as the study's first rendering of the pairing counted them (kept
    in ``data``), so that a later run reusing the search does not change a section already published."""
    pinned, studies = data.get("search_runs", {}), [read_study(out, tag) for tag in data["paired_with"]]
    counts = search_runs(out, paired_probe(studies))
    return {m: pinned.get(m, counts[m]) for study in studies for m in study["methods"]}


def method_runs(out: Path, probe: Path | None = None) -> dict[str, int]:
    """How many runs of each method ``out``'s study files hold, each (preset, env options, seed) once: a run merged
    into another study (``--merge``) is the same run. With ``probe``, only the studies that read that probe file
    (``study_probe``; a probe file is known by its name)."""
    runs: dict[str, set[tuple[str, str, int]]] = {}
    for path in out.glob("learning*.json"):
        study = json.loads(path.read_text())
        if probe is not None and "methods" in study and study_probe(study).name != probe.name:
            continue
        for method in study.get("methods", {}):  # learning_noise.json holds no study; the oldest, no env options
            design = (study["preset"], json.dumps(study.get("env"), sort_keys=True))
            runs.setdefault(method, set()).update((*design, seed) for seed in study["seeds"])
    return {method: len(found) for method, found in runs.items()}


def size_pairs(arms: list[dict[str, Any]], data: dict[str, Any], tag: str) -> str:
    """Bullets for ``size_arms``' arms: each gap with both sides' members and inner steps per run, and for a learner
    the target's verdict where the arm spent at least the learner's steps (counted, or with its search shared): at
    equal compute where they match, and said so where the arm spent more, which favours the arm."""
    if not arms:
        return ""
    z, lines = data["sizes"], []
    for arm in arms:
        ours = data["methods"][arm["ours"]]["compute_inner_steps"]
        steps = f"{arm['compute']:,}" + (f" ({arm['shared']:,.0f} with its search shared over its {arm['runs']} "
                                         f"runs)" if arm["shared"] != arm["compute"] else "")
        if arm["theirs"] not in LEARNERS:
            outcome = f"{fmt_gap(arm['gap'])} points"
        elif ours >= arm["shared"]:
            if ours == arm["compute"]:
                basis = "at equal compute"
            elif ours == arm["shared"]:
                basis = "at equal compute with its search shared"
            else:
                basis = "with more steps for the arm, which favours it"
            outcome = f"{basis}, target >= +1 with the interval above 0: {verdict(arm['gap'], 1)}"
        else:
            outcome = f"{fmt_gap(arm['gap'])} points, **at unequal compute**, so no verdict"
        lines.append(f"- `{arm['theirs']}` ({arm['members']} members, {' + '.join(data['paired_with'])}) - "
                     f"`{arm['ours']}` ({z['members']} members, here), inner steps per run {steps} against "
                     f"{ours:,}: {outcome}\n")
    return (f"\nPaired by seed with the runs of {', '.join(f'`{t}`' for t in data['paired_with'])}, the same seeds, "
            f"warm-ups, batches and selection split at another population size (`--pair-with`), test mean F1:\n"
            + "".join(lines) + f"\n![pairs]({figure_file('pairs', tag)})\n")


def plot_size_pairs(arms: list[dict[str, Any]], data: dict[str, Any], out: Path, tag: str) -> None:
    """``size_arms``' gaps: bar = mean, whisker = 95% interval, dots = seeds."""
    if arms:
        members = data["sizes"]["members"]
        plot_gaps([f"{a['theirs']} ({a['members']} members)\n- {a['ours']} ({members} members)" for a in arms],
                  [a["gap"] for a in arms], ["tab:blue" if a["theirs"] in LEARNERS else "tab:gray" for a in arms],
                  "test mean F1 gap (points)", figure_file("pairs", tag), out)


def thread_check(out: Path) -> None:
    """The same run at 2 torch threads instead of the study's 1: the part of the noise that is not the seed."""
    import torch

    data = read_study(out)
    seed = data["seeds"][0]
    torch.set_num_threads(2)
    row = method_task(data["preset"], data["env"], "prior", seed)["row"]
    single = data["methods"]["prior"]["test_mean_f1"][0]
    write_json("learning_noise.json", {"method": "prior", "seed": seed, "test_mean_f1_1_thread": single,
                                       "test_mean_f1_2_threads": row["test_mean_f1"],
                                       "difference_points": 100 * (row["test_mean_f1"] - single)}, folder=out)


def best_by_mean(names: list[str], methods: dict[str, Any]) -> str:
    """The method among ``names`` with the highest mean test mean F1 over the seeds."""
    return max(names, key=lambda m: statistics.fmean(methods[m]["test_mean_f1"]))


def comparisons(methods: dict[str, Any]) -> dict[str, Any]:
    """The paired gaps the targets name: ppo vs the best non-learning method and vs its frozen prior; the
    oracle vs the best of ``CONSTANT_POPULATIONS`` that ran (the pre-flight, against ``best_constant``), or on a
    drifting stream ``oracle_switch`` vs the best of ``SWITCH_CONSTANTS`` (``oracle`` names which)."""
    present = [m for m in NON_LEARNING if m in methods]
    out: dict[str, Any] = {}
    if present:
        best = best_by_mean(present, methods)
        out["best_non_learning"] = best
        for learner in (m for m in LEARNERS if m in methods):
            out[f"{learner}_vs_best_non_learning"] = paired(methods[learner]["test_mean_f1"],
                                                           methods[best]["test_mean_f1"])
    for learner, control in CONTROLS.items():
        if learner in methods and control in methods:
            out[f"{learner}_vs_{control}"] = paired(methods[learner]["test_mean_f1"], methods[control]["test_mean_f1"])
    oracle, pool = (ORACLE_SWITCH, SWITCH_CONSTANTS) if ORACLE_SWITCH in methods else (ORACLE, CONSTANT_POPULATIONS)
    constants = [m for m in pool if m in methods]
    if oracle in methods and constants:
        out["oracle"], out["best_constant"] = oracle, best_by_mean(constants, methods)
        out[PREFLIGHT] = paired(methods[oracle]["test_mean_f1"], methods[out["best_constant"]]["test_mean_f1"])
    for a, b in ONE_CHANGE_PAIRS:
        if a in methods and b in methods:
            out[f"{a}_vs_{b}"] = paired(methods[a]["test_mean_f1"], methods[b]["test_mean_f1"])
    return out


def side_report(data: dict[str, Any], tag: str) -> str:
    """A RESULTS.md section for a side run (``--tag``): its sizes, table and paired comparisons."""
    z, m, means = data["sizes"], data["machine"], strength_means(data)
    targeted = {PREFLIGHT, *(f"{learner}_vs_{other}" for learner, control in CONTROLS.items()
                             for other in ("best_non_learning", control))}
    gaps = "".join(f"- `{name}`: {fmt_gap(gap)} points\n" for name, gap in data["comparisons"].items()
                   if isinstance(gap, dict) and name not in targeted) + other_non_learning_gaps(data)
    return (f"Written by `python -m benchmarks.learning --tag {tag}` (docs/{study_file(tag)}) on {m['cpu']}, "
            f"{m['cores']} cores, {provenance(data)}: seeds {data['seeds']}, {z['members']} members x {z['rounds']} "
            f"rounds x {z['steps_per_round']} steps, exploit every {z['exploit_every']} rounds, "
            f"{start_text(data)}, env options {env_options(data)}. A seeded CPU run is the same bit for bit in every "
            f"study of the same sizes and code on the same CPU model at the same torch thread count "
            f"(1 in a `--jobs` worker or with `--threads 1`), so its methods pair by seed with another study's "
            f"that ran on {m['cpu']} at that count too.\n\n" + table(data)
            + "\n\nPaired gaps (test mean F1), points:\n"
            + targets(data, preflight=PREFLIGHT in data["comparisons"]) + gaps
            + strength_schedules(means) + offset_contrast(data) + mix_contrast(data) + member_agreement(data)
            + grid_choices(data) + family_moves(data)
            + probe_source(data) + probe_fit(data)
            + study_time(data) + strengths_link(means, tag)
            + (f"\n![levels]({figure_file('levels', tag)})\n" if per_op_learner(data) else "")
            + (f"\n![op effects]({figure_file('effects', tag)})\n" if data["schedules"].get(PROBE) else ""))


def probe_source(data: dict[str, Any]) -> str:
    """For a study where ``PROBE_READERS`` ran: the probe study they read (``study_probe``), its seeds and inner steps,
    and the recipe it gives ``fitted``, as edits of ``strength+2``."""
    readers = probe_readers(data["methods"])
    if not readers:
        return ""
    source = study_probe(data)
    probe = read_probe(str(source))
    return (f"- {', '.join(f'`{m}`' for m in readers)} read the `{PROBE}` runs in {source.as_posix()} (seeds "
            f"{probe['seeds']}, {probe['compute_inner_steps']:,} inner steps); the recipe `{FITTED}` trains from them, "
            f"its edits of `strength+{BASE_OFFSET}`: {recipe_edits(fitted_recipe(probe), strength_levels(BASE_OFFSET))}"
            "\n")


def probe_fit(data: dict[str, Any]) -> str:
    """For a study that ran ``probe``: each op's fitted effect on a round's reward (``agents.fitted.op_effects``) and
    the recipe ``fitted`` trains from these runs, with its edits of ``strength+2`` held against the oracle's levels."""
    runs = data["schedules"].get(PROBE)
    if not runs:
        return ""
    samples = probe_samples(runs)
    fit = probe_effects(data)
    if fit is None:
        return f"- `{PROBE}`: {len(samples[1])} member-rounds, too few to fit {len(OPS)} op effects\n"
    levels, base = fitted_levels(**fit), strength_levels(BASE_OFFSET)
    effects = ", ".join(f"{op} {e:+.3f} ± {EDIT_Z * se:.3f}" for op, e, se in zip(OPS, fit["effect"], fit["se"],
                                                                                  strict=True))
    edits = [op for op in OPS if levels[op] != base[op]]
    agree = sum(np.sign(levels[op] - base[op]) == np.sign(ORACLE_LEVELS[op] - base[op]) for op in edits)
    return (f"- `{PROBE}`'s op effects on a round's reward, points per level ± 95% half-width, from {len(samples[1])} "
            f"member-rounds of {len(runs)} runs: {effects}\n"
            f"- The recipe `{FITTED}` trains from these runs, its edits of `strength+{BASE_OFFSET}`: "
            f"{recipe_edits(levels, base)}; "
            f"{agree} of {len(edits)} in the direction of the oracle's level\n")


def probe_effects(data: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """``op_effects`` of the study's ``probe`` runs; None if it ran none or too few member-rounds to fit."""
    runs = data["schedules"].get(PROBE)
    try:
        return op_effects(*probe_samples(runs)) if runs else None
    except UserError:  # a smoke check's few rounds
        return None


def plot_effects(data: dict[str, Any], out: Path, tag: str | None) -> None:
    """For a study that ran ``probe``: each op's fitted effect per level with its 95% interval, the ops ``fitted``
    edits marked, so a reader sees which ops the rewards told apart."""
    fit = probe_effects(data)
    if fit is None:
        return
    levels, base = fitted_levels(**fit), strength_levels(BASE_OFFSET)
    colours = ["tab:green" if levels[op] > base[op] else "tab:red" if levels[op] < base[op] else "tab:gray"
               for op in OPS]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(range(len(OPS)), fit["effect"], yerr=EDIT_Z * fit["se"], color=colours, capsize=3)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(OPS)), OPS, rotation=60, ha="right")
    ax.set(ylabel="reward points per level",
           title=f"{PROBE}: each op's effect on a round's reward (95% CI; green/red: {FITTED} sets it to max/0)")
    fig.tight_layout()
    save_figure(fig, figure_file("effects", tag), folder=out)


def family_moves(data: dict[str, Any]) -> str:
    """A bullet per method of ``FAMILY_CHOOSERS`` that ran: each op family's levels from ``ppo_families``' start
    (``family_changes``; mean over members and seeds) in the first four rounds and the last four, and the move between
    them (mean [95% CI] over seeds): the measure of the design check, ``benchmarks.family_bandit``."""
    lines = []
    for method in (m for m in FAMILY_CHOOSERS if data["schedules"].get(m)):
        changes = np.array([[family_changes(r["levels"]).mean(axis=0) for r in run]
                            for run in data["schedules"][method]])  # seeds x rounds x families
        early, late = changes[:, EARLY].mean(axis=1), changes[:, LATE].mean(axis=1)  # seeds x families
        parts = []
        for i, family in enumerate(FAMILIES):
            parts.append(f"{family} {early[:, i].mean():+.2f} -> {late[:, i].mean():+.2f} "
                         f"(moved {fmt_mean_ci((late[:, i] - early[:, i]).tolist())})")
        lines.append(f"- `{method}`, each family's levels from the families' start at +2 (mean over its ops), rounds "
                     f"1-4 -> last four rounds: {'; '.join(parts)}\n")
    return "".join(lines)


def other_non_learning_gaps(data: dict[str, Any]) -> str:
    """Bullets for each learner's paired gap to the non-learning methods its targets do not name (all but the best
    one and its frozen prior), so a side study's every comparison is printed, not worked out by hand."""
    methods, best = data["methods"], data["comparisons"].get("best_non_learning")
    f1 = {name: m["test_mean_f1"] for name, m in methods.items()}
    return "".join(f"- `{learner}` vs `{m}`: {fmt_gap(paired(f1[learner], f1[m]))} points\n"
                   for learner, control in CONTROLS.items() if learner in methods
                   for m in NON_LEARNING if m in methods and m not in (best, control))


def env_options(data: dict[str, Any]) -> str:
    """The study's ``--env`` options as typed (``data=synth:shift=0`` names another task than the default)."""
    return " ".join(f"`{k}={v}`" for k, v in sorted(data["env"].items()))


def start_text(data: dict[str, Any]) -> str:
    """Where the study's members start: the seed's CE warm-up, or a fresh model (``--env start=scratch``)."""
    if EnvConfig.from_preset(data["preset"], **data["env"]).start == "scratch":
        return "from scratch (a fresh model, no warm-up)"
    return f"from the seed's {data['sizes']['warmup_steps']}-step CE warm-up"


def provenance(data: dict[str, Any]) -> str:
    """How the study's numbers came about: its wall time, or that it read stored runs back (``--resume``)."""
    return "resumed from its stored runs" if data.get("resumed") else f"in {data['wall_seconds'] / 60:.0f} min"


def table(data: dict[str, Any]) -> str:
    """Each method's test scores and compute; the gap to the best non-learning method, paired by seed."""
    methods, best = data["methods"], data["comparisons"].get("best_non_learning")
    rows = ["| method | test mean F1 (%) | test FP rate (%) | inner steps | vs best non-learning, points "
            "(mean [95% CI]) |", "|---|---|---|---|---|"]
    for name, m in methods.items():
        gap = "" if best is None or name == best else fmt_gap(paired(m["test_mean_f1"],
                                                                      methods[best]["test_mean_f1"]))
        rows.append(f"| {name} | {fmt_pct(m['test_mean_f1'])} | {fmt_pct(m['test_fp_rate'])} | "
                    f"{m['compute_inner_steps']:,} | {gap} |")
    return "\n".join(rows)


def meets(gap: dict[str, Any], target: float) -> bool:
    """The targets' rule: a mean gap of at least ``target`` points with its 95% interval above 0."""
    return gap["mean"] >= target and gap["ci95"] is not None and gap["ci95"][0] > 0


def verdict(gap: dict[str, Any] | None, target: float) -> str:
    if gap is None:
        return "not measured"
    return f"**{fmt_gap(gap)}**: {'met' if meets(gap, target) else 'NOT met'}"


def noise_floor(data: dict[str, Any], noise: dict[str, Any] | None) -> str:
    """How large a gap the study can resolve: the seeds' spread, the paired gaps' spread, the threads check."""
    methods = data["methods"]
    spread = statistics.fmean(statistics.stdev(m["test_mean_f1"]) * 100 for m in methods.values())
    gap = data["comparisons"].get("ppo_vs_best_non_learning")
    text = (f"Noise floor: a method's test mean F1 spreads by {spread:.1f} points (std over seeds, mean over methods): "
            "seeds differ in their warm-up, so methods are compared paired by seed.")
    if gap is not None and gap["ci95"] is not None:
        half = (gap["ci95"][1] - gap["ci95"][0]) / 2
        text += (f" The paired ppo gaps spread by {statistics.stdev(gap['gaps']):.2f} points, so with "
                 f"{len(gap['gaps'])} seeds the 95% interval's half-width is {half:.2f} points: a gap smaller than "
                 "that is not resolved.")
    if noise is not None:
        text += (f" The same run (`{noise['method']}`, seed {noise['seed']}) at 2 torch threads instead of 1 differs "
                 f"by {noise['difference_points']:+.3f} points; a rerun at the same thread count is bit-identical "
                 "on the same CPU model (tests/test_run.py resumes a killed run to the same numbers).")
    return text


def report(data: dict[str, Any], noise: dict[str, Any] | None = None,
           sides: list[tuple[str, dict[str, Any]]] = ()) -> str:
    """The RESULTS.md section; ``sides``: side studies whose `ppo` verdicts it lists after its own."""
    s, machine, means = data["sizes"], data["machine"], strength_means(data)
    where = machine["cuda_device"] or f"{machine['cpu']} ({machine['cores']} cores, CPU)"
    return (f"Written by `python -m benchmarks.learning` on {where} {provenance(data)}: preset "
            f"`{data['preset']}`, seeds {data['seeds']}. Every method trains a population of {s['members']} members x "
            f"{s['rounds']} rounds x {s['steps_per_round']} steps {start_text(data)} "
            f"(exploit every {s['exploit_every']} rounds, reward subset of {s['reward_subset']} val images, the rest "
            f"of val selects the final member); the test split is scored once per method. Mean ± std over seeds; "
            f"gaps are paired by seed, with the 95% t-interval of their mean." + merge_note(data) + "\n\n"
            + table(data) + "\n\n" + targets(data) + strength_schedules(means) + grid_choices(data) + study_time(data)
            + "".join(f"- Side study `{tag}` (seeds {side['seeds']}, methods {', '.join(side['methods'])}): `ppo` vs "
                      f"the best non-learning method `{side['comparisons']['best_non_learning']}`: "
                      f"{verdict(side['comparisons']['ppo_vs_best_non_learning'], 1)}{unrun_note(side['methods'])}"
                      f"{replay_note(side)}\n"
                      for tag, side in sides)
            + "\n"
            + (noise_floor(data, noise) if len(data["seeds"]) > 1 else "") +
            "\n\n![methods](learning_methods.png)\n\n![levels](learning_levels.png)\n"
            + strengths_link(means, None))


def replay_note(data: dict[str, Any]) -> str:
    """For a study that ran ``ppo_replay``: ppo's gap to it (the in-run learning beyond ppo's typical schedule)."""
    gap = data["comparisons"].get(f"ppo_vs_{REPLAY}")
    return "" if gap is None else f"; `ppo` vs `{REPLAY}` (its schedule replayed, no learning): {fmt_gap(gap)}"


def grid_choices(data: dict[str, Any]) -> str:
    """Bullets for the methods that choose among the grid candidates (``GRID_CHOOSERS``) where they ran: the candidate
    each seed's final model trained in the last round, so a reader sees which recipe selection (``best_fixed``) or
    learning (``ppo_grid``) found, and the share of its members on each candidate, round by round."""
    names = {tuple(levels[:len(OPS)]): name for name, levels in GRID.items()}
    lines = []
    for method in GRID_CHOOSERS:
        runs, row = data["schedules"].get(method), data["methods"].get(method)
        if not runs or "best_member" not in (row or {}):
            continue
        seeds: dict[str, list[int]] = {}
        for seed, run, best in zip(data["seeds"], runs, row["best_member"], strict=True):
            seeds.setdefault(names.get(tuple(run[-1]["levels"][best]), "another recipe"), []).append(seed)
        lines.append(f"- `{method}`'s final model trained " + "; ".join(
            f"`{name}` on seed{'s' * (len(s) > 1)} {', '.join(map(str, s))}" for name, s in seeds.items()) + "\n")
        shares = {name: [np.mean([names.get(tuple(levels)) == name for run in runs for levels in run[r]["levels"]])
                         for r in range(len(runs[0]))] for name in GRID_MENU}
        lines.append(f"- `{method}`'s share of members per round: " + "; ".join(
            f"`{name}` {', '.join(f'{x:.2f}' for x in share)}" for name, share in shares.items()) + "\n")
    return "".join(lines)


def chooser_menus(data: dict[str, Any]) -> dict[str, dict]:
    """The strength menus of ``STRENGTH_CHOOSERS`` and ``FITTED_CHOOSERS`` (theirs, as the study's runs built it)."""
    menus = {m: STRENGTH_MENU for m in STRENGTH_CHOOSERS}
    if any(data["schedules"].get(m) for m in FITTED_CHOOSERS):
        recipe = fitted_recipe(read_probe(str(study_probe(data))))
        menus.update(dict.fromkeys(FITTED_CHOOSERS, fitted_menu(recipe)))
    return menus


def strength_means(data: dict[str, Any]) -> dict[str, np.ndarray]:
    """For ``STRENGTH_CHOOSERS`` and ``FITTED_CHOOSERS`` where they ran, the mean strength offset their members took in
    each round: an array of rounds, then per seed (rows) and their mean (the last row). The prior's centre is 0; for
    ``FITTED_CHOOSERS`` +2 is fitted's recipe."""
    out = {}
    for m, menu in chooser_menus(data).items():
        runs = data["schedules"].get(m)
        if not runs:
            continue
        try:  # the last row pools every member (the same mean, rounded as the replay's table is)
            out[m] = np.stack([strength_frequencies(group, menu) @ np.array(STRENGTHS, dtype=float)
                               for group in ([[run] for run in runs] + [runs])])
        except KeyError:  # chose per-op levels, not strength offsets (ppo before commit 6ffb51f)
            continue
    return out


def strength_schedules(means: dict[str, np.ndarray]) -> str:
    """Bullets for ``strength_means``' methods: the mean strength offset their members took in each round, over
    seeds, so a reader sees the schedule a study's ppo found and the one it replayed; for ``FITTED_CHOOSERS``, also
    how far it moved from the run's first quarter to its last (``fitted_move``)."""
    return "".join(f"- `{m}`'s mean strength offset per round: {', '.join(f'{x:+.2f}' for x in rows[-1])}"
                   + (fitted_move(rows[:-1]) if m in FITTED_CHOOSERS else "") + "\n" for m, rows in means.items())


def fitted_move(rows: np.ndarray) -> str:
    """For one method's offsets per round (seeds x rounds): where +2, ``fitted``'s recipe, lies, and the move from the
    run's first quarter of rounds to its last quarter (at least four rounds each, as the studies at 8 and 16 rounds
    read it), mean [95% CI] over seeds."""
    n = max(4, rows.shape[1] // 4)
    early, late = rows[:, :n].mean(axis=1), rows[:, -n:].mean(axis=1)
    return (f" (+{BASE_OFFSET} is `{FITTED}`'s recipe); rounds 1-{n} {early.mean():+.2f} -> last {n} "
            f"{late.mean():+.2f} (moved {fmt_mean_ci((late - early).tolist())})")


def study_exploit(data: dict[str, Any]) -> tuple[int, int]:
    """A study's exploit schedule, rebuilt from its preset and env options: ``exploit_every`` and the members an
    exploit replaces (``envs.population.exploit_count``), as ``agents.fitted.overwritten`` replays it."""
    config = EnvConfig.from_preset(data["preset"], **data["env"])
    return config.exploit_every, exploit_count(config)


def group_gaps(runs: list, label: Callable[[tuple[int, ...]], Any], first: Any, second: Any, lag: int = 0,
               exploit: tuple[int, int] | None = None) -> list[tuple[int, float]]:
    """For runs whose members chose independently of their models, every round t (0-based) in which some members'
    levels ``label`` as ``first`` and others as ``second``: (t, the first group's mean reward minus the second's). With
    ``lag`` k > 0 a member's reward is the sum of its rewards in rounds t..t+k (``agents.fitted.probe_samples``' lagged
    reward, which needs the runs' ``exploit`` schedule and leaves out members an exploit replaced within those rounds).
    """
    gaps: list[tuple[int, float]] = []
    for run in runs:
        levels, rewards, groups = probe_samples([run], lag, exploit)
        chosen = np.array([label(tuple(int(v) for v in row)) for row in levels], dtype=object)
        for t in np.unique(groups):
            here = groups == t
            if (chosen[here] == first).any() and (chosen[here] == second).any():
                gaps.append((int(t), rewards[here & (chosen == first)].mean()
                             - rewards[here & (chosen == second)].mean()))
    return gaps


def offset_gaps(data: dict[str, Any], lag: int = 0) -> list[tuple[int, float]]:
    """For a study where ``FITTED_CHOOSERS`` ran, ``group_gaps`` of members that drew offset +1 against members at +2
    (the recipe), in their round and ``lag`` rounds later. Members draw their offsets independently of their models,
    so this estimates what one step down from the recipe does to the value."""
    ran = [m for m in FITTED_CHOOSERS if data["schedules"].get(m)]
    if not ran:
        return []
    offsets = strength_index(chooser_menus(data)[ran[0]])
    down, recipe = STRENGTHS.index(BASE_OFFSET - 1), STRENGTHS.index(BASE_OFFSET)
    exploit = study_exploit(data) if lag else None
    return [gap for m in ran
            for gap in group_gaps(data["schedules"][m], offsets.__getitem__, down, recipe, lag, exploit)]


def gap_summary(values: Any) -> dict[str, float]:
    """Mean, standard error (nan for one value) and count of per-round gaps such as ``offset_gaps``'."""
    x = np.asarray(values, dtype=float)
    return {"mean": float(x.mean()), "se": float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan"),
            "rounds": len(x)}


def halves_text(gaps: list[tuple[int, float]], rounds: int) -> str:
    """Per-round gaps (``group_gaps``') as "all ...; rounds 1-h ...; rounds h+1-n ...", each mean ± standard error
    over its rounds, for runs of ``rounds`` rounds."""
    at, values = np.array(gaps).T
    half = rounds // 2

    def part(mask: np.ndarray) -> str:
        row = gap_summary(values[mask])
        return f"{row['mean']:+.2f} ± {row['se']:.2f} ({row['rounds']} rounds)"

    return f"all {part(at >= 0)}; rounds 1-{half} {part(at < half)}; rounds {half + 1}-{rounds} {part(at >= half)}"


def probe_gap(data: dict[str, Any], first: dict[str, int], second: dict[str, int]) -> str:
    """What the linear fit of the study's probe runs (``op_effects`` over every round) predicts for members on
    ``first``'s levels against members on ``second``'s in one round's reward, with its standard error from the ops'
    own errors (the probe's random design leaves them nearly uncorrelated): a fit made around the probe's uniform
    levels, here read at the recipes a study actually trained."""
    fit = op_effects(*read_probe(str(study_probe(data)))["samples"])
    step = np.array([first[op] - second[op] for op in OPS], dtype=float)
    return (f"the linear fit of the probe runs in {study_probe(data).as_posix()} predicts "
            f"{fit['effect'] @ step:+.2f} ± {np.sqrt(step ** 2 @ fit['se'] ** 2):.2f}")


def offset_contrast(data: dict[str, Any]) -> str:
    """For a study where ``FITTED_CHOOSERS`` ran, a bullet: ``offset_gaps`` in the round itself, mean ± standard error
    over those rounds, in the whole run and in each half ("" where no round holds both offsets)."""
    gaps = offset_gaps(data)
    if not gaps:
        return ""
    ran = [m for m in FITTED_CHOOSERS if data["schedules"].get(m)]
    n = len(data["schedules"][ran[0]][0])  # the run's rounds
    items = [levels for levels, _ in chooser_menus(data)[ran[0]].values()]  # in STRENGTHS order
    down, recipe = (items[STRENGTHS.index(offset)] for offset in (BASE_OFFSET - 1, BASE_OFFSET))
    return (f"- Within-round reward, members at {BASE_OFFSET - 1:+d} minus members at {BASE_OFFSET:+d} (`{FITTED}`'s "
            f"recipe), {', '.join(ran)} pooled, mean ± standard error over rounds: {halves_text(gaps, n)}; "
            f"{probe_gap(data, down, recipe)}\n")


def mix_gaps(data: dict[str, Any], lag: int = 0) -> list[tuple[int, float]]:
    """For a study where ``ORACLE_MIX`` ran, ``group_gaps`` of its members on the oracle's recipe against those on
    ``fitted``'s, in their round and ``lag`` rounds later."""
    oracle = tuple(ORACLE_LEVELS.values())
    return group_gaps(data["schedules"].get(ORACLE_MIX, []), oracle.__eq__, True, False, lag,
                      study_exploit(data) if lag else None)


def mix_contrast(data: dict[str, Any], lags: int = 2) -> str:
    """For a study where ``ORACLE_MIX`` ran, a bullet: ``mix_gaps`` at lags 0..``lags``, each in the whole run and in
    each half; the round's own mean gap with its 95% interval, and how many rounds that hold both recipes resolve a
    gap of that size from 0 at 95% (from its per-round spread; in runs' worth at the rate these runs held both) (""
    where it did not run)."""
    runs = data["schedules"].get(ORACLE_MIX)
    if not runs:
        return ""
    n = len(runs[0])
    by_lag = [mix_gaps(data, lag) for lag in range(lags + 1)]
    lines = [f"  - {'in the round itself' if lag == 0 else f'summed over the round and the next {lag}'}: "
             f"{halves_text(gaps, n)}" for lag, gaps in enumerate(by_lag)]
    gaps = np.array([gap for _, gap in by_lag[0]])
    spread = float(gaps.std(ddof=1))
    mean, half = float(gaps.mean()), 1.96 * spread / math.sqrt(len(gaps))
    needed, per_run = math.ceil((1.96 * spread / abs(mean)) ** 2), len(gaps) / len(runs)
    fitted = fitted_recipe(read_probe(str(study_probe(data))))
    return (f"- Within-round reward of `{ORACLE_MIX}`'s members (each drew the oracle's recipe or `{FITTED}`'s every "
            "round), the oracle's minus `fitted`'s, mean ± standard error over rounds (later rounds leave out members "
            "an exploit replaced):\n" + "\n".join(lines) + "\n"
            f"  - in the round itself, 95% interval (mean ± 1.96 standard errors): {mean - half:+.2f} to "
            f"{mean + half:+.2f}; a round's gap spreads by {spread:.2f} points, so {needed} rounds that hold both "
            f"recipes resolve a mean gap of this size from 0 at 95%: {needed / per_run:.1f} runs' worth at these "
            f"runs' {per_run:.1f} such rounds a run; {probe_gap(data, ORACLE_LEVELS, fitted)}\n")


def member_agreement(data: dict[str, Any]) -> str:
    """For a study where ``FITTED_CHOOSERS`` ran, a bullet per method: the share of the last six rounds in which all
    its members drew one offset, and per seed the round from which they all kept one offset to the end (with that
    offset; "never" where the last round's members differ). A learner that locks its members onto one offset stops
    comparing offsets within a round ("" where none ran)."""
    lines = []
    for m in (m for m in FITTED_CHOOSERS if data["schedules"].get(m)):
        offsets = strength_index(chooser_menus(data)[m])
        shares, locks = [], []
        for run in data["schedules"][m]:
            # per round, the offset every member drew, or None where they differ
            agreed = [row[0] if len(set(row)) == 1 else None
                      for row in ([STRENGTHS[offsets[tuple(levels)]] for levels in r["levels"]] for r in run)]
            shares.append(np.mean([a is not None for a in agreed[-6:]]))
            start = len(agreed)
            while agreed[-1] is not None and start > 0 and agreed[start - 1] == agreed[-1]:
                start -= 1
            locks.append("never" if agreed[-1] is None else f"{start + 1} ({agreed[-1]:+d})")
        lines.append(f"- `{m}`, all members on one offset: {np.mean(shares):.2f} of the last six rounds; held to the "
                     f"end from round (offset), per seed: {', '.join(locks)}\n")
    return "".join(lines)


def strengths_link(means: dict[str, np.ndarray], tag: str | None) -> str:
    """The section's link to ``plot_strengths``' figure, which exists only where ``strength_means`` found a schedule."""
    return f"\n![strengths]({figure_file('strengths', tag)})\n" if means else ""


def held_strengths(methods: dict[str, Any]) -> dict[str, int]:
    """The ``strength+K`` methods (ppo's menu held constant) among ``methods``, with their offsets K."""
    return {m: offset for m, offset in HELD_STRENGTHS.items() if m in methods}


def plot_strengths(data: dict[str, Any], out: Path, tag: str | None) -> None:
    """The strength offset ``STRENGTH_CHOOSERS`` chose per round, each seed thin and their mean thick, beside
    the offsets held all run by the study's ``strength+K`` methods; every label gives the method's test mean F1."""
    means = strength_means(data)
    if not means:
        return
    score = {m: f"{100 * np.mean(v['test_mean_f1']):.1f}% test F1" for m, v in data["methods"].items()}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    rounds = np.arange(1, next(iter(means.values())).shape[1] + 1)
    for (m, values), colour in zip(means.items(), ("C0", "C1", "C6"), strict=False):
        ax.plot(rounds, values[:-1].T, color=colour, alpha=0.25, linewidth=1)
        ax.plot(rounds, values[-1], color=colour, linewidth=2.5,
                label=f"{m} (mean of {len(values) - 1} seeds), {score[m]}")
    for (m, offset), colour in zip(held_strengths(data["methods"]).items(), ("C2", "C3", "C4", "C5"), strict=False):
        ax.axhline(offset, color=colour, linestyle="--", linewidth=1.5, label=f"{m} held all run, {score[m]}")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="round", ylabel="strength offset (members' mean)",
           ylim=(min(STRENGTHS) - 0.1, max(STRENGTHS) + 0.1))
    ax.set_title(f"Strength chosen per round, {env_options(data).replace('`', '')}", fontsize=10)
    ax.legend(loc="best", fontsize=8)
    save_figure(fig, figure_file("strengths", tag), folder=out)


def unrun_note(methods: dict[str, Any]) -> str:
    """For a study that left out some of the default non-learning methods: which, since its "best non-learning"
    method is then the best of fewer."""
    missing = [m for m in DEFAULT_METHODS if m in NON_LEARNING and m not in methods]
    return f" (best of the methods run here; not run: {', '.join(missing)})" if missing else ""


def targets(data: dict[str, Any], preflight: bool = True) -> str:
    """A bullet per target with its verdict: the pre-flight (``preflight``; "not measured" without the oracle) and,
    for each learner that ran, its gap to the best non-learning method and to its frozen prior."""
    c, methods = data["comparisons"], data["methods"]
    lines = [f"- Pre-flight, `{c.get('oracle', ORACLE)}` vs the best constant-recipe population "
             f"`{c.get('best_constant')}` (target >= +2): {verdict(c.get(PREFLIGHT), 2)}\n"] if preflight else []
    for learner, control in CONTROLS.items():
        if learner in methods:
            best = c.get("best_non_learning")
            lines.append(f"- `{learner}` vs the best non-learning method: not measured (none ran)\n" if best is None
                         else f"- `{learner}` vs the best non-learning method `{best}` (target >= +1, interval above "
                         f"0): {verdict(c.get(f'{learner}_vs_best_non_learning'), 1)}{unrun_note(methods)}"
                         f"{unequal_compute(methods, learner, best)}\n")
            lines.append(f"- `{learner}` vs {CONTROL_ROLES.get(learner, 'its frozen prior')} `{control}` (target >= "
                         f"+1, interval above 0): {verdict(c.get(f'{learner}_vs_{control}'), 1)}"
                         f"{unequal_compute(methods, learner, control)}\n")
    return "".join(lines)


def unequal_compute(methods: dict[str, Any], a: str, b: str | None) -> str:
    """A warning for a gap between two methods that spent different inner steps: not an equal-compute comparison."""
    if b not in methods or methods[a]["compute_inner_steps"] == methods[b]["compute_inner_steps"]:
        return ""
    return (f"; **at unequal compute** ({methods[a]['compute_inner_steps']:,} inner steps against "
            f"{methods[b]['compute_inner_steps']:,}), so not the target's equal-compute comparison")


def study_time(data: dict[str, Any]) -> str:
    """A bullet on the study's time against its target (100 min for 3 seeds on the 2-core CPU): measured only for a
    study run from scratch; a resumed one reused runs whose machine load it does not know."""
    if data["machine"].get("cuda_device") or not data.get("jobs"):
        return ""
    if data.get("resumed"):
        return (f"- Study time: resumed from stored runs ({data['run_seconds'] / 60:.0f} worker-minutes, run at "
                "various times and loads), so not timed here; a study run from scratch reports its wall time\n")
    wall = data["wall_seconds"] / 60
    met = "met" if wall <= STUDY_MINUTES * len(data["seeds"]) / 3 else "NOT met"
    merged = sum(len(added) for added in data.get("merged_from", {}).values())  # run by their own side studies
    return (f"- Study time (target <= {STUDY_MINUTES} min for 3 seeds): {len(data['methods']) - merged} methods x "
            f"{len(data['seeds'])} seeds, warm-ups included, took **{wall:.0f} min** on {data['jobs']} workers "
            f"(measured): **{met}**\n")


def merge_note(data: dict[str, Any]) -> str:
    """A sentence naming the methods taken from side studies (``--merge``), if any."""
    parts = [f"{', '.join(f'`{m}`' for m in added)} from {Path(path).name}"
             for path, added in data.get("merged_from", {}).items() if added]
    if not parts:
        return ""
    return (" Merged (`--merge`): " + "; ".join(parts) + ", whose other methods scored the same as here on every "
            "seed, bit for bit: the same runs on equivalent code.")


def plot_methods(data: dict[str, Any], out: Path) -> None:
    """Each method's test mean F1 minus the best non-learning method's, paired by seed, with its 95% interval."""
    methods, best = data["methods"], data["comparisons"].get("best_non_learning")
    if best is None:
        return
    names = [m for m in methods if m != best]
    gaps = [paired(methods[m]["test_mean_f1"], methods[best]["test_mean_f1"]) for m in names]
    colors = ["tab:green" if m in (ORACLE, ORACLE_SWITCH) else "tab:blue" if m in LEARNERS else "tab:gray"
              for m in names]
    plot_gaps(names, gaps, colors, f"test mean F1 − {best} (points)", "learning_methods.png", out)


def plot_gaps(names: list[str], gaps: list[dict[str, Any]], colors: list[str], ylabel: str, file: str,
              out: Path) -> None:
    """Paired gaps (``paired``) as bars of their mean, whiskers of their 95% interval and a dot per seed, beside the
    target's +1 line."""
    fig, ax = plt.subplots(figsize=(max(5.0, 1.5 + 0.9 * len(names)), 4))
    for i, (gap, color) in enumerate(zip(gaps, colors, strict=True)):
        ax.bar(i, gap["mean"], color=color, alpha=0.6)
        if gap["ci95"] is not None:
            low, high = gap["ci95"]
            ax.errorbar(i, gap["mean"], yerr=[[gap["mean"] - low], [high - gap["mean"]]], color="black", capsize=4)
        ax.plot([i] * len(gap["gaps"]), gap["gaps"], "k.", alpha=0.7)
    ax.axhline(0, color="black", lw=0.8)
    ax.axhline(1, color="tab:red", lw=0.8, ls="--", label="target: +1 point")
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set(ylabel=ylabel, title="Paired by seed: bar = mean, whisker = 95% CI, dots = seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, file, folder=out)


def plot_levels(schedules: list | None, out: Path, tag: str | None = None, method: str = "ppo") -> None:
    """The levels ``method`` chose per round (mean over members and seeds), what it learned during the run, beside
    the prior's centres, the strongest constant of ppo's menu and the oracle's levels (the recipe that knows the test
    nuisances) as three last columns."""
    if not schedules:
        return
    levels = np.array([[np.mean(r["levels"], axis=0) for r in schedule] for schedule in schedules], dtype=float)
    strongest = strength_levels(max(STRENGTHS))  # the strongest constant of ppo's menu
    references = np.array([[PRIOR_LEVELS[op] for op in OPS], [strongest[op] for op in OPS],
                           list(ORACLE_LEVELS.values())], dtype=float)
    gap = np.full((1, len(OPS)), np.nan)  # a blank column between the run and the references
    rounds = len(levels[0])
    fig, ax = plt.subplots(figsize=(8, 4))
    im = ax.imshow(np.concatenate([levels.mean(0), gap, references]).T, aspect="auto", cmap="viridis", vmin=0, vmax=4)
    ax.set_xticks([*range(rounds), rounds + 1, rounds + 2, rounds + 3],
                  [*map(str, range(1, rounds + 1)), "prior", f"strength{max(STRENGTHS):+d}", "oracle"], rotation=90)
    ax.set(yticks=range(len(OPS)), yticklabels=OPS, xlabel="round",
           title=f"Levels {method} chose (mean over members, seeds)")
    fig.colorbar(im, ax=ax, label="level")
    save_figure(fig, figure_file("levels", tag), folder=out)


if __name__ == "__main__":
    sys.exit(run_cli(main))  # a bad --env option or preset: one error line, exit code 2
