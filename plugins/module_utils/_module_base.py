# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of every module: AnsibleModule with the connection options, one client, and every error of the
collection turned into a clean failure. Private to this collection."""

from __future__ import annotations

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.azure_classic.cloud_services.plugins.module_utils._connection import CONNECTION_ARGUMENT_SPEC, build_client
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._errors import (
    AzureClassicError, ServiceManagementError, WaitTimeoutError)
from ansible_collections.azure_classic.cloud_services.plugins.module_utils._waiter import Deadline


class ServiceManagementModule:
    """AnsibleModule with the connection options, one client, and structured failures."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(CONNECTION_ARGUMENT_SPEC)
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self._client = None

    @property
    def client(self):
        if self._client is None:
            self._client = build_client(self.params, warn=self.module.warn)
        return self._client

    def deadline(self, seconds):
        return Deadline(seconds)

    def run(self, action):
        """Run ``action(self, result)``; it fills ``result`` as it goes, so a failure after a request was
        accepted still reports ``changed`` and the ``request_id``. Every error becomes a clean failure."""
        result = {"changed": False}
        try:
            action(self, result)
        except WaitTimeoutError as err:
            self._fail(err, result, timed_out=True)
        except AzureClassicError as err:
            self._fail(err, result)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Nothing foreseen: still a structured failure, and a request already accepted still reports changed
            # and its id, so a task retried on failure does not send it again. The traceback shows with -vvv.
            err = ServiceManagementError("unexpected failure: %s: %s" % (exc.__class__.__name__, exc), code="UnexpectedError")
            self._fail(err, result, exception=traceback.format_exc())
        finally:
            if self._client is not None:
                self._client.close()
        self.module.exit_json(**result)

    def _fail(self, err, result, **extra):
        result = dict(result, **extra)
        if err.request_id and not result.get("request_id"):
            result["request_id"] = err.request_id
        result["error"] = err.to_dict()
        self.module.fail_json(msg=err.readable(), **result)
