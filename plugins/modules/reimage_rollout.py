#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: reimage_rollout
short_description: Internal engine of the rolling_reimage role, not for direct use
version_added: 0.1.0
description:
  - The engine of the P(azure_classic.cloud_services.rolling_reimage#role) role, which runs its steps (a rolling
    reimage, reboot or rebuild) on the controller. It is not meant to be used directly, and its options may change
    in any release; use the role. It is documented so that its options and results can be looked up.
  - A roll sends one kind of operation, O(operation), to every instance (a rolling reimage, the default, a
    rolling reboot or a rolling rebuild). Everything below holds for each; the plan keeps the operation in the
    roll's state, and the messages, the summary and the report name it.
  - V(plan) reads every target's deployment live and the service's operation history, and refuses to start
    (listing every problem) when a deployment is locked by another operation (naming its request id),
    transitioning, or (by default) has an instance that is not C(ReadyRole). It splits the instances still to
    roll into batches of one upgrade domain per deployment (optionally at most O(batch_size) instances), in
    ascending order, and writes the plan to a state file on the controller.
  - Exactly once. A roll is identified by the instances it targets. An instance whose reimage the service's
    operation history shows within O(resume_window) seconds is not sent again. A succeeded one counts as done, one
    still in progress is followed to its end (and its instance waited for until C(ReadyRole)) before the first
    round, a failed one is sent again. This holds after a crash, an operation timeout, or on another machine with
    no state file; O(fresh) starts a new roll of the same instances.
  - In check mode the plan step runs the live preflight (reads only), prints the plan and returns what each host
    would do; nothing is sent and nothing is written. The other steps do nothing in check mode.
  - V(round) runs batch O(round) of every deployment at the same time. Within a deployment the batch's reimages
    are sent back to back, each once the previous operation has released the deployment's lock, and the batch's
    instances recover together; the round ends when every one of them is C(ReadyRole) again. A failed reimage or an
    instance that does not recover stops its deployment's roll (beyond O(max_failures)). An optional health URL is
    checked after the round. V(rounds) runs every round in turn in one task, for rolls with nothing to run
    between rounds.
  - Polling learns from the roll itself. Once an operation or a batch's recovery has been seen to take some
    time, the next wait for one looks first when that time has passed, then at growing intervals; every request of
    the roll, from every deployment's thread, stays under O(max_requests_per_second).
  - V(abort) stops every deployment's roll (the role calls it when a task of a round fails); V(finish) prints the
    table of instances, writes the roll's HTML report (O(report_path)) and returns the summary and each host's
    outcome; V(report), run on every host, turns its
    outcome (O(outcome)) into the host's own result, so the recap, retry files and AWX's host summary name the
    right instances.
  - Needs the linear strategy; any other fails before anything is sent.
  - Runs on the controller only; it never connects to the hosts, which stand for role instances.
author:
  - Azure Classic Maintainers (@azure-classic)
options:
  step:
    description: Which step to run.
    type: str
    required: true
    choices: [plan, round, rounds, abort, finish, report]
  hosts:
    description:
      - The hosts to roll; each names its role instance through the host variables C(cloud_service),
        C(deployment_slot) or C(deployment_name), C(role_instance).
      - Defaults to the hosts of the current play batch.
    type: list
    elements: str
  connection:
    description: Connection options as a dictionary; they override the options of the same name.
    type: dict
    default: {}
  round:
    description: The round to run, from 0, with O(step=round).
    type: int
  outcome:
    description: With O(step=report), this host's entry of RV(hosts) from the plan (check mode) or finish step.
    type: dict
  reason:
    description: Why the roll is stopped, with O(step=abort).
    type: str
  operation:
    description:
      - What the roll does to each instance, with O(step=plan); the later steps follow the plan.
      - V(reimage) (Reimage Role Instance), V(reboot) (Reboot Role Instance, disks kept) or V(rebuild) (Rebuild
        Role Instance, local drives wiped).
    type: str
    choices: [reimage, reboot, rebuild]
    default: reimage
  report_dir:
    description:
      - With O(step=finish), the folder of each run's own record (mode 0600 files, the folder created 0700), with its
        HTML report and its JSON summary, named after the state file and the run's id so that no run overwrites
        another's, and C(index.html), listing every run whose summary lies there, newest first.
      - The report is self-contained (inline CSS and SVG, no script, nothing fetched) and drawn from the roll's state
        alone.
      - By default the state file's folder.
      - A record that cannot be written is a warning; the summary is returned all the same.
    type: path
  report_path:
    description:
      - With O(step=finish), a fixed path that also gets this run's HTML report (a CI artifact, say); unlike the
        record in O(report_dir), the next run overwrites it.
    type: path
  state_path:
    description:
      - The roll's state file on the controller. By default one per set of targets and operation under
        C(~/.ansible/rolling_reimage/).
      - Required after the plan step (the role passes the path the plan returned).
    type: path
  fresh:
    description: Start a new roll of the same instances, ignoring the state file and the operations that ended in
      the service's history; one still running is followed, never sent again. Prefer O(since).
    type: bool
    default: false
  since:
    description: When this roll started (UTC, like V(2026-11-27T20:00:00Z), or epoch seconds); only operations since
      then count as done by an earlier run of it. Replaces O(resume_window).
    type: str
  checkpoints:
    description:
      - Where the roll stops part-way, as instance counts (V(1)) or percentages of the roll (V("50%"), more than 0
        and less than 100), of every instance the roll targets, those done by an earlier run included. A percentage
        rounds up (at least 1 instance); a checkpoint at or above the roll's size is dropped; duplicates merge.
        Anything else is refused before any request.
      - The instances still to do, in the order the batches run, are cut at each checkpoint not yet reached (part 1
        runs up to the first, and so on); each part is batched as a roll is (upgrade domains ascending, one upgrade
        domain per batch, O(batch_size)), and every round of a part ends before the next part starts. The first part
        may be smaller than an upgrade domain (a canary); the rest of its domain follows in the next part.
      - After a part the roll waits O(checkpoint_delay) seconds (the bake) with the health gate asked throughout,
        then stops or goes on by O(checkpoint_action).
    type: list
    elements: raw
    default: []
  checkpoint_delay:
    description: Seconds the roll waits at each checkpoint (the bake time), with O(health_url) asked every 2 seconds
      when set; a failing health gate stops the roll.
    type: int
    default: 0
  checkpoint_action:
    description:
      - What the roll does after the bake at a checkpoint.
      - V(stop) ends the job successfully with the roll paused there (summary status V(paused)); the plan holds only
        the next part, and the next run of the same roll (the same targets and operation, or the same O(since)),
        on any machine, goes on to the next checkpoint, since the service's history shows what was done.
      - V(continue) goes on by itself.
    type: str
    choices: [stop, continue]
    default: stop
  batch_size:
    description: At most this many instances of a deployment in one batch; V(0) means a whole upgrade domain.
    type: int
    default: 0
  max_failures:
    description: How many failed instances a deployment tolerates before its roll stops. Only a failure that leaves
      its instance C(ReadyRole) is tolerated; an operation still running or an instance still down stops the
      deployment.
    type: int
    default: 0
  allow_unready:
    description: Start even when an instance of a target deployment is not C(ReadyRole).
    type: bool
    default: false
  operation_timeout:
    description: Seconds to wait for one operation of the roll (including waiting out another operation's lock).
    type: int
    default: 1800
  ready_timeout:
    description: Seconds to wait for a batch's instances to report C(ReadyRole) after their operations.
    type: int
    default: 1800
  availability_timeout:
    description:
      - Seconds a batch waits, before it starts and after any wait for the deployment's lock, while an instance of
        another upgrade domain is not C(ReadyRole), whatever took it down (another job, a reboot from elsewhere, a
        stuck instance). Then the deployment's roll stops, naming the instances that were down and since when.
      - Instances accepted down at plan time with O(allow_unready) do not count while they stay down.
    type: int
    default: 1800
  roll:
    description:
      - With O(step=finish), the plan's C(roll) result (its window on the service's clock), from which every host's
        outcome is rebuilt from the service's operation history when the state file is gone.
    type: dict
    suboptions:
      roll_id:
        description: The roll's id.
        type: str
      run_id:
        description: This run's id.
        type: str
      started:
        description: When this run started, on the controller's clock (epoch seconds).
        type: float
      window_start:
        description: From when the service's history counts for the roll, on the service's clock (epoch seconds).
        type: float
      counts_since:
        description: From when an operation of anyone's counts as done for the roll, on the service's clock.
        type: float
      service_started:
        description: When the roll started, on the service's clock (epoch seconds).
        type: float
  max_parallel:
    description: How many deployments roll at the same time; V(0) means all of them.
    type: int
    default: 0
  max_requests_per_second:
    description: The most API requests a second the whole roll sends, every deployment included.
    type: int
    default: 40
  poll_interval:
    description: Shortest polling interval, in seconds; it grows by 5% of the time waited.
    type: float
    default: 0.25
  resume_window:
    description: How far back, in seconds, the service's operation history is read to find what an earlier run of
      this roll did, unless O(since) is given. An operation of the roll's kind on a target instance in this window
      is never sent again unless O(fresh) is set.
    type: int
    default: 86400
  health_url:
    description:
      - A URL that must answer with one of O(health_status) before the roll sends anything (step V(plan), in check
        mode too) and after every round.
      - It may carry a user and password for the check; they are used, and never shown or saved.
    type: str
  instance_health_urls:
    description:
      - Each host's own health URL, as a mapping of host name to URL (the role templates
        C(rolling_reimage_instance_health_url) with each host's variables).
      - Each must answer with one of O(health_status) before the roll sends anything, and once its instance's batch
        is C(ReadyRole); one that does not stops the roll.
      - Like O(health_url), never shown or saved.
    type: dict
  health_status:
    description: HTTP statuses that pass the health gate.
    type: list
    elements: int
    default: [200]
  health_timeout:
    description: Seconds the health URL has to pass, retried every 2 seconds.
    type: int
    default: 300
  health_validate_certs:
    description: Verify the health URL's certificate.
    type: bool
    default: true
  health_ca_path:
    description: CA bundle (PEM) the health URL's certificate is verified against (the role's C(rolling_reimage_health_ca_path)).
    type: path
extends_documentation_fragment:
  - azure_classic.cloud_services._connection
  - azure_classic.cloud_services._connection.transport
  - azure_classic.cloud_services._attributes
  - azure_classic.cloud_services._attributes.actiongroup
attributes:
  check_mode:
    support: full
    details: The plan step reads live state and returns the plan; nothing is sent or written.
  diff_mode:
    support: partial
    details: In check mode the plan step and each host's report show the plan as a diff.
seealso:
  - module: azure_classic.cloud_services.role_instance_reimage
  - module: azure_classic.cloud_services.role_instance_reboot
  - module: azure_classic.cloud_services.role_instance_rebuild
"""

EXAMPLES = r"""
# The rolling_reimage role drives these steps; see its documentation. Directly:
- name: Plan a rolling reboot
  azure_classic.cloud_services.reimage_rollout:
    step: plan
    operation: reboot
  run_once: true
  register: plan

- name: Run every round
  azure_classic.cloud_services.reimage_rollout:
    step: round
    round: "{{ item }}"
    state_path: "{{ plan.state_path }}"
  loop: "{{ range(plan.rounds) | list }}"
  run_once: true

- name: Summary and HTML report
  azure_classic.cloud_services.reimage_rollout:
    step: finish
    state_path: "{{ plan.state_path }}"
    report_path: /var/tmp/rolling-reboot.html
  run_once: true
  register: finish

- name: Each host reports its own outcome
  azure_classic.cloud_services.reimage_rollout:
    step: report
    outcome: "{{ finish.hosts[inventory_hostname] | default(omit) }}"
"""

RETURN = r"""
operation:
  description: The roll's operation, V(reimage), V(reboot) or V(rebuild).
  returned: with O(step=plan) and O(step=report)
  type: str
  sample: reboot
rounds:
  description: Number of rounds (the most batches of any deployment).
  returned: with O(step=plan)
  type: int
state_path:
  description: The state file of the roll.
  returned: with O(step=plan)
  type: str
resumed:
  description: True when the plan resumed an unfinished roll.
  returned: with O(step=plan)
  type: bool
instances:
  description: Number of instances in the roll.
  returned: with O(step=plan)
  type: int
hosts:
  description:
    - Per host, what the roll did (or, in check mode, would do) with its instance, for O(step=report).
    - C(outcome) is V(reimaged), V(already_reimaged) (by an earlier run of the roll), V(failed), V(not_reimaged)
      (the roll stopped before its batch), V(duplicate) (another host names the same instance) or
      V(would_reimage) (check mode); C(msg) says it in words, with C(instance), C(request_id) and C(operation).
    - A rolling reboot says V(rebooted), V(already_rebooted), V(not_rebooted) and V(would_reboot) instead; a
      rolling rebuild V(rebuilt), V(already_rebuilt), V(not_rebuilt) and V(would_rebuild).
    - V(waiting) when the roll paused at a checkpoint before the instance's part (O(checkpoint_action=stop)).
  returned: with O(step=plan) and O(step=finish)
  type: dict
outcome:
  description:
    - This host's outcome, with O(step=report).
    - A failed host's result holds only C(msg) and C(outcome); the instance, its request id and the error are in the
      table the V(finish) step prints and in the roll's report.
  returned: with O(step=report)
  type: str
deployments_rolled:
  description: How many deployments ran a batch in this round.
  returned: with O(step=round)
  type: int
stopped_deployments:
  description: Deployments whose roll stopped, with the reason.
  returned: with O(step=round)
  type: dict
summary:
  description: The outcome of the roll.
  returned: with O(step=finish)
  type: dict
  contains:
    status:
      description: V(complete), V(failed), or V(paused) (at a checkpoint, with O(checkpoint_action=stop)).
      type: str
    operation:
      description: The roll's operation, V(reimage), V(reboot) or V(rebuild).
      type: str
    counts:
      description: Instances C(done), C(failed), C(untouched) and C(skipped) (done by an earlier run of the roll);
        with O(checkpoints), also C(waiting) (for a later part of the roll).
      type: dict
    checkpoint:
      description:
        - Where a paused roll stopped, or null. C(reached) and C(of) (checkpoint k of n), C(instances_done) and
          C(instances) (the roll's size), C(bakes) (start and end of each bake), C(since) (the roll's window start,
          UTC) and C(how_to_continue), the words that say how to go on (C(-e rolling_reimage_since=<since>)).
      type: dict
    stopped_deployments:
      description: Deployments whose roll stopped, with the reason.
      type: dict
    instances:
      description: One entry per instance with C(host), C(deployment), C(instance), C(role), C(upgrade_domain),
        C(request_id), C(start), C(end), C(outcome) and C(error).
      type: list
      elements: dict
    state_path:
      description: The state file.
      type: str
    report_path:
      description: The HTML report written (O(report_path) when given), or null when it could not be written (a
        warning says why).
      type: str
    summary_path:
      description: The JSON summary of this run, beside its report in O(report_dir).
      type: str
    index_path:
      description: The index page of the runs in O(report_dir).
      type: str
    elapsed:
      description: Seconds from this run's plan to its summary.
      type: float
    run_id:
      description: This run's id (its UTC start and 4 random hex digits).
      type: str
    roll_id:
      description: The roll's id, the same for every run of the same roll.
      type: str
    run:
      description: This run's settings, and where and by whom it ran (controller, user, AWX job id when there is
        one); no secret.
      type: dict
    to_continue:
      description: When the roll did not complete, the exact way to continue it (the same command with
        C(rolling_reimage_since), or in AWX a relaunch).
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._rollout_args import ROLLOUT_ARGUMENT_SPEC


def main():
    module = AnsibleModule(argument_spec=ROLLOUT_ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="reimage_rollout runs as an action on the controller; this file only documents it")


if __name__ == "__main__":
    main()
