# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a file or folder the roll keeps on the controller (its state file, its report) is ours alone: another
local user who owns it, or may write to it, could plant or swap what the roll reads or writes there. Controller only."""

from __future__ import annotations

import os
import stat


def owner_and_mode_problem(info, what):
    """Why ``what`` (described by ``info``, an os.stat result) cannot be trusted, or None."""
    if info.st_uid != os.geteuid():
        return "%s is owned by another user (uid %d)" % (what, info.st_uid)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "%s is writable by other users (mode %o)" % (what, stat.S_IMODE(info.st_mode))
    return None
