"""TEST STAND-IN for Firecracker's ``jailer``: checks its arguments, then runs the VMM.

It is NOT the jailer: it does not chroot, change uid/gid, create namespaces or cgroups (the
stand-in VMM is a Python program that could not run inside an empty chroot). It checks what the
real jailer would refuse — the flags and their forms, that the exec file exists and is executable,
and that the chroot folder ``<chroot-base>/<exec-file name>/<id>/root`` holds what the VMM will
be told about — records its argv in ``<chroot>/../jailer-argv.json`` for tests to inspect, then
execs the exec file with the arguments after ``--``, with paths given relative to the jail mapped
to the host (GLIDEX_STANDIN_CHROOT tells the Firecracker stand-in to do the same for API bodies).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
EXIT_BAD_ARGUMENTS = 1


def fail(message: str) -> None:
    sys.stderr.write(f"Jailer error (stand-in): {message}\n")
    sys.exit(EXIT_BAD_ARGUMENTS)


def main() -> None:
    argv = sys.argv[1:]
    if "--" not in argv:
        fail("missing '--' before the VMM's arguments")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="jailer")
    parser.add_argument("--id", required=True)
    parser.add_argument("--exec-file", required=True)
    parser.add_argument("--uid", required=True, type=int)
    parser.add_argument("--gid", required=True, type=int)
    parser.add_argument("--chroot-base-dir", default="/srv/jailer")
    parser.add_argument("--netns")
    parser.add_argument("--daemonize", action="store_true")
    parser.add_argument("--new-pid-ns", action="store_true")
    args = parser.parse_args(argv[:split])
    vmm_args = argv[split + 1:]
    if not ID_RE.fullmatch(args.id):
        fail(f"invalid instance id {args.id!r}")
    if not (os.path.isfile(args.exec_file) and os.access(args.exec_file, os.X_OK)):
        fail(f"the exec file {args.exec_file} is not an executable file")
    if not os.path.isabs(args.chroot_base_dir):
        fail("--chroot-base-dir must be an absolute path")
    if args.daemonize:
        fail("--daemonize would detach the VMM from its console keeper")
    root = os.path.join(args.chroot_base_dir, os.path.basename(args.exec_file), args.id, "root")
    if not os.path.isdir(root):
        fail(f"the chroot folder {root} does not exist")
    for item in os.listdir(root):
        stat = os.stat(os.path.join(root, item))
        if os.path.isfile(os.path.join(root, item)) and (stat.st_uid, stat.st_gid) != (
                args.uid, args.gid):
            fail(f"{item} in the jail is not owned by {args.uid}:{args.gid}")
    with open(os.path.join(os.path.dirname(root), "jailer-argv.json"), "w") as f:
        json.dump(argv, f)
    mapped: list[str] = []
    for arg in vmm_args:
        if mapped and mapped[-1] in ("--api-sock", "--log-path", "--metrics-path"):
            arg = root + arg if arg.startswith("/") else arg
        mapped.append(arg)
    os.environ["GLIDEX_STANDIN_CHROOT"] = root
    os.chdir(root)
    os.execv(args.exec_file, [args.exec_file, *mapped])


if __name__ == "__main__":
    main()
