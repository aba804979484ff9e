# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scheduling a roll's rounds: batch k of every deployment at once, one thread per deployment, within the
roll's share of the request-rate ceiling; and stopping every deployment's roll."""

from __future__ import annotations

import concurrent.futures

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import checkpoints
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.runner import DeploymentRunner
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.state import now

# A roll's waits grow by 5 % of the time already waited (a module's by 10 %): its learned durations place the
# first look, and a late end is noticed sooner.
POLL_GROWTH = 0.05


def run_round(client_factory, state, state_file, index, say, health=None):
    """Run batch ``index`` of every deployment that is not stopped, deployments in parallel. ``health``: a
    HealthGate whose instance URLs each batch checks once ReadyRole."""
    options = state["options"]
    # Batch k is round k, except after a checkpoint, where a deployment may have no batch in a round.
    positions = {dep_key: checkpoints.batch_position(dep, index) for dep_key, dep in state["deployments"].items()}
    runners = [dep_key for dep_key, dep in sorted(state["deployments"].items())
               if not dep["stopped"] and positions[dep_key] is not None]
    if not runners:
        return 0
    state["last_round"] = index
    roll_started = state.get("started") or now()

    def work(dep_key):
        client = client_factory(fair_poll_interval(options, len(runners)))
        try:
            DeploymentRunner(client, state, state_file, dep_key, options, say, health).run_batch(
                positions[dep_key], roll_started)
        finally:
            client.close()

    _in_parallel(work, runners, options, state, state_file)
    return len(runners)


def run_all_rounds(client_factory, state, state_file, say, health=None):
    """Run every batch of every deployment with no barrier between rounds: each deployment goes on to its next
    batch as soon as its own is ReadyRole, instead of waiting for the slowest deployment of the round. Only
    for rolls with nothing to run between rounds (no health URL of the roll's own; each instance's is checked by its
    batch); the availability bound is per deployment, so it holds the same. A checkpoint is a barrier: every deployment ends its part, the roll bakes, then the
    next part starts. Returns how many deployments rolled."""
    rolled = set()
    for first, last, part in checkpoints.spans(state):
        rolled.update(_run_span(client_factory, state, state_file, say, first, last, health))
        if part is not None and not pass_checkpoint(state, state_file, last, say):
            break
    return len(rolled)


def _run_span(client_factory, state, state_file, say, first, last, health=None):
    """Rounds ``first`` to ``last`` (a part of the roll), each deployment at its own pace; returns those that ran."""
    options = state["options"]
    mine = {dep_key: [(p, b.get("round", p)) for p, b in enumerate(dep["batches"]) if first <= b.get("round", p) <= last]
            for dep_key, dep in state["deployments"].items()}
    runners = [dep_key for dep_key, dep in sorted(state["deployments"].items()) if not dep["stopped"] and mine[dep_key]]
    if not runners:
        return []
    roll_started = state.get("started") or now()

    def work(dep_key):
        client = client_factory(fair_poll_interval(options, len(runners)))
        try:
            runner = DeploymentRunner(client, state, state_file, dep_key, options, say, health)
            for position, index in mine[dep_key]:
                if state["deployments"][dep_key]["stopped"]:
                    break
                state["last_round"] = max(state.get("last_round") or 0, index)
                runner.run_batch(position, roll_started)
        finally:
            client.close()

    _in_parallel(work, runners, options, state, state_file)
    return runners


def pass_checkpoint(state, state_file, index, say, gate=None):
    """After round ``index``: when it ends a part at a checkpoint, the bake (``gate``: the health gate, asked
    throughout). Returns False when the roll stops there: the gate failed during the bake (every deployment stops,
    as after a failed gate), or a deployment stopped in the part (the others do not go past the checkpoint)."""
    part = checkpoints.part_ending_at(state, index)
    if part is None:
        return True
    stopped = sorted(k for k, d in state["deployments"].items() if d["stopped"])
    if stopped:
        reason = "%s not passed: the roll of %s stopped before it" % (
            checkpoints.label(state["checkpoints"], part["checkpoint"]), ", ".join(stopped))
        for dep in state["deployments"].values():
            if not dep["stopped"]:
                dep.update(stopped=True, stop_reason=reason)
        state_file.save(state)
        return False
    if not checkpoints.part_ran(state, part):
        return True
    reason = checkpoints.bake(state, state_file, part, say, gate)
    if reason:
        stop_all(state, state_file, reason)
        return False
    return True


def fair_poll_interval(options, deployments):
    """The shortest polling interval for ``deployments`` rolling at once: each deployment's share of the
    request-rate ceiling. Before the roll has learned how long its operations take, every deployment polls on
    the growing schedule at once; faster than its share, their polls would only queue behind each other."""
    workers = min(deployments, options["max_parallel"] or deployments)
    return max(options["poll_interval"], workers / float(options.get("max_requests_per_second") or 40))


def _in_parallel(work, runners, options, state, state_file):
    # max_parallel 0: every deployment at once (the request-rate ceiling, not a thread count, bounds the load).
    workers = min(len(runners), options["max_parallel"] or len(runners))
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(work, dep_key) for dep_key in runners]:
                future.result()
    finally:
        state_file.save(state)


def stop_all(state, state_file, reason):
    """Stop every deployment's roll; the instances of the round just run carry the reason, since the check
    that failed (a health gate, a task after the round) judged them."""
    for dep in state["deployments"].values():
        if not dep["stopped"]:
            dep["stopped"] = True
            dep["stop_reason"] = reason
    last = state.get("last_round")
    if last is not None:
        for inst in state["instances"].values():
            if inst.get("round") == last and inst["outcome"] == "done" and not inst.get("resumed"):
                inst["after_round_failure"] = reason
    state_file.save(state)
