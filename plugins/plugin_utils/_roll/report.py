# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML report of a roll, drawn from the state the rolling engine keeps (no API call).

One self-contained page (inline CSS and SVG, no script, no external reference): per deployment a timeline with
one lane per upgrade domain and a bar per instance from the request to ReadyRole (or to its failure), the
operation, the most upgrade domains down at once (computed from the bars), the makespan and a table of every
instance. Every value that came from the service or the inventory is escaped. Runs on the controller only.
"""

from __future__ import annotations

import html
import time

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import shown
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _private_files as private_files
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.kinds import DEFAULT_KIND, words
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.outcome import row_outcome

CHART_WIDTH = 960
LABEL_WIDTH = 150
BAR_HEIGHT = 18
ROW_GAP = 4
AXIS_HEIGHT = 24
NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:1.4em;margin:0 0 8px}h2{font-size:1.1em;margin:28px 0 6px}
.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0 16px}
.facts dt{color:#57606a}.facts dd{margin:0}
.status-complete{color:#1a7f37;font-weight:600}.status-failed,.status-running{color:#cf222e;font-weight:600}
.stopped{color:#cf222e}
svg{display:block;max-width:100%;height:auto;border:1px solid #d0d7de;border-radius:6px;background:#f6f8fa}
svg text{font-size:11px;font-family:inherit}
.lane-label{fill:#1b1f24}.tick{stroke:#d0d7de}.tick-label{fill:#57606a}
.bar-done{fill:#2da44e}.bar-failed{fill:#cf222e}.bar-open{fill:#bf8700}
.bar-text{fill:#1b1f24}.fail-text{fill:#cf222e}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;
margin-right:4px;vertical-align:-1px;border-radius:2px}.sw-done{background:#2da44e}.sw-failed{background:#cf222e}
.sw-open{background:#bf8700}
.bar-recovery{fill:#fff;fill-opacity:.45;pointer-events:none}
.check-ok{stroke:#1a7f37;fill:#1a7f37;stroke-width:1.5}.check-failed{stroke:#cf222e;fill:#cf222e;stroke-width:1.5}
.sw-check-ok{background:#1a7f37}.sw-check-failed{background:#cf222e}
.bake{fill:#0969da;fill-opacity:.12}.checkpoint{stroke:#0969da;stroke-width:2;stroke-dasharray:4 3}.cp-text{fill:#0969da}
.sw-bake{background:#dbe9fa;border-left:2px dashed #0969da}
table{border-collapse:collapse;margin-top:8px;font-size:.85em;width:100%;max-width:1400px;table-layout:fixed}
th,td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:#f6f8fa}td.failed{color:#cf222e}td.untouched{color:#57606a}
.note{color:#57606a;font-size:.9em}
"""


def _e(value):
    """Any value, as escaped text (every string in the state may have come from the service): HTML escaped, and
    control and bidi characters written as escapes."""
    return html.escape(shown("" if value is None else str(value)), quote=True)


def _iso(epoch):
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "-"


def _duration(seconds):
    if seconds is None:
        return "-"
    seconds = max(seconds, 0)
    if seconds < 60:
        return "%.1fs" % seconds
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return ("%dh%02dm%02ds" % (hours, minutes, rest)) if hours else ("%dm%02ds" % (minutes, rest))


def bars(state):
    """The instances this run acted on, as bars: start (request sent) to end (ReadyRole, or the failure).

    Instances done by an earlier run of the roll are left out (their times belong to that run), as are those
    the roll never reached. A bar with no end (an operation never followed to its end) runs to the roll's end.
    """
    finished = state.get("finished") or time.time()
    result = []
    for key, inst in state["instances"].items():
        if inst.get("resumed") or not inst.get("start") or inst["outcome"] == "pending":
            continue
        outcome = row_outcome(inst)
        end = inst.get("end")
        operation_end = inst.get("operation_end")
        result.append({"key": key, "deployment": inst["deployment"], "instance": inst["instance"],
                       "upgrade_domain": inst["upgrade_domain"], "round": inst.get("round"), "start": inst["start"],
                       "end": end if end else max(finished, inst["start"]), "open": not end,
                       # The operation's end splits the bar into the operation and the recovery to ReadyRole.
                       "operation_end": operation_end if end and operation_end and inst["start"] <= operation_end <= end
                       else None,
                       "outcome": outcome if end else "open", "request_id": inst.get("request_id"),
                       "error": (inst.get("error") or {}).get("message")})
    return sorted(result, key=lambda b: (b["deployment"], b["upgrade_domain"], b["start"], b["instance"]))


def lower_bound(all_bars):
    """The shortest this run's work could have taken one upgrade domain at a time, from its own bars: per deployment,
    the sum over its batches of the batch's operation times (sent one after another: the deployment's lock) and one
    recovery (the last operation's), the largest over deployments (they roll at once). None without bars."""
    per_deployment = {}
    for dep_key in {b["deployment"] for b in all_bars}:
        batches = {}
        for piece in all_bars:
            if piece["deployment"] == dep_key and not piece["open"]:
                batches.setdefault((piece["round"], piece["upgrade_domain"]), []).append(piece)
        total = 0.0
        for pieces in batches.values():
            ends = [(p["operation_end"] or p["end"], p) for p in pieces]
            total += sum(op_end - p["start"] for op_end, p in ends)
            last_end, last = max(ends, key=lambda e: e[0])
            total += last["end"] - last_end
        per_deployment[dep_key] = total
    return max(per_deployment.values()) if per_deployment else None


def health_marks(state):
    """The run's health checks for the timeline: when, healthy or not, what was said, and for which deployment
    (None: the roll's own URL, shown on every deployment's timeline)."""
    return [{"at": c["at"], "healthy": bool(c.get("healthy")), "deployment": c.get("deployment"),
             "label": "%s: %s" % (c.get("when") or "health check", c.get("sentence") or "")}
            for c in state.get("health_checks") or () if isinstance(c, dict) and c.get("at")]


def _checks_svg(checks, x, top, bottom):
    """A health check: a short tick at its moment over the lanes, green when it passed, red when it failed."""
    out = []
    for check in checks:
        left = x(check["at"])
        out.append('<g><title>%s</title><line class="check-%s" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>'
                   '<circle class="check-%s" cx="%.1f" cy="%.1f" r="3"/></g>' % (
                       _e(check["label"]), "ok" if check["healthy"] else "failed", left, left, top, bottom,
                       "ok" if check["healthy"] else "failed", left, top + 3))
    return out


def most_down_at_once(deployment_bars):
    """(most upgrade domains, most instances) with a bar open at the same moment; a bar ending as another
    starts does not overlap it."""
    events = []
    for piece in deployment_bars:
        events.append((piece["start"], 1, piece["upgrade_domain"]))
        events.append((piece["end"], -1, piece["upgrade_domain"]))
    events.sort(key=lambda e: (e[0], e[1]))  # ends (-1) before starts (+1) at the same moment
    open_by_ud, most_uds, most_instances = {}, 0, 0
    for _when, delta, ud in events:
        open_by_ud[ud] = open_by_ud.get(ud, 0) + delta
        if not open_by_ud[ud]:
            del open_by_ud[ud]
        most_uds = max(most_uds, len(open_by_ud))
        most_instances = max(most_instances, sum(open_by_ud.values()))
    return most_uds, most_instances


def _tick_step(span):
    for step in NICE_STEPS:
        if span / step <= 10:
            return step
    return NICE_STEPS[-1]


def _rows(lane_bars):
    """Stack a lane's bars into rows so that overlapping bars never cover each other."""
    rows = []
    for piece in sorted(lane_bars, key=lambda b: b["start"]):
        for row in rows:
            if row[-1]["end"] <= piece["start"]:
                row.append(piece)
                break
        else:
            rows.append([piece])
    return rows


def checkpoint_marks(state):
    """The roll's checkpoints on the timeline: where each bake started (the checkpoint) and ended."""
    info = state.get("checkpoints") or {}
    marks = []
    for bake in info.get("bakes") or ():
        end = bake.get("end") or max(state.get("finished") or time.time(), bake["start"])
        marks.append({"start": bake["start"], "end": end, "outcome": bake.get("outcome"),
                      "label": "checkpoint %d of %d" % (bake["checkpoint"], len(info.get("counts") or ()))})
    return marks


def _marks_svg(marks, x, top, bottom):
    """A shaded bake span and a vertical marker at each checkpoint, over one deployment's lanes."""
    out = []
    for mark in marks:
        left, right = x(mark["start"]), x(mark["end"])
        tip = "%s: bake from %s to %s (%s)%s" % (mark["label"], _iso(mark["start"]), _iso(mark["end"]),
                                                 _duration(mark["end"] - mark["start"]),
                                                 ", the health gate failed" if mark["outcome"] == "unhealthy" else "")
        out.append('<g><title>%s</title><rect class="bake" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>'
                   '<line class="checkpoint" x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f"/>'
                   '<text class="cp-text" x="%.1f" y="%.1f">%s</text></g>' % (
                       _e(tip), left, top, max(right - left, 1), bottom - top, left, left, top, bottom,
                       min(left + 3, CHART_WIDTH - 90), bottom - 4, _e(mark["label"])))
    return out


def _svg(dep_key, lanes, dep_bars, t0, span, verb, marks=(), checks=()):
    """One deployment's timeline: a lane per upgrade domain, a bar per instance, the checkpoints and the health
    checks."""
    plot = CHART_WIDTH - LABEL_WIDTH - 50  # room for the last tick label

    def x(when):
        return LABEL_WIDTH + (when - t0) / span * plot

    body, y = [], AXIS_HEIGHT
    for ud in lanes:
        rows = _rows([b for b in dep_bars if b["upgrade_domain"] == ud]) or [[]]
        height = len(rows) * (BAR_HEIGHT + ROW_GAP) + ROW_GAP
        body.append('<line class="tick" x1="0" x2="%d" y1="%.1f" y2="%.1f"/>' % (CHART_WIDTH, y, y))
        body.append('<text class="lane-label" x="8" y="%.1f">upgrade domain %s</text>' % (
            y + height / 2 + 4, _e(ud)))
        for index, row in enumerate(rows):
            top = y + ROW_GAP + index * (BAR_HEIGHT + ROW_GAP)
            for piece in row:
                left, width = x(piece["start"]), max(x(piece["end"]) - x(piece["start"]), 2)
                split = piece["operation_end"]
                tip = "%s: %s %s, %s to %s (%s)%s%s" % (
                    piece["instance"], verb, piece["request_id"] or "(no request id)", _iso(piece["start"]),
                    "not known" if piece["open"] else _iso(piece["end"]), _duration(piece["end"] - piece["start"]),
                    "; the operation took %s, the recovery to ReadyRole %s" % (
                        _duration(split - piece["start"]), _duration(piece["end"] - split)) if split else "",
                    ", failed: %s" % piece["error"] if piece["error"] else "")
                kind = piece["outcome"] if piece["outcome"] in ("done", "failed") else "open"
                body.append('<g><title>%s</title><rect class="bar-%s" x="%.1f" y="%.1f" width="%.1f" height="%d" '
                            'rx="3"/>' % (_e(tip), _e(kind), left, top, width, BAR_HEIGHT))
                if split and x(piece["end"]) - x(split) >= 1:
                    body.append('<rect class="bar-recovery" x="%.1f" y="%.1f" width="%.1f" height="%d"/>' % (
                        x(split), top, x(piece["end"]) - x(split), BAR_HEIGHT))
                error = piece["error"] or "failed"
                mark = " \u2715 " + (error if len(error) <= 80 else error[:77] + "...")
                label = piece["instance"] + (mark if piece["outcome"] == "failed" else "")
                text_x = left + 4 if width > 7 * len(piece["instance"]) + 8 else left + width + 4
                css = "fail-text" if piece["outcome"] == "failed" and text_x > left + width else "bar-text"
                body.append('<text class="%s" x="%.1f" y="%.1f">%s</text></g>' % (
                    css, min(text_x, CHART_WIDTH - 60), top + BAR_HEIGHT - 5, _e(label)))
        y += height
    step = _tick_step(span)
    axis = []
    tick = 0
    while tick <= span + 1e-9:
        axis.append('<line class="tick" x1="%.1f" x2="%.1f" y1="%d" y2="%.1f"/>'
                    '<text class="tick-label" x="%.1f" y="14">+%s</text>' % (
                        x(t0 + tick), x(t0 + tick), AXIS_HEIGHT - 4, y, x(t0 + tick) + 2, _duration(tick)))
        tick += step
    axis += _marks_svg(marks, x, AXIS_HEIGHT, y)
    axis += _checks_svg(checks, x, AXIS_HEIGHT, y)
    return ('<svg role="img" width="%d" height="%d" viewBox="0 0 %d %d">'
            '<title>timeline of %s</title>%s%s</svg>' % (
                CHART_WIDTH, y + 6, CHART_WIDTH, y + 6, _e(dep_key), "".join(axis), "".join(body)))


def _settings(run):
    """The run's settings as facts: how it was asked for, where and by whom it ran (no secret is ever among them)."""
    facts = [("settings", ", ".join("%s %s" % (k, run[k]) for k in (
        "since", "fresh", "batch_size", "max_failures", "health_url", "instance_health_urls") if run.get(k) not in (
            None, "", 0, False)) or "defaults")]
    where = ", ".join(x for x in (
        "controller %s" % run["controller"] if run.get("controller") else "", "user %s" % run["user"] if run.get("user")
        else "", "AWX job %s" % run["awx_job_id"] if run.get("awx_job_id") else "") if x)
    if where:
        facts.append(("ran on", where))
    if run.get("command"):
        facts.append(("command", run["command"]))
    return facts


def render(state, summary=None):
    """The report as one HTML document (a str)."""
    kind = state.get("kind") or DEFAULT_KIND
    w = words(kind)
    all_bars = bars(state)
    t0 = min([b["start"] for b in all_bars] or [state.get("started") or 0])
    t1 = max([b["end"] for b in all_bars] or [t0])
    makespan = t1 - t0 if all_bars else 0.0
    checks = health_marks(state)
    marks = checkpoint_marks(state)
    bound = lower_bound(all_bars)
    # The timeline starts at the first request, or at a health check before it, and ends with the last of these,
    # a bake included.
    chart_t0 = min([t0] + [c["at"] for c in checks])
    span = max([t1 - chart_t0, 1.0] + [c["at"] - chart_t0 for c in checks] + [m["end"] - chart_t0 for m in marks])
    counts = {"done": 0, "failed": 0, "untouched": 0, "skipped": 0, "waiting": 0}
    for inst in state["instances"].values():
        counts[row_outcome(inst)] += 1
    status = state.get("status") or "running"
    per_dep = {}
    for dep_key in state["deployments"]:
        per_dep[dep_key] = most_down_at_once([b for b in all_bars if b["deployment"] == dep_key])
    most_uds = max([figures[0] for figures in per_dep.values()] or [0])

    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           '<title>Rolling %s %s</title><style>%s</style></head><body>' % (
               _e(w["verb"]), _e(state.get("roll_id")), STYLE),
           '<h1>Rolling %s <span class="status-%s">%s</span></h1>' % (_e(w["verb"]), _e(status), _e(status)),
           '<dl class="facts">']
    facts = [
        ("operation", w["verb"]),
        ("roll", state.get("roll_id")),
        ("instances", "%d %s, %d failed, %d untouched, %d skipped (done by an earlier run)%s" % (
            counts["done"], w["done"], counts["failed"], counts["untouched"], counts["skipped"],
            ", %d waiting for a later part" % counts["waiting"] if counts["waiting"] else "")),
        ("makespan", "%s (first request to last ReadyRole or failure)" % _duration(makespan)),
        ("lower bound", "%s, one upgrade domain at a time (per deployment, each batch's operations and one recovery, "
                        "from this run's bars); makespan / lower bound = %s" % (
                            _duration(bound), "%.2f" % (makespan / bound) if bound else "-") if bound else "-"),
        ("most upgrade domains down at once", "%d (per deployment, from the bars below)" % most_uds),
        ("run", state.get("run_id")),
        ("run started", _iso(state.get("started"))),
        ("run finished", _iso(state.get("finished"))),
        ("roll first started", _iso(state.get("roll_started"))),
    ]
    facts += _settings(state.get("run") or {})
    stopped = ["%s: %s" % (k, d.get("stop_reason")) for k, d in sorted(state["deployments"].items()) if d.get("stopped")]
    if stopped:
        facts.append(("stopped because", "; ".join(stopped)))
    if summary and summary.get("to_continue"):
        facts.append(("to continue", summary["to_continue"]))
    if marks:
        facts.append(("checkpoints", "; ".join("%s: baked %s%s" % (
            m["label"], _duration(m["end"] - m["start"]), ", the health gate failed" if m["outcome"] == "unhealthy"
            else "") for m in marks)))
    if summary and summary.get("state_path"):
        facts.append(("state file", summary["state_path"]))
    out += ["<dt>%s</dt><dd>%s</dd>" % (_e(k), _e(v)) for k, v in facts]
    out.append("</dl>")
    out.append('<p class="legend"><span><i class="sw-done"></i>%s (the operation; lighter: its recovery), ReadyRole '
               'again</span><span><i class="sw-check-ok"></i>health check passed</span><span><i class="sw-check-failed">'
               '</i>health check failed</span><span><i class="sw-failed">'
               '</i>failed (with its error)</span><span><i class="sw-open"></i>end not known</span>%s</p>'
               % (_e(w["done"]), '<span><i class="sw-bake"></i>checkpoint (dashed) and its bake time (shaded)</span>'
                  if marks else ""))

    for dep_key, dep in sorted(state["deployments"].items()):
        dep_bars = [b for b in all_bars if b["deployment"] == dep_key]
        lanes = sorted({i["upgrade_domain"] for i in state["instances"].values() if i["deployment"] == dep_key})
        uds, instances = per_dep[dep_key]
        out.append("<h2>%s</h2>" % _e(dep_key))
        out.append('<p>slot %s; most upgrade domains down at once: %d; most instances down at once: %d%s</p>' % (
            _e(dep.get("slot")), uds, instances,
            '; <span class="stopped">roll stopped: %s</span>' % _e(dep.get("stop_reason")) if dep.get("stopped")
            else ""))
        if dep_bars:
            out.append(_svg(dep_key, lanes, dep_bars, chart_t0, span, w["verb"], marks,
                            [c for c in checks if c["deployment"] in (None, dep_key)]))
        else:
            out.append('<p class="note">no %s was sent to this deployment in this run.</p>' % _e(w["verb"]))

    out.append("<h2>Instances</h2><table><thead><tr>%s</tr></thead><tbody>" % "".join(
        "<th>%s</th>" % h for h in ("host", "deployment", "instance", "role", "upgrade domain", "request id",
                                    "request sent", "ReadyRole or failure", "duration", "outcome", "error")))

    def order(key):
        inst = state["instances"][key]
        return inst["deployment"], inst["upgrade_domain"], key

    for key in sorted(state["instances"], key=order):
        inst = state["instances"][key]
        outcome = row_outcome(inst)
        error = (inst.get("error") or {}).get("message") or inst.get("after_round_failure")
        duration = inst["end"] - inst["start"] if inst.get("end") and inst.get("start") else None
        cells = (inst.get("host"), inst["deployment"], inst["instance"], inst.get("role"), inst["upgrade_domain"],
                 inst.get("request_id") or "-", _iso(inst.get("start")), _iso(inst.get("end")), _duration(duration),
                 outcome, error or "")
        out.append("<tr>%s</tr>" % "".join(
            '<td class="%s">%s</td>' % (_e(outcome), _e(c)) if n == 9 else "<td>%s</td>" % _e(c)
            for n, c in enumerate(cells)))
    out.append("</tbody></table>")
    out.append('<p class="note">Drawn from the roll\'s state file; bars run from the request to ReadyRole (or to '
               'the failure). Times are UTC.</p></body></html>\n')
    return "\n".join(out)


def write(state, path, summary=None, setting="rolling_reimage_report_dir"):
    """Write the report to ``path`` atomically, readable by the owner only (0600); returns the path. A folder
    another user owns or may write to is refused (OSError), as the state file's is."""
    return private_files.write_privately(path, render(state, summary), setting)
