# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A roll's checkpoints (rolling_reimage_checkpoints): instance counts or percentages of the roll where it stops
part-way, bakes (rolling_reimage_checkpoint_delay, the health gate asked throughout), then pauses until the same
roll runs again, or goes on by itself (rolling_reimage_checkpoint_action). Reading the checkpoints, cutting the plan
into parts, the bake, and what the plan and the summary say about them. What is done is always the service's
history, so a paused roll continues exactly, on any machine."""

from __future__ import annotations

import fractions
import re
import time

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import health_gate
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.identity import instance_key
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.state import iso, now

ACTIONS = ("stop", "continue")
# A bake says what it waits for at least this often: an operator is never left guessing for more than 30 s.
SAY_EVERY = 20.0
_COUNT = re.compile(r"[0-9]+")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")


def parse(values):
    """rolling_reimage_checkpoints as given, checked before any request: a list of positive instance counts and
    percentages of the roll ("50%", 0 < N < 100). Returns [("count", n) or ("percent", Fraction)]."""
    if values in (None, ""):
        return []
    if not isinstance(values, (list, tuple)):
        raise InputError("rolling_reimage_checkpoints must be a list of instance counts and percentages of the roll, "
                         "like [1, \"50%%\"], not %r" % (values,))
    return [_parse_one(value) for value in values]


def _parse_one(value):
    problem = InputError("rolling_reimage_checkpoints: %r is neither a positive instance count nor a percentage of "
                         "the roll between 0 and 100 (exclusive), like 1 or \"50%%\"" % (value,))
    if isinstance(value, bool):
        raise problem
    if isinstance(value, int):
        if value < 1:
            raise problem
        return ("count", value)
    if not isinstance(value, str):
        raise problem
    text = value.strip()
    if _COUNT.fullmatch(text) and int(text) >= 1:
        return ("count", int(text))
    match = _PERCENT.fullmatch(text)
    if match and 0 < fractions.Fraction(match.group(1)) < 100:
        return ("percent", fractions.Fraction(match.group(1)))
    raise problem


def resolve(parsed, total):
    """The checkpoints as instance counts of a roll of ``total`` instances, ascending: a percentage rounds up (at
    least 1), counts at or above the total are dropped (the end of the roll is implicit), duplicates merge."""
    counts = set()
    for kind, number in parsed:
        if kind == "percent":
            product = number * total / 100
            number = max(1, -(-product.numerator // product.denominator))
        if number < total:
            counts.add(int(number))
    return sorted(counts)


def _order(deployments):
    """The keys of the instances still to do, in the order the batches run: round, deployment, place in its batch."""
    order = []
    for index in range(max([len(d["batches"]) for d in deployments.values()] + [0])):
        for dep_key in sorted(deployments):
            batches = deployments[dep_key]["batches"]
            if index < len(batches):
                order += [instance_key(dep_key, name) for name in batches[index]["instances"]]
    return order


def _group(keys, instances, batch_size):
    """One deployment's instances of one part, in batch order, as batches: one upgrade domain each, batch_size at
    most, as the plan groups them."""
    batches = []
    for key in keys:
        inst = instances[key]
        if batches and batches[-1]["upgrade_domain"] == inst["upgrade_domain"] and (
                not batch_size or len(batches[-1]["instances"]) < batch_size):
            batches[-1]["instances"].append(inst["instance"])
        else:
            batches.append({"upgrade_domain": inst["upgrade_domain"], "instances": [inst["instance"]]})
    return batches


def cut(deployments, instances, options):
    """Cut the plan at the checkpoints. Every batch gets its round (global, from 0). Without checkpoints, batch k is
    round k and this returns None. With them, the instances still to do, in batch order, are cut at each checkpoint
    not yet reached (minus what the roll already did): part 1 up to the first, and so on. Each part is batched as
    the plan batches, and its rounds come after the previous part's. With the action ``stop`` only the next part is
    planned: the instances of later parts wait (no round) for a later run, which plans again from the service's
    history. Returns what the state keeps under "checkpoints"."""
    for dep in deployments.values():
        for position, batch in enumerate(dep["batches"]):
            batch["round"] = position
    parsed = options.get("checkpoints") or []
    if not parsed:
        return None
    total = len(instances)
    counts = resolve(parsed, total)
    order = _order(deployments)
    done = total - len(order)
    parts, start = [], 0
    for number, count in enumerate(counts, 1):
        # A checkpoint whose bake an earlier run did not pass is met again before anything is sent: an empty part.
        if count > done or number == options.get("rebake"):
            parts.append({"number": number, "checkpoint": number, "upto": count, "keys": order[start:count - done]})
            start = count - done
    parts.append({"number": len(counts) + 1, "checkpoint": None, "upto": total, "keys": order[start:]})
    action = options.get("checkpoint_action") or "stop"
    planned = parts[:1] if action == "stop" else parts
    for dep in deployments.values():
        dep["batches"] = []
    first = 0
    for part in planned:
        rounds = 0
        for dep_key, dep in sorted(deployments.items()):
            batches = _group([k for k in part["keys"] if instances[k]["deployment"] == dep_key], instances,
                             options.get("batch_size"))
            for offset, batch in enumerate(batches):
                batch["round"] = first + offset
                for name in batch["instances"]:
                    instances[instance_key(dep_key, name)].update(round=first + offset, part=part["number"])
            dep["batches"] += batches
            rounds = max(rounds, len(batches))
        part.update(first_round=first, last_round=first + rounds - 1 if rounds else None, planned=True)
        first += rounds
    for part in parts[len(planned):]:
        part.update(first_round=None, last_round=None, planned=False)
        for key in part["keys"]:
            instances[key].update(round=None, part=part["number"], waiting=True)
    for part in parts:
        part["instances"] = len(part.pop("keys"))
    return {"counts": counts, "total": total, "done_before": done, "action": action,
            "delay": options.get("checkpoint_delay") or 0, "parts": parts, "bakes": [],
            "pause_at": planned[-1]["checkpoint"] if action == "stop" else None}


def rounds_of(deployments):
    """How many rounds the plan has: the last batch's round, plus one."""
    return max([b.get("round", p) + 1 for d in deployments.values() for p, b in enumerate(d["batches"])] + [0])


def batch_position(dep, index):
    """Where the batch of round ``index`` is in the deployment's batches (None when it has none that round)."""
    for position, batch in enumerate(dep["batches"]):
        if batch.get("round", position) == index:
            return position
    return None


def spans(state):
    """(first round, last round, the part or None) for each stretch of rounds between two checkpoints."""
    info = state.get("checkpoints")
    if not info:
        return [(0, state["rounds"] - 1, None)] if state["rounds"] else []
    return [(p["first_round"], p["last_round"], p) for p in info["parts"] if p["planned"] and p["last_round"] is not None]


def part_ending_at(state, index):
    """The part whose last round is ``index`` and which ends at a checkpoint, or None."""
    for _first, last, part in spans(state):
        if part is not None and last == index and part["checkpoint"]:
            return part
    return None


def part_ran(state, part):
    """Whether this run did anything to the part's instances (a part entirely done by another job needs no bake)."""
    return any(inst.get("part") == part["number"] and inst["outcome"] != "pending" and not inst.get("resumed")
               for inst in state["instances"].values())


def label(info, number):
    """How a checkpoint is named: checkpoint 1 of 2 (1 of 6 instances)."""
    return "checkpoint %d of %d (%d of %d instances)" % (
        number, len(info["counts"]), info["counts"][number - 1], info["total"])


def health_check(url, statuses, timeout, say, validate_certs=True, ca_path=None):
    """The health gate as the bake asks it: one GET; when it does not pass, says so, then the gate's own wait
    (rolling_reimage_health_timeout). Returns a function giving (healthy, sentence)."""
    shown = health_gate.shown_url(url)

    def check():
        status, what = health_gate.probe(url, validate_certs, ca_path)
        if status in statuses:
            return True, "health gate: %s %s" % (shown, what)
        say("health gate: %s %s during the bake; asking again every %gs for up to %ss (rolling_reimage_health_timeout)"
            % (shown, what, health_gate.INTERVAL, timeout))
        return health_gate.wait_healthy(url, statuses, timeout, validate_certs=validate_certs, ca_path=ca_path)
    return check


def bake(state, state_file, part, say, gate=None, sleep=time.sleep, clock=time.monotonic):
    """The bake at the checkpoint ending ``part``: rolling_reimage_checkpoint_delay seconds, with ``gate`` (a function
    giving (healthy, sentence)) asked at once, every health_gate.INTERVAL seconds and at the end; it says what it
    waits for every SAY_EVERY seconds. Its start and end are kept in the state for the report. Returns None, or
    why the roll stops (the gate failed)."""
    info = state["checkpoints"]
    name = label(info, part["checkpoint"])
    delay = info["delay"]
    then = "the next part" if info["action"] == "continue" else "the roll pauses until it runs again"
    record = {"checkpoint": part["checkpoint"], "start": now(), "end": None, "delay": delay, "outcome": "baking"}
    info["bakes"].append(record)
    state_file.save(state)
    say("%s reached: baking for %ds%s, then %s" % (
        name, delay, " with the health gate asked every %gs" % health_gate.INTERVAL if gate else "", then))
    started = said = next_check = clock()
    while True:
        elapsed = clock() - started
        final = elapsed >= delay
        if gate is not None and (final or clock() >= next_check):
            healthy, sentence = gate()
            if not healthy:
                record.update(end=now(), outcome="unhealthy")
                return "%s: the health gate failed during the bake, %ds in: %s" % (name, elapsed, sentence)
            next_check = clock() + health_gate.INTERVAL
        if final:
            break
        if clock() - said >= SAY_EVERY:
            said = clock()
            say("%s: baking, %ds of %ds%s, then %s" % (name, elapsed, delay, ", health gate passing" if gate else "",
                                                       then))
        wake = [started + delay, said + SAY_EVERY] + ([next_check] if gate is not None else [])
        sleep(max(0.0, min(wake) - clock()))
    record.update(end=now(), outcome="baked")
    state_file.save(state)
    say("%s: baked %ds%s" % (name, delay, ", the health gate passing throughout" if gate else ""))
    return None


def paused_at(state, stopped):
    """The checkpoint where this run paused, or None. A roll that stopped or left instances of its planned part
    untouched did not reach it: its waiting instances then count as untouched, like any instance the roll did not
    reach."""
    info = state.get("checkpoints") or {}
    waiting = [i for i in state["instances"].values() if i.get("waiting")]
    untouched = [i for i in state["instances"].values() if i["outcome"] == "pending" and not i.get("waiting")]
    if info.get("pause_at") and waiting and not stopped and not untouched:
        return info["pause_at"]
    for inst in waiting:
        inst["waiting"] = False
    return None


def summary(state, number):
    """What the summary and set_stats say at a paused checkpoint: which one, and exactly how to go on."""
    info = state["checkpoints"]
    since = iso(state.get("counts_since") or state.get("window_start"))
    return {"reached": number, "of": len(info["counts"]), "instances_done": info["counts"][number - 1],
            "instances": info["total"], "bakes": info["bakes"], "since": since,
            "how_to_continue": "run the same job again (the same hosts and operation, without rolling_reimage_fresh); "
                               "to continue it after rolling_reimage_resume_window or on another machine, add "
                               "-e rolling_reimage_since=%s" % since}


def waiting_message(state, where, check_mode=False):
    info = state["checkpoints"]
    return "%s: %s for the next part of the roll (checkpoint %d of %d)%s" % (
        where, "would be waiting" if check_mode else "waiting", info["pause_at"], len(info["counts"]),
        "; a later run of the same roll does it" if check_mode else
        ": run the same job again to go on (the summary says how)")


def plan_lines(state, index):
    """(lines before round ``index``, lines after it) of the plan as printed: where each part starts, and what
    happens at each checkpoint."""
    info = state.get("checkpoints")
    before, after = [], []
    if not info:
        return before, after
    if index == 0:
        before.append(_header(info))
    for first, last, part in spans(state) if info["counts"] else ():
        if first == index:
            before.append("part %d of %d: %d instance(s)%s:" % (
                part["number"], len(info["counts"]) + 1, part["instances"],
                ", up to %s" % label(info, part["checkpoint"]) if part["checkpoint"] else ", to the end of the roll"))
        if last == index and part["checkpoint"]:
            after.append("%s: bake %ds (the health gate asked throughout, when set), then %s" % (
                label(info, part["checkpoint"]), info["delay"],
                "go on" if info["action"] == "continue" else "pause: the roll stops here, successfully, and the next "
                "run of the same roll goes on"))
    return before, after


def _header(info):
    if not info["counts"]:
        return "checkpoints: none below the roll's %d instances" % info["total"]
    return "checkpoints at %s of %d instances (%d already done), action %s, bake %ds" % (
        ", ".join(str(c) for c in info["counts"]), info["total"], info["done_before"], info["action"], info["delay"])


def waiting_lines(state):
    """The later parts a paused roll leaves for later runs, as the plan prints them."""
    info = state.get("checkpoints")
    if not info:
        return []
    lines = [] if any(p["planned"] and p["last_round"] is not None for p in info["parts"]) else [_header(info)]
    for part in info["parts"]:
        if part["planned"]:
            continue
        names = sorted("%s/%s" % (i["deployment"], i["instance"]) for i in state["instances"].values()
                       if i.get("part") == part["number"] and i.get("waiting"))
        lines.append("part %d of %d (%s, by a later run of the same roll): %s" % (
            part["number"], len(info["counts"]) + 1,
            "up to " + label(info, part["checkpoint"]) if part["checkpoint"] else "to the end of the roll",
            ", ".join(names)))
    return lines
