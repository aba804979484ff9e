# -*- coding: utf-8 -*-
# Copyright: contributors to azure_classic.cloud_services
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a file or folder the roll keeps on the controller (its state file, its reports) is ours alone, and writing
such a file: another local user who owns it, or may write to it, could plant or swap what the roll reads or writes
there. Controller only."""

from __future__ import annotations

import errno
import os
import stat
import tempfile


def owner_and_mode_problem(info, what):
    """Why ``what`` (described by ``info``, an os.stat result) cannot be trusted, or None."""
    if info.st_uid != os.geteuid():
        return "%s is owned by another user (uid %d)" % (what, info.st_uid)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "%s is writable by other users (mode %o)" % (what, stat.S_IMODE(info.st_mode))
    return None


def write_privately(path, text, setting):
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600), in a folder that is ours alone
    (created 0700); a folder another user owns or may write to is refused (OSError naming ``setting``, the variable
    that moves it): whoever controls the folder could swap the file. Returns the absolute path."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    problem = owner_and_mode_problem(os.stat(directory), "its folder %s" % directory)
    if problem:
        raise OSError(errno.EPERM, "%s; it is not written (fix the folder, or point %s elsewhere)" % (problem, setting))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".roll-", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
