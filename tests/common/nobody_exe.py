"""tests/common/nobody_exe.py — a copy of a program that `nobody` can run.

Tests that check permission errors run wastenet as `nobody` when they run as root. A
fresh clone may sit in a 0700 folder (a mkdtemp), which `nobody` cannot enter: neither
the build's binary nor a library the build links from inside the clone (oneDNN 3.2 in
.deps/onednn, tools/fetch_onednn.sh) is reachable. copy_for_nobody() copies the binary
and every shared library it loads from outside the system's folders into a folder the
caller has made world-readable, and returns the environment that makes the loader find
them there (LD_LIBRARY_PATH is searched before the binary's RUNPATH).
"""
import os
import re
import shutil
import subprocess

SYSTEM_DIRS = ("/lib/", "/lib64/", "/usr/")


def copy_for_nobody(exe, folder):
    """Returns (path of the copy, environment additions for running it)."""
    copy = os.path.join(folder, os.path.basename(exe))
    shutil.copy(exe, copy)
    os.chmod(copy, 0o755)
    libdir = os.path.join(folder, "nobody_libs")
    os.makedirs(libdir, exist_ok=True)
    os.chmod(libdir, 0o755)
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True).stdout
    for name, path in re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M):
        if not path.startswith(SYSTEM_DIRS):
            target = os.path.join(libdir, name)
            shutil.copy(os.path.realpath(path), target)
            os.chmod(target, 0o755)
    return copy, {"LD_LIBRARY_PATH": libdir}
