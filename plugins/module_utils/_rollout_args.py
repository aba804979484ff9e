# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec of the reimage_rollout action (rolling reimage, reboot or rebuild), shared by the action
plugin and its documentation stub."""

from __future__ import annotations

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import CONNECTION_ARGUMENT_SPEC

# The request-rate ceiling of one roll (requests a second); docs/performance.md says why this default.
DEFAULT_MAX_RPS = 40

ROLLOUT_ARGUMENT_SPEC = dict(
    CONNECTION_ARGUMENT_SPEC,
    step=dict(type="str", required=True, choices=["plan", "round", "rounds", "abort", "finish", "report"]),
    hosts=dict(type="list", elements="str"),
    connection=dict(type="dict", default={}, no_log=True),
    round=dict(type="int"),
    outcome=dict(type="dict"),
    reason=dict(type="str"),
    state_path=dict(type="path"),
    operation=dict(type="str", default="reimage", choices=["reimage", "reboot", "rebuild"]),
    report_path=dict(type="path"),
    report_dir=dict(type="path"),
    fresh=dict(type="bool", default=False),
    batch_size=dict(type="int", default=0),
    max_failures=dict(type="int", default=0),
    allow_unready=dict(type="bool", default=False),
    operation_timeout=dict(type="int", default=1800),
    ready_timeout=dict(type="int", default=1800),
    availability_timeout=dict(type="int", default=1800),
    roll=dict(type="dict", options=dict(
        roll_id=dict(type="str"), run_id=dict(type="str"), started=dict(type="float"), window_start=dict(type="float"),
        counts_since=dict(type="float"), service_started=dict(type="float"))),
    max_parallel=dict(type="int", default=0),
    max_requests_per_second=dict(type="int", default=DEFAULT_MAX_RPS),
    poll_interval=dict(type="float", default=0.25),
    resume_window=dict(type="int", default=86400),
    since=dict(type="str"),
    checkpoints=dict(type="list", elements="raw", default=[]),
    checkpoint_delay=dict(type="int", default=0),
    checkpoint_action=dict(type="str", default="stop", choices=["stop", "continue"]),
    # It may carry a user and password for the check: never shown, never saved.
    health_url=dict(type="str", no_log=True),
    # Each host's own health URL ({host: URL}), templated with that host's variables; secret like health_url.
    instance_health_urls=dict(type="dict", no_log=True),
    health_status=dict(type="list", elements="int", default=[200]),
    health_timeout=dict(type="int", default=300),
    health_validate_certs=dict(type="bool", default=True),
    health_ca_path=dict(type="path"),
)
