# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operations a roll can run (reimage, reboot, rebuild), the words each is named with, and the outcomes a
host reports after each."""

from __future__ import annotations

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import InputError

DEFAULT_KIND = "reimage"
# The words each operation is named with in messages, the summary and each host's outcome.
OPERATION_WORDS = {
    "reimage": {"verb": "reimage", "done": "reimaged", "doing": "reimaging"},
    "reboot": {"verb": "reboot", "done": "rebooted", "doing": "rebooting"},
    "rebuild": {"verb": "rebuild", "done": "rebuilt", "doing": "rebuilding"},
}


def words(kind):
    """How operation ``kind`` is named: verb (reboot), done (rebooted), doing (rebooting)."""
    if kind not in OPERATION_WORDS:
        raise InputError("operation must be one of %s, not %r" % (", ".join(sorted(OPERATION_WORDS)), kind))
    return OPERATION_WORDS[kind]


def host_outcome_names(kind):
    """Outcomes a host reports after a roll of ``kind`` (the action's report step turns them into
    ok/changed/failed): done (this run), already (an earlier run), not (never reached), would (check mode)."""
    w = words(kind)
    return {"done": w["done"], "already": "already_" + w["done"], "not": "not_" + w["done"],
            "would": "would_" + w["verb"], "failed": "failed", "duplicate": "duplicate"}


# Outcomes of every kind that mean the host's instance changed (or would), and that mean it failed.
CHANGED_OUTCOMES = frozenset(name for kind in OPERATION_WORDS for key, name in host_outcome_names(kind).items()
                             if key in ("done", "would"))
FAILED_OUTCOMES = frozenset(name for kind in OPERATION_WORDS for key, name in host_outcome_names(kind).items()
                            if key in ("failed", "not"))
