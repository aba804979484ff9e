# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roll's state on the controller: the JSON state file (progress for the summary and the report; the
service's history, not this file, decides what was done), where it lives, and how its times are kept."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import threading
import time

from ansible_collections.azure_classic.cloud_services.plugins.module_utils import _names as names
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import AzureClassicError
from ansible_collections.azure_classic.cloud_services.plugins.plugin_utils import _private_files as private_files

STATE_VERSION = 2
SAVE_EVERY = 1.0


class RolloutError(AzureClassicError):
    """The roll cannot start (preflight) or its state cannot be used."""


def now():
    return time.time()


def iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else None


def default_state_path(roll):
    """~/.ansible/rolling_reimage/roll-<id>.json for the roll id ``roll``."""
    return os.path.join(os.path.expanduser("~"), ".ansible", "rolling_reimage", "roll-%s.json" % roll)


def default_state_file(roll):
    """The StateFile at default_state_path for the roll id ``roll``."""
    return StateFile(default_state_path(roll))


def default_report_path(state_path):
    """The HTML report goes beside the state file, with its name: roll-<id>.json -> roll-<id>.html."""
    path = os.path.splitext(state_path)[0] + ".html"
    return path + ".html" if path == state_path else path


class StateFile:
    """The roll's progress on the controller, written atomically (0600, in a 0700 folder) after every change.

    It is read only when it is safe to trust: not a symlink, owned by us, writable by nobody else (nor its
    folder), so another local user cannot plant request ids or outcomes in it.
    """

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def _refuse(self, why):
        raise RolloutError("the roll's state file %s %s; it is not used (fix it, or point "
                           "rolling_reimage_state_path elsewhere)" % (self.path, why), code="StateFile")

    def _check_owner_and_mode(self, info, what):
        problem = private_files.owner_and_mode_problem(info, what)
        if problem:
            self._refuse(problem)

    def load(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            self._check_owner_and_mode(os.stat(directory), "its folder")
        except FileNotFoundError:
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._refuse("is a symbolic link")
            raise RolloutError("cannot read the roll's state file %s: %s" % (self.path, exc.strerror),
                               code="StateFile") from None
        with os.fdopen(fd, encoding="utf-8") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                self._refuse("is not a regular file")
            self._check_owner_and_mode(info, "it")
            try:
                state = json.load(handle)
            except ValueError as exc:
                raise RolloutError("the roll's state file %s is not valid JSON (%s): remove it, or set "
                                   "rolling_reimage_fresh to start a new roll" % (self.path, exc),
                                   code="StateFile") from None
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            return None
        for inst in state.get("instances", {}).values():
            if inst.get("request_id"):
                inst["request_id"] = names.check_request_id(inst["request_id"])
        return state

    def save(self, state):
        with self.lock:
            self._last_save = time.monotonic()
            text = _dump(state)
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".roll-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(tmp, self.path)
            except BaseException:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise

    def save_soon(self, state):
        """Save, at most once every SAVE_EVERY seconds: the file is progress for the summary, not what exactly
        once rests on (the service's history is), and saving a large roll after every change would cost
        O(instances) each time, O(instances^2) in all."""
        if time.monotonic() - getattr(self, "_last_save", 0.0) >= SAVE_EVERY:
            self.save(state)


def _dump(state):
    """The state as JSON; other threads may be adding keys to it meanwhile, so a changed dict is read again."""
    for _attempt in range(10):
        try:
            return json.dumps(state, indent=1, sort_keys=True)
        except RuntimeError:  # dictionary changed size during iteration
            time.sleep(0.01)
    return json.dumps(json.loads(json.dumps(state, default=str)), indent=1, sort_keys=True)
