# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Each run's own record (controller only): a run id, the run's settings and where and by whom it ran, its HTML
report and a JSON summary beside it, named after the run so that no run overwrites another's, and an index page of
every run in the report folder. The roll keeps its identity across runs (the state file, the resume); a run is one
ansible-playbook execution of it."""

from __future__ import annotations

import getpass
import glob
import html
import json
import os
import platform
import shlex
import time

from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _private_files as private_files
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import health_gate
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll.state import iso

SUMMARY_SUFFIX = ".summary.json"
INDEX_NAME = "index.html"


def new_run_id(now=None):
    """A run's id: its UTC start, then 4 random hex digits (two runs in one second stay apart); sorts by time."""
    return "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now or time.time())), os.urandom(2).hex())


def run_settings(args, task_vars):
    """What the report and the summary say of how this run was asked for: no secret (a health URL's credentials are
    hidden), nothing from the service."""
    awx_job = task_vars.get("awx_job_id") or task_vars.get("tower_job_id")
    settings = {
        "operation": args.get("operation"),
        "since": args.get("since") or None,
        "fresh": bool(args.get("fresh")),
        "batch_size": args.get("batch_size") or "one upgrade domain",
        "max_failures": args.get("max_failures"),
        "health_url": health_gate.shown_url(args["health_url"]) if args.get("health_url") else None,
        "instance_health_urls": len(args.get("instance_health_urls") or {}),
        "controller": platform.node() or None,
        "user": _user(),
        "awx_job_id": str(awx_job) if awx_job else None,
        "command": continue_command(()),
    }
    return settings


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return str(os.geteuid())


def continue_command(extra, cliargs=None):
    """The command line of this run as ansible-playbook parsed it, from a list of safe options only (the playbooks,
    the inventory, --limit, --tags, --skip-tags), with ``extra`` (-e arguments) appended. Extra variables, vault and
    connection options are never repeated: they may hold secrets."""
    if cliargs is None:
        from ansible import context  # the controller's parsed command line (a worker process inherits it)
        cliargs = context.CLIARGS
    parts = ["ansible-playbook"]
    for inventory in cliargs.get("inventory") or ():
        parts += ["-i", inventory]
    for name, option in (("subset", "--limit"),):
        if cliargs.get(name):
            parts += [option, cliargs[name]]
    for name, option in (("tags", "--tags"), ("skip_tags", "--skip-tags")):
        values = [v for v in cliargs.get(name) or () if v != "all" or name != "tags"]
        if values:
            parts += [option, ",".join(values)]
    parts += list(cliargs.get("args") or ["<the playbook>"])
    return " ".join(shlex.quote(str(a)) for a in parts + list(extra))


def how_to_continue(state):
    """The exact way to continue a roll that did not finish: the same command with the roll's own start (from when
    operations count as done for it; a fresh roll's is its own start, not the window's) and without
    rolling_reimage_fresh, so that it resumes on any machine, however long after; in AWX, a new launch."""
    since = iso(state.get("counts_since") or state.get("window_start"))
    run = state.get("run") or {}
    if run.get("awx_job_id"):
        return ("launch the job template again (not a relaunch of job %s, which would reuse its variables) with extra "
                "variables rolling_reimage_since=%s and rolling_reimage_fresh=false" % (run["awx_job_id"], since))
    return ("%s (with this run's own -e variables added before these: the later ones win)" % continue_command(
        ("-e", "rolling_reimage_since=%s" % since, "-e", "rolling_reimage_fresh=false")))


def record_paths(state, state_path, report_dir=None):
    """(HTML report, JSON summary) of this run: in ``report_dir`` (beside the state file by default), named after the
    state file and the run, so no run overwrites another's."""
    folder = report_dir or os.path.dirname(os.path.abspath(state_path))
    stem = "%s-%s" % (os.path.splitext(os.path.basename(state_path))[0], state.get("run_id") or new_run_id())
    return os.path.join(folder, stem + ".html"), os.path.join(folder, stem + SUMMARY_SUFFIX)


def write_summary(path, summary, setting):
    """The run's summary as JSON (0600), for tools and for the index."""
    return private_files.write_privately(path, json.dumps(summary, indent=1, sort_keys=True, default=str), setting)


def write_index(folder, setting):
    """index.html in ``folder``: every run whose summary lies there, newest first, each linking its report."""
    runs = []
    for path in glob.glob(os.path.join(glob.escape(folder), "*" + SUMMARY_SUFFIX)):
        try:
            with open(path, encoding="utf-8") as handle:
                summary = json.load(handle)
        except (OSError, ValueError):
            continue  # not ours, or half written by another run: left out, never a reason to fail
        if isinstance(summary, dict):
            runs.append((summary.get("run_started") or "", os.path.basename(path)[:-len(SUMMARY_SUFFIX)] + ".html",
                         summary))
    runs.sort(key=lambda run: run[0], reverse=True)
    rows = []
    for started, report, summary in runs:
        counts = summary.get("counts") if isinstance(summary.get("counts"), dict) else {}
        cells = (started, summary.get("operation"), summary.get("status"),
                 "%s done, %s failed, %s untouched, %s skipped" % tuple(
                     counts.get(k, 0) for k in ("done", "failed", "untouched", "skipped")),
                 summary.get("elapsed"), summary.get("roll_id"))
        rows.append("<tr>%s<td><a href=\"%s\">report</a></td></tr>" % (
            "".join("<td>%s</td>" % html.escape(str(c if c is not None else "")) for c in cells),
            html.escape(report, quote=True)))
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<title>Rolling runs</title><style>body{font-family:system-ui,sans-serif;margin:24px}"
            "table{border-collapse:collapse}th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}"
            "th{background:#f6f8fa}</style></head><body><h1>Runs of rolling operations</h1>"
            "<table><thead><tr><th>run started (UTC)</th><th>operation</th><th>status</th><th>instances</th>"
            "<th>elapsed (s)</th><th>roll</th><th></th></tr></thead><tbody>%s</tbody></table></body></html>\n"
            % "\n".join(rows))
    return private_files.write_privately(os.path.join(folder, INDEX_NAME), page, setting)
