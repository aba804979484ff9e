# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of the rolling_reimage role (rolling reimage, reboot or rebuild): every API call of a roll
runs here, none on the instances; so does writing the roll's HTML report."""

from __future__ import annotations

import calendar
import time

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import (
    CONNECTION_ARGUMENT_SPEC, build_client, check_wait_timeout)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import AzureClassicError
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
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import report as roll_report
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import rounds as roll_rounds
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils._roll import state as roll_state

display = Display()
TARGET_VARS = ("cloud_service", "deployment_slot", "deployment_name", "role_instance")
# Every host must see the rounds in lock step, with run_once steps run once: only linear does that (debug is
# linear with a debugger). free and host_pinned let each host run the steps on its own.
LINEAR_STRATEGIES = ("linear", "ansible.builtin.linear", "debug", "ansible.builtin.debug")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

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
        targets = []
        for host in hosts:
            host_vars = hostvars.get(host, {})
            # hostvars gives values already templated once; they are used as data, never templated again.
            values = {name: host_vars.get(name) if hasattr(host_vars, "get") else None for name in TARGET_VARS}
            targets.append(roll_identity.target_from_hostvars(host, values))
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
        if args.get("health_url"):
            health_gate.check_url(args["health_url"])
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
            if args.get("health_url"):
                health_gate.check_url(args["health_url"])
            factory = self._client_factory(args, state["options"])
            if step == "rounds" and not args.get("health_url"):
                # Nothing runs between rounds: each deployment rolls on at its own pace, in this one task.
                ran = roll_rounds.run_all_rounds(factory, state, state_file, display.display)
            else:
                # A health gate judges whole rounds: every deployment's batch k ends before any batch k+1.
                ran = 0
                for index in [args["round"]] if step == "round" else range(state["rounds"]):
                    ran = roll_rounds.run_round(factory, state, state_file, index, display.display)
                    if ran and args.get("health_url"):
                        self._health_gate(args, state, state_file)
                    # After the last round of a part: the bake at its checkpoint, the health gate asked throughout.
                    roll_rounds.pass_checkpoint(state, state_file, index, display.display, _bake_gate(args))
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
        summary["report_path"] = self._write_report(args, state, state_file, summary)
        display.display(roll_outcome.format_table(summary))
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
            state = roll_plan.rebuild(client, targets, options, roll, display.display)
        finally:
            client.close()
        return self._finish(args, task_vars, state, state_file)

    @staticmethod
    def _write_report(args, state, state_file, summary):
        """The roll's HTML report; a report that cannot be written is a warning, never a lost summary."""
        path = args.get("report_path") or roll_state.default_report_path(state_file.path)
        try:
            return roll_report.write(state, path, summary)
        except OSError as exc:
            display.warning("the roll's HTML report could not be written to %s: %s" % (path, exc.strerror or exc))
            return None

    def _refusable_plan(self, args, task_vars, check_mode):
        """The plan, or why the roll cannot start. A refusal is a result, not a failure: a failed run-once task
        fails only the host that ran it (ansible-core drops the others from the play without a word), and every
        host must report that its instance was not rolled. The role fails each host on ``refused``."""
        try:
            self._check_strategy()
            return self._plan(args, task_vars, check_mode)
        except (AzureClassicError, AnsibleError) as err:
            message = err.readable() if isinstance(err, AzureClassicError) else err.message
            display.error("the roll did not start, nothing was sent: %s" % message)
            return {"changed": False, "refused": message, "rounds": 0}

    def _plan(self, args, task_vars, check_mode):
        targets = self._targets(args, task_vars)
        options = self._options(args, targets)
        if args.get("state_path"):
            state_file = self._state_file(args["state_path"])
        else:  # named after the roll's id, which the plan knows once it has read the instances
            state_file = roll_state.default_state_file
        client = self._client_factory(args, options)()
        try:
            state = roll_plan.plan(client, targets, options, state_file, display.display, check_mode=check_mode)
        finally:
            client.close()
        hosts = roll_outcome.host_outcomes(state, check_mode=check_mode)
        result = {"changed": False, "operation": state["kind"], "rounds": state["rounds"],
                  "state_path": state.get("state_path") or getattr(state_file, "path", None),
                  # What the finish step needs to rebuild every host's outcome if the state file is lost.
                  "roll": {k: state.get(k) for k in ("roll_id", "started", "window_start", "counts_since",
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
        operation = outcome.get("operation") or roll_kinds.DEFAULT_KIND
        result = {"changed": kind in roll_kinds.CHANGED_OUTCOMES, "outcome": kind, "msg": outcome.get("msg"),
                  "instance": outcome.get("instance"), "request_id": outcome.get("request_id"),
                  "operation": operation}
        if kind in roll_kinds.FAILED_OUTCOMES:
            result["failed"] = True
            if outcome.get("code"):
                result["error_code"] = outcome["code"]
        if check_mode and kind in roll_kinds.CHANGED_OUTCOMES and self._task.diff:
            result["diff"] = {"before": "%s: as it is\n" % outcome.get("instance"),
                              "after": "%s: %s in round %s\n" % (
                                  outcome.get("instance"), roll_kinds.words(operation)["done"], outcome.get("round"))}
        return result

    @staticmethod
    def _health_gate(args, state, state_file):
        healthy, sentence = health_gate.wait_healthy(
            args["health_url"], args["health_status"], args["health_timeout"],
            validate_certs=args["health_validate_certs"], ca_path=args.get("health_ca_path"))
        if healthy:
            display.display(sentence)
        else:
            roll_rounds.stop_all(state, state_file, sentence)


def _checkpoint_options(args):
    """rolling_reimage_checkpoints, its bake and its action, checked before any request."""
    check_wait_timeout(args["checkpoint_delay"], "rolling_reimage_checkpoint_delay")
    return {"checkpoints": roll_checkpoints.parse(args.get("checkpoints")), "checkpoint_delay": args["checkpoint_delay"],
            "checkpoint_action": args["checkpoint_action"]}


def _bake_gate(args):
    """The health gate a bake asks throughout, or None without a health URL."""
    if not args.get("health_url"):
        return None
    return roll_checkpoints.health_check(args["health_url"], args["health_status"], args["health_timeout"],
                                         display.display, validate_certs=args["health_validate_certs"],
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
