"""`docker run --privileged` where the machine cannot grant every capability.

Docker 20.10 gives a privileged container every capability it knows; on a VM whose capability
bounding set lacks one (CAP_SYS_RESOURCE on these machines), runc then fails with "unable to
apply caps: operation not permitted", and kind creates every node privileged. A dockerd the
harness starts on such a machine gets a default runtime that is runc behind a small wrapper:
it removes the capabilities the host cannot grant from the container's (or `docker exec`'s)
process spec, then runs the real runc. Where the bounding set is complete, nothing changes.

    >>> missing_capabilities()           # doctest: +SKIP
    ['CAP_SYS_RESOURCE']
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

RUNTIME_NAME = "mlops-runc"

# Linux capability numbers (kernel ABI, include/uapi/linux/capability.h).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)


def missing_capabilities(status: str | None = None, last_cap: int | None = None) -> list[str]:
    """Capabilities this kernel has (up to cap_last_cap) that this process's bounding set lacks."""
    if status is None:
        status = Path("/proc/self/status").read_text()
    if last_cap is None:
        last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    bounding = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("CapBnd:"))
    known = min(last_cap, len(CAPABILITIES) - 1)
    return [f"CAP_{CAPABILITIES[bit]}" for bit in range(known + 1) if not bounding >> bit & 1]


# The wrapper runs for every container operation of the engine: stdlib only, then exec runc.
_WRAPPER = '''\
#!{python} -I
"""runc minus the capabilities this host cannot grant (written by the mlops harness)."""
import json, os, sys

DROP = set({drop!r})
RUNC = {runc!r}


def strip(path):
    with open(path) as f:
        spec = json.load(f)
    # config.json holds the process under "process"; an exec's process file is the process itself.
    caps = (spec["process"] if "process" in spec else spec).get("capabilities") or {{}}
    changed = False
    for kind, names in caps.items():
        kept = [n for n in names or [] if n not in DROP]
        if kept != names:
            caps[kind], changed = kept, True
    if changed:
        with open(path + ".mlops", "w") as f:
            json.dump(spec, f)
        os.replace(path + ".mlops", path)


args = sys.argv[1:]
for i, arg in enumerate(args):
    if arg in ("create", "run"):
        rest = args[i + 1:]
        bundle = next((rest[j + 1] for j, a in enumerate(rest[:-1]) if a in ("--bundle", "-b")), None)
        bundle = bundle or next((a.split("=", 1)[1] for a in rest if a.startswith("--bundle=")), ".")
        strip(os.path.join(bundle, "config.json"))
        break
    if arg == "exec":
        rest = args[i + 1:]
        process = next((rest[j + 1] for j, a in enumerate(rest[:-1]) if a in ("--process", "-p")), None)
        process = process or next((a.split("=", 1)[1] for a in rest if a.startswith("--process=")), None)
        if process:
            strip(process)
        break
os.execv(RUNC, [RUNC, *args])
'''


def find_runc() -> str | None:
    """The runc Docker itself would run (Debian's docker.io depends on the runc package)."""
    return shutil.which("runc") or next((p for p in ("/usr/sbin/runc", "/usr/bin/runc") if Path(p).is_file()), None)


def runtime_args(state_dir: Path) -> list[str]:
    """dockerd arguments that make privileged containers work here; none where they already do."""
    drop = missing_capabilities()
    runc = find_runc()
    if not drop or runc is None:
        return []
    state_dir.mkdir(parents=True, exist_ok=True)
    wrapper = state_dir / RUNTIME_NAME
    text = _WRAPPER.format(python=Path(sys.executable).resolve(), drop=sorted(drop), runc=runc)
    if not wrapper.is_file() or wrapper.read_text() != text:
        partial = wrapper.with_suffix(".partial")
        partial.write_text(text)
        partial.chmod(0o755)
        partial.replace(wrapper)
    return [f"--add-runtime={RUNTIME_NAME}={wrapper}", f"--default-runtime={RUNTIME_NAME}"]
