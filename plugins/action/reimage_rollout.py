# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the rolling_reimage role (rolling reimage, reboot or rebuild): every API call of a roll
runs here, none on the instances; so does writing the roll's HTML report."""

from __future__ import annotations

import calendar
import os
import threading
import time

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import (
    CONNECTION_ARGUMENT_SPEC, build_client, check_wait_timeout)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import AzureClassicError, InputError, shown
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._retries import RateLimiter
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import PollSchedule
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._rollout_args import (
    DEFAULT_MAX_RPS, ROLLOUT_ARGUMENT_SPEC)
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import checkpoints as roll_checkpoints
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import health_gate
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import identity as roll_identity
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import kinds as roll_kinds
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import outcome as roll_outcome
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import plan as roll_plan
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import records as roll_records
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import report as roll_report
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import rounds as roll_rounds
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

display = Display()
TARGET_VARS = ("cloud_service", "deployment_slot", "deployment_name", "role_instance")
# Every host must see the rounds in lock step, with run_once steps run once: only linear does that (debug is
# linear with a debugger). free and host_pinned let each host run the steps on its own.
LINEAR_STRATEGIES = ("linear", "ansible.builtin.linear", "debug", "ansible.builtin.debug")
HEADING_OPTIONS = ("display_skipped_hosts", "display_ok_hosts")
# The engine's threads (one per deployment) print lines at once: the heading goes first, once.
_HEADING_LOCK = threading.Lock()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _heading_shown = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        validation, args = self.validate_argument_spec(ROLLOUT_ARGUMENT_SPEC)
        del validation
        try:
            return dict(result, **self._dispatch(args, task_vars or {}))
        except AzureClassicError as err:
            result.update(failed=True, msg=err.readable(), error=err.to_dict())
            return result

    # -- helpers ------------------------------------------------------------------
    def _heading(self):
        """This task's heading, once, when the stdout callback would print it only with the task's result: that
        comes after the roll's lines, which would then stand under the previous task's heading."""
        with _HEADING_LOCK:
            if not self._heading_shown:
                self._heading_shown = True
                if _headings_deferred():
                    display.banner("TASK [%s]" % self._task.get_name().strip())

    def _say(self, text):
        """A line of the roll (the plan, a batch's start and end, a wait, the table) under this task's heading."""
        self._heading()
        display.display(text)

    def _check_strategy(self):
        play = self._task.get_play()
        strategy = (getattr(play, "strategy", None) or C.DEFAULT_STRATEGY or "linear")
        if strategy not in LINEAR_STRATEGIES:
            raise AnsibleError(
                "the rolling_reimage role needs the linear strategy, and this play uses %r: with it every host "
                "would run the roll's steps on its own and send operations to instances more than once. Nothing "
                "was sent; remove 'strategy: %s' from the play (or ANSIBLE_STRATEGY from the environment)"
                % (strategy, strategy))

    @staticmethod
    def _connection_options(args):
        """The task's connection options, overridden by rolling_reimage_connection, checked as a module checks
        its arguments: types converted (``timeout: "30"``, ``validate_certs: "no"``) or refused by name."""
        options = {k: args[k] for k in CONNECTION_ARGUMENT_SPEC if args.get(k) is not None}
        extra = args.get("connection") or {}
        unknown = sorted(set(extra) - set(CONNECTION_ARGUMENT_SPEC) - {"management_cert_path"})
        if unknown:
            raise AnsibleError("rolling_reimage_connection has unknown keys: %s" % ", ".join(unknown))
        if "management_cert_path" in extra:
            extra = dict(extra, management_certificate=extra["management_cert_path"])
            del extra["management_cert_path"]
        options.update({k: v for k, v in extra.items() if v is not None})
        checked = ArgumentSpecValidator(CONNECTION_ARGUMENT_SPEC).validate(options)
        if checked.error_messages:
            text = "; ".join(checked.error_messages)
            password = options.get("certificate_password")
            if isinstance(password, str) and password:
                text = text.replace(password, "********")
            raise AnsibleError("rolling_reimage_connection: %s" % text)
        return checked.validated_parameters

    def _client_factory(self, args, engine_options):
        """Clients for the engine's threads, sharing one request-rate ceiling (and saying a warning once, not once
        per deployment)."""
        options = self._connection_options(args)
        limiter = RateLimiter(engine_options.get("max_requests_per_second") or DEFAULT_MAX_RPS)
        warned = set()

        def warn_once(message):
            if message not in warned:
                warned.add(message)
                display.warning(message)

        def factory(min_interval=None):
            poll = PollSchedule(min_interval or engine_options.get("poll_interval") or 0.25, roll_rounds.POLL_GROWTH)
            return build_client(options, warn=warn_once, poll=poll, rate_limiter=limiter)
        return factory

    def _targets(self, args, task_vars):
        hostvars = task_vars.get("hostvars", {})
        hosts = args.get("hosts") or task_vars.get("ansible_play_batch") or []
        if not hosts:
            raise AnsibleError("rolling_reimage has no hosts to roll")
        targets, problems = [], []
        for host in hosts:
            host_vars = hostvars.get(host, {})
            # hostvars gives values already templated once; they are used as data, never templated again.
            values = {name: host_vars.get(name) if hasattr(host_vars, "get") else None for name in TARGET_VARS}
            try:
                targets.append(roll_identity.target_from_hostvars(host, values))
            except InputError as err:  # every host's problem is told in one run, not the first host's alone
                problems.append(_naming_host(host, err.message))
        if problems:
            raise InputError(problems[0] if len(problems) == 1 else "%d hosts do not name a role instance the roll "
                             "can address:\n- %s" % (len(problems), "\n- ".join(problems)))
        return targets

    @staticmethod
    def _options(args, targets):
        for name in ("operation_timeout", "ready_timeout", "health_timeout", "resume_window", "availability_timeout"):
            check_wait_timeout(args[name], name)
        if args["batch_size"] < 0 or args["max_failures"] < 0 or args["max_parallel"] < 0:
            raise AnsibleError("batch_size, max_failures and max_parallel must be 0 or more")
        if not 1 <= args["max_requests_per_second"] <= 1000:
            raise AnsibleError("max_requests_per_second must be between 1 and 1000")
        if not 0.05 <= args["poll_interval"] <= 60:
            raise AnsibleError("poll_interval must be between 0.05 and 60 seconds")
        options = {k: args[k] for k in ("fresh", "batch_size", "max_failures", "allow_unready", "operation_timeout",
                                        "ready_timeout", "max_parallel", "poll_interval", "resume_window", "max_requests_per_second",
                                        "operation", "availability_timeout")}
        options["since"] = _parse_since(args.get("since"))
        options.update(_checkpoint_options(args))
        return options

    @staticmethod
    def _state_file(path):
        if not path:
            raise AnsibleError("state_path is required after the plan step")
        return roll_state.StateFile(path)

    def _load(self, args):
        state_file = self._state_file(args.get("state_path"))
        state = state_file.load()
        if state is None:
            raise AnsibleError("the roll's state file %s is gone (removed while the roll ran?), so this step cannot go "
                               "on; what the roll did is in the service's history: run the roll again to finish it "
                               "(nothing it did is sent again)" % state_file.path)
        return state_file, state

    # -- steps --------------------------------------------------------------------
    def _dispatch(self, args, task_vars):
        step = args["step"]
        check_mode = bool(self._play_context.check_mode)
        if step == "report":
            return self._report(args.get("outcome"), check_mode)
        if step == "plan":
            return self._refusable_plan(args, task_vars, check_mode)
        if step in ("round", "rounds"):
            self._check_strategy()
        if check_mode:
            return {"changed": False, "skipped": True, "msg": "check mode: the %s step sends nothing" % step}
        if step in ("abort", "finish") and self._state_file(args.get("state_path")).load() is None:
            return self._without_state(step, args, task_vars)
        state_file, state = self._load(args)
        if step in ("round", "rounds"):
            if step == "round" and not (isinstance(args.get("round"), int) and 0 <= args["round"] < state["rounds"]):
                raise AnsibleError("round must be 0 to %d with step=round (the plan has %d rounds), not %r"
                                   % (state["rounds"] - 1, state["rounds"], args.get("round")))
            gate = self._health(args)
            factory = self._client_factory(args, state["options"])
            if step == "rounds" and not gate.url:
                # Nothing runs between rounds: each deployment rolls on at its own pace, in this one task.
                ran = roll_rounds.run_all_rounds(factory, state, state_file, self._say, gate)
            else:
                # A health gate judges whole rounds: every deployment's batch k ends before any batch k+1.
                ran = 0
                for index in [args["round"]] if step == "round" else range(state["rounds"]):
                    ran = roll_rounds.run_round(factory, state, state_file, index, self._say, gate)
                    if ran and gate.url:
                        self._health_gate(gate, state, state_file)
                    # After the last round of a part: the bake at its checkpoint, the health gate asked throughout.
                    roll_rounds.pass_checkpoint(state, state_file, index, self._say, _bake_gate(args, self._say))
            stopped = {k: d["stop_reason"] for k, d in state["deployments"].items() if d["stopped"]}
            # The steps run once for the whole roll report no change: each host's report step says what changed.
            return {"changed": False, "deployments_rolled": ran, "stopped_deployments": stopped}
        if step == "abort":
            roll_rounds.stop_all(state, state_file, args.get("reason") or "stopped by a failed task")
            return {"changed": False}
        return self._finish(args, task_vars, state, state_file)

    def _finish(self, args, task_vars, state, state_file):
        summary = roll_outcome.summarize(state, state_file)
        hosts = summary.pop("hosts")
        summary.update(run_id=state.get("run_id"), roll_id=state.get("roll_id"), run=state.get("run") or {},
                       run_started=roll_state.iso(state.get("started")), finished=roll_state.iso(state.get("finished")))
        if summary["status"] != "complete":
            summary["to_continue"] = roll_records.how_to_continue(state)
        self._write_record(args, state, state_file, summary)
        self._say(roll_outcome.format_table(summary))
        # Failures of hosts outside the play (rolling_reimage_hosts) have no host of their own to show them.
        in_play = set(task_vars.get("ansible_play_hosts_all") or task_vars.get("ansible_play_batch") or ())
        failed_elsewhere = sorted(h for h, o in hosts.items()
                                  if o["outcome"] in roll_kinds.FAILED_OUTCOMES and h not in in_play)
        return {"changed": False, "summary": summary, "hosts": hosts, "failed_elsewhere": failed_elsewhere}

    def _without_state(self, step, args, task_vars):
        """Abort or finish a roll whose state file is gone: abort has nothing to stop; finish rebuilds every host's
        outcome from the service's history, so the recap still says which instances this run changed."""
        state_file = self._state_file(args.get("state_path"))
        if step == "abort":
            display.warning("the roll's state file %s is gone: nothing to stop" % state_file.path)
            return {"changed": False}
        roll = args.get("roll") or {}
        if not roll.get("window_start"):
            raise AnsibleError("the roll's state file %s is gone, and the finish step was not given the plan's "
                               "window (roll) to rebuild the outcomes from the service's history" % state_file.path)
        display.warning("the roll's state file %s is gone: every host's outcome is rebuilt from the service's "
                        "operation history" % state_file.path)
        targets = self._targets(args, task_vars)
        options = {"operation": args["operation"], "roll_id": roll.get("roll_id"), "fresh": False}
        client = self._client_factory(args, {})()
        try:
            state = roll_plan.rebuild(client, targets, options, roll, self._say)
        finally:
            client.close()
        return self._finish(args, task_vars, state, state_file)

    @staticmethod
    def _write_record(args, state, state_file, summary):
        """This run's own record: its HTML report and JSON summary (in rolling_reimage_report_dir, named after the run,
        never overwriting another run's), the index of runs beside them, and a copy of the report at
        rolling_reimage_report_path when set. One that cannot be written is a warning, never a lost summary."""
        html_path, summary_path = roll_records.record_paths(state, state_file.path, args.get("report_dir"))
        summary.update(report_path=None, summary_path=None)
        writes = [("report_path", "rolling_reimage_report_dir", html_path,
                   lambda path, setting: roll_report.write(state, path, summary, setting))]
        if args.get("report_path"):
            writes.append(("report_path", "rolling_reimage_report_path", args["report_path"],
                           lambda path, setting: roll_report.write(state, path, summary, setting)))
        writes += [("summary_path", "rolling_reimage_report_dir", summary_path,
                    lambda path, setting: roll_records.write_summary(path, summary, setting)),
                   ("index_path", "rolling_reimage_report_dir", os.path.dirname(html_path), roll_records.write_index)]
        for key, setting, path, write in writes:
            try:
                summary[key] = write(path, setting)
            except OSError as exc:
                display.warning("the roll's %s could not be written to %s: %s" % (
                    "HTML report" if key == "report_path" else "record", path, exc.strerror or exc))

    def _refusable_plan(self, args, task_vars, check_mode):
        """The plan, or why the roll cannot start. A refusal is a result, not a failure: a failed run-once task
        fails only the host that ran it (ansible-core drops the others from the play without a word), and every
        host must report that its instance was not rolled. The role fails each host on ``refused``."""
        try:
            self._check_strategy()
            return self._plan(args, task_vars, check_mode)
        except (AzureClassicError, AnsibleError) as err:
            message = err.readable() if isinstance(err, AzureClassicError) else err.message
            self._heading()
            display.error("the roll did not start, nothing was sent: %s" % message)
            return {"changed": False, "refused": message, "rounds": 0}

    def _plan(self, args, task_vars, check_mode):
        targets = self._targets(args, task_vars)
        options = self._options(args, targets)
        options.update(run_id=roll_records.new_run_id(), run=roll_records.run_settings(args, task_vars))
        gate = self._health(args)
        if gate.url:
            unhealthy, options["health_checks"] = gate.before_roll(())
            _refuse_unhealthy(unhealthy)
        if args.get("state_path"):
            state_file = self._state_file(args["state_path"])
        else:  # named after the roll's id, which the plan knows once it has read the instances
            state_file = roll_state.default_state_file
        client = self._client_factory(args, options)()
        try:
            state = roll_plan.plan(client, targets, options, state_file, self._say, check_mode=check_mode)
        finally:
            client.close()
        if gate.instance_urls:
            without = sorted(t["host"] for t in targets if t["host"] not in gate.instance_urls)
            if without:
                display.warning("rolling_reimage_instance_health_url gave no URL for %d host(s), whose instances are "
                                "not checked: %s (a host outside the play does not template it)" % (
                                    len(without), shown(", ".join(without[:10]) + (" ..." if len(without) > 10 else ""))))
            # The instances this run will take down must be healthy first; those already down (in flight from an
            # earlier run, or accepted by rolling_reimage_allow_unready) are what the roll is there to fix.
            down = {(i["deployment"], name) for i in state["instances"].values()
                    for name in state["deployments"][i["deployment"]].get("accepted_down") or ()}
            hosts = [i["host"] for i in state["instances"].values() if i["outcome"] == "pending"
                     and (i["deployment"], i["instance"].lower()) not in down]
            unhealthy, checks = gate.before_roll(hosts, roll_url=False)
            state.setdefault("health_checks", []).extend(checks)
            if state.get("state_path") and not check_mode:
                roll_state.StateFile(state["state_path"]).save(state)
            _refuse_unhealthy(unhealthy)
        hosts = roll_outcome.host_outcomes(state, check_mode=check_mode)
        result = {"changed": False, "operation": state["kind"], "rounds": state["rounds"],
                  "state_path": state.get("state_path") or getattr(state_file, "path", None),
                  # What the finish step needs to rebuild every host's outcome if the state file is lost.
                  "roll": {k: state.get(k) for k in ("roll_id", "run_id", "started", "window_start", "counts_since",
                                                     "service_started")},
                  "resumed": state["resumed"], "instances": len(state["instances"]), "hosts": hosts}
        if check_mode and self._task.diff:
            result["diff"] = {"before": "", "after": roll_plan.describe_plan(state, True) + "\n",
                              "after_header": "rolling %s plan" % roll_kinds.words(state["kind"])["verb"]}
        return result

    def _report(self, outcome, check_mode):
        """One host's own result: changed when this run reimaged (rebooted, rebuilt) it or would, in check mode;
        failed when its operation failed or it was left out by a stopped roll; ok when an earlier run did it."""
        if not outcome:
            return {"changed": False, "skipped": True, "skip_reason": "this host is not a target of the roll"}
        kind = outcome.get("outcome")
        if kind in roll_kinds.FAILED_OUTCOMES:
            # The message and the outcome only: the callback prints a failure's whole result, and the table above
            # has the instance, its request id and the error already.
            return {"changed": False, "failed": True, "outcome": kind, "msg": outcome.get("msg")}
        operation = outcome.get("operation") or roll_kinds.DEFAULT_KIND
        result = {"changed": kind in roll_kinds.CHANGED_OUTCOMES, "outcome": kind, "msg": outcome.get("msg"),
                  "instance": outcome.get("instance"), "request_id": outcome.get("request_id"),
                  "operation": operation}
        if check_mode and kind in roll_kinds.CHANGED_OUTCOMES and self._task.diff:
            result["diff"] = {"before": "%s: as it is\n" % outcome.get("instance"),
                              "after": "%s: %s in round %s\n" % (
                                  outcome.get("instance"), roll_kinds.words(operation)["done"], outcome.get("round"))}
        return result

    def _health(self, args):
        """The roll's HealthGate from the task's arguments (each URL checked before anything is used)."""
        return health_gate.HealthGate(
            args.get("health_url"), args.get("instance_health_urls"), args["health_status"], args["health_timeout"],
            validate_certs=args["health_validate_certs"], ca_path=args.get("health_ca_path"), say=self._say)

    def _health_gate(self, gate, state, state_file):
        healthy, sentence = gate.after_round()
        state.setdefault("health_checks", []).append(health_gate.record(
            "after round %d" % ((state.get("last_round") or 0) + 1), healthy, sentence))
        if healthy:
            self._say(sentence)
        else:
            roll_rounds.stop_all(state, state_file, sentence)


def _naming_host(host, message):
    """``message`` (a problem of one host's variables) as it names ``host``: "host web1: ...", once."""
    if message.startswith("host %s " % host):
        return shown(message)
    return shown("host %s: %s" % (host, message))


def _headings_deferred():
    """Whether the stdout callback holds a task's heading back until the task's first result: the default callback
    (and those built on it) does when display_skipped_hosts or display_ok_hosts is false."""
    for name in dict.fromkeys((C.DEFAULT_STDOUT_CALLBACK, "default")):
        try:
            return not all(C.config.get_config_value(option, plugin_type="callback", plugin_name=name)
                           for option in HEADING_OPTIONS)
        except AnsibleError:  # not loaded, or without these options: it prints headings as it likes
            continue
    return False


def _refuse_unhealthy(unhealthy):
    if unhealthy:
        raise AnsibleError("the health gate fails before the roll began, so no upgrade domain is taken down: %s (fix "
                           "the service or the URL, then run the roll again)" % "; ".join(unhealthy))


def _checkpoint_options(args):
    """rolling_reimage_checkpoints, its bake and its action, checked before any request."""
    check_wait_timeout(args["checkpoint_delay"], "rolling_reimage_checkpoint_delay")
    return {"checkpoints": roll_checkpoints.parse(args.get("checkpoints")), "checkpoint_delay": args["checkpoint_delay"],
            "checkpoint_action": args["checkpoint_action"]}


def _bake_gate(args, say):
    """The health gate a bake asks throughout, or None without a health URL."""
    if not args.get("health_url"):
        return None
    return roll_checkpoints.health_check(args["health_url"], args["health_status"], args["health_timeout"],
                                         say, validate_certs=args["health_validate_certs"],
                                         ca_path=args.get("health_ca_path"))


def _parse_since(value):
    """Epoch seconds of ``since`` (ISO 8601 in UTC, like 2026-11-27T20:00:00Z, or epoch seconds), or None."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        epoch = float(text) if text.replace(".", "", 1).isdigit() else calendar.timegm(
            time.strptime(text.rstrip("Zz"), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise AnsibleError("since %r is not a UTC time like 2026-11-27T20:00:00Z (or epoch seconds)" % text) from None
    if epoch > time.time() + 60:
        raise AnsibleError("since %s is in the future: no operation of this roll could have started after it" % text)
    return epoch
