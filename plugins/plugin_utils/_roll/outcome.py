# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a roll ended: each instance's row, the summary, what each host reports, and the table printed at the end."""

from __future__ import annotations

import math

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import shown
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import checkpoints
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.kinds import DEFAULT_KIND, FAILED_OUTCOMES, host_outcome_names, words
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.state import iso, now


def row_outcome(inst):
    """How an instance ended, for the table, the summary and the report: done, skipped, untouched, failed, or
    waiting (for a later part of a roll paused at a checkpoint)."""
    if inst["outcome"] == "done":
        return "skipped" if inst.get("resumed") or inst.get("adopted") else "done"
    if inst["outcome"] == "pending":
        return "waiting" if inst.get("waiting") else "untouched"
    return "failed"  # failed, or started by this run and never followed to its end


def summarize(state, state_file):
    """Close the roll: compute the outcome of every instance and host; returns the summary."""
    rows = []
    counts = {"done": 0, "failed": 0, "untouched": 0, "skipped": 0}
    stopped = {k: d["stop_reason"] for k, d in state["deployments"].items() if d["stopped"]}
    paused = checkpoints.paused_at(state, stopped)  # before the rows: a roll that did not reach it has no waiting
    if state.get("checkpoints"):
        counts["waiting"] = 0

    def order(key):
        inst = state["instances"][key]
        return inst["deployment"], inst["upgrade_domain"], key

    for key in sorted(state["instances"], key=order):
        inst = state["instances"][key]
        outcome = row_outcome(inst)
        counts[outcome] += 1
        rows.append({"host": inst["host"], "deployment": inst["deployment"], "instance": inst["instance"],
                     "role": inst["role"], "upgrade_domain": inst["upgrade_domain"], "request_id": inst["request_id"],
                     "start": iso(inst["start"]), "end": iso(inst["end"]), "outcome": outcome,
                     "error": inst["error"]["message"] if inst.get("error") else None})
    # Failures within the tolerance (rolling_reimage_max_failures) do not stop a deployment or fail the roll.
    state["status"] = "failed" if stopped or counts["untouched"] else "paused" if paused else "complete"
    state["finished"] = now()
    state_file.save(state)
    return {"status": state["status"], "operation": state.get("kind") or DEFAULT_KIND, "counts": counts,
            "stopped_deployments": stopped, "instances": rows, "state_path": state_file.path,
            "elapsed": round(state["finished"] - state["started"], 1), "hosts": host_outcomes(state),
            "rebuilt": bool(state.get("rebuilt")),
            "checkpoint": checkpoints.summary(state, paused) if paused else None,
            # On the service's clock: a roll that counts from here counts none of this one's operations as done.
            "new_roll_since": iso(math.ceil(state["finished"] + (state.get("clock_offset") or 0.0)))}


def host_outcomes(state, check_mode=False):
    """What each host of the roll reports: {host: {"outcome", "msg", ...}}."""
    kind = state.get("kind") or DEFAULT_KIND
    w, outcomes = words(kind), host_outcome_names(kind)
    result = {}
    for host, key in sorted(state["hosts"].items()):
        inst = state["instances"].get(key) if key else None
        if inst is None:
            result[host] = {"outcome": "failed", "msg": "the roll could not use this host's instance (%s)" % (
                shown("; ".join(state["problems"])) if state.get("problems") else "see the plan")}
            continue
        where = "%s/%s (upgrade domain %s)" % (inst["deployment"], inst["instance"], inst["upgrade_domain"])
        record = {"instance": where, "request_id": inst["request_id"], "operation": kind}
        if inst["host"] != host:
            record.update(outcome="duplicate", msg="%s is the same instance as host %s, which reports it" % (
                where, inst["host"]))
        elif inst["outcome"] == "done" and inst.get("adopted"):
            record.update(outcome=outcomes["already"], msg="%s was %s during this roll by another client (operation "
                          "%s): followed, not sent again" % (where, w["done"], inst["request_id"]))
        elif inst["outcome"] == "done" and inst.get("resumed"):
            record.update(outcome=outcomes["already"], msg="%s was already %s by an earlier run of this roll or "
                          "another job (operation %s)" % (where, w["done"], inst["request_id"]))
        elif inst["outcome"] == "pending" and inst.get("waiting"):
            record.update(outcome="waiting", msg=checkpoints.waiting_message(state, where, check_mode))
        elif check_mode and inst["outcome"] == "started":
            record.update(outcome="in_progress", msg="%s: operation %s, started by an earlier run of this roll, is "
                                                     "still running; it would be followed, not sent again" % (
                                                         where, inst["request_id"]))
        elif check_mode:
            record.update(outcome=outcomes["would"], round=inst["round"] + 1,
                          msg="%s would be %s in round %d" % (where, w["done"], inst["round"] + 1))
        elif inst["outcome"] == "done" and inst.get("after_round_failure"):
            record.update(outcome="failed", msg="%s was %s (operation %s), but the roll stopped after its batch: %s" % (
                where, w["done"], inst["request_id"], inst["after_round_failure"]))
        elif inst["outcome"] == "done":
            record.update(outcome=outcomes["done"], msg="%s %s (operation %s)" % (where, w["done"], inst["request_id"]))
        elif inst["outcome"] == "pending":
            dep = state["deployments"][inst["deployment"]]
            record.update(outcome=outcomes["not"], msg="%s was not %s: its deployment's roll stopped before "
                                                       "reaching it (%s)" % (
                                                           where, w["done"],
                                                           (dep["stop_reason"] or "stopped").rstrip(".")))
        else:
            error = inst.get("error") or {}
            record.update(outcome="failed", code=error.get("code"), msg="%s: %s" % (
                where, (error.get("message") or "the %s did not finish" % w["verb"]).rstrip(".")))
        if state.get("rebuilt"):
            record["msg"] += (" (rebuilt from the service's operation history: the roll's state file was gone)")
        if record["outcome"] in FAILED_OUTCOMES:
            # The fix, briefly: the table's last lines give the exact command.
            record["msg"] += "; to finish, run the roll again (nothing it %s is sent again)" % w["done"]
        result[host] = record
    return result


def format_table(summary):
    header = ("instance", "UD", "request id", "start", "end", "outcome")
    lines = [tuple(shown(cell) for cell in (
        r["deployment"] + "/" + r["instance"], str(r["upgrade_domain"]), r["request_id"] or "-",
        (r["start"] or "-")[11:19] or "-", (r["end"] or "-")[11:19] or "-",
        r["outcome"] + (" (%s)" % r["error"] if r["error"] else ""))) for r in summary["instances"]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    c = summary["counts"]
    w = words(summary.get("operation") or DEFAULT_KIND)
    out.append("rolling %s %s in %.1fs: %d %s, %d failed, %d untouched, %d skipped (done earlier)%s" % (
        w["verb"], summary["status"], summary["elapsed"], c["done"], w["done"], c["failed"], c["untouched"],
        c["skipped"], ", %d waiting for a later part" % c["waiting"] if c.get("waiting") else ""))
    checkpoint = summary.get("checkpoint")
    if checkpoint:
        out.append("paused at checkpoint %d of %d (%d of %d instances %s): to go on, %s" % (
            checkpoint["reached"], checkpoint["of"], checkpoint["instances_done"], checkpoint["instances"], w["done"],
            checkpoint["how_to_continue"]))
    if summary["status"] == "complete" and summary.get("new_roll_since"):
        out.append("a later run of this roll counts what it did as done (the service's history decides, within "
                   "rolling_reimage_resume_window); to %s these instances again, start a new roll: "
                   "-e rolling_reimage_since=%s" % (w["verb"], summary["new_roll_since"]))
    if summary.get("rebuilt"):
        out.append("the roll's state file was gone: these outcomes are rebuilt from the service's operation history")
    if summary.get("to_continue"):
        out.append("to continue this roll: %s" % summary["to_continue"])
    if summary.get("report_path"):
        out.append("report: %s" % summary["report_path"])
    return "\n".join(out)
