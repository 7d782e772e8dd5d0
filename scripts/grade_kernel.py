"""A sandboxed Jupyter kernel for one submission: no network, read-only course files, time limits.

Two sandboxes, chosen by :func:`make_sandbox`:

* ``unshare`` (Linux, when unprivileged user namespaces are allowed): the kernel starts under
  ``unshare --user --map-root-user --net --mount --pid --fork --kill-child``. Its network
  namespace has no interface up (not even loopback), so nothing it runs, subprocesses included,
  can connect anywhere; the course repository, the Python installation, the user's home, the
  submissions and the report folder are bind-mounted read-only, so it cannot rewrite the checker
  on disk or leave a startup file behind for the next notebook; and it is process 1 of
  its own PID namespace, so every process it started dies with it (no background process
  outlives the kernel to rewrite the report later) and it cannot see or signal the grader.
  The kernel talks to the grader over Unix sockets (ZeroMQ's ``ipc`` transport), which cross
  the network namespace.
* ``guard`` (anywhere else, e.g. a runner that forbids user namespaces): a ``sitecustomize``
  on the kernel's ``PYTHONPATH`` makes Python's ``socket`` refuse internet addresses, and the
  kernel's process group is killed when it is done. This stops ordinary network use from
  Python code only: a subprocess or C code is not stopped, and files are not protected; the
  grader detects changes to the course's files instead (``scripts/grade.py``).

:class:`Kernel` runs code with a time limit, reports a kernel that died or stopped answering,
and reads results from the execute reply's ``user_expressions``.
"""

from __future__ import annotations

import os
import queue
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client import KernelManager

GUARD = '''"""Installed by the course's grader: Python's sockets refuse internet addresses."""
import errno
import socket

_BLOCKED = {socket.AF_INET, socket.AF_INET6}


def _refuse(*args, **kwargs):
    raise OSError(errno.ENETUNREACH, "network access is blocked while the notebook is graded")


def _guarded(method):
    def call(self, *args, **kwargs):
        if self.family in _BLOCKED:
            _refuse()
        return method(self, *args, **kwargs)
    return call


for _name in ("connect", "connect_ex", "sendto", "sendmsg"):
    if hasattr(socket.socket, _name):
        setattr(socket.socket, _name, _guarded(getattr(socket.socket, _name)))
socket.getaddrinfo = socket.create_connection = _refuse
'''


@dataclass
class Sandbox:
    """How kernels are isolated: ``prefix`` goes before the kernel's command line."""

    mode: str  # "unshare" or "guard"
    prefix: list[str] = field(default_factory=list)
    pythonpath: list[str] = field(default_factory=list)
    read_only: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.mode == "unshare":
            return ("unshare: no network (an empty network namespace); the course, Python, home, submissions "
                    "and report folders read-only; every process of the kernel killed with it")
        return ("guard: Python sockets refuse internet addresses (subprocesses and C code are not stopped); "
                "changes to the course's files are detected")


def _unshare_prefix(read_only: list[str]) -> list[str]:
    mounts = [f"mount --bind {shlex.quote(p)} {shlex.quote(p)} && mount -o remount,bind,ro {shlex.quote(p)} "
              f"{shlex.quote(p)}" for p in read_only]
    script = " && ".join(mounts + ['exec "$@"'])
    return [shutil.which("unshare") or "unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--kill-child",
            "sh", "-c", script, "grader-sandbox"]


def make_sandbox(mode: str, read_only: list[Path], scratch: Path) -> Sandbox:
    """The sandbox ``mode`` asks for ("auto", "unshare" or "guard"); "auto" prefers unshare.

    ``read_only`` are the folders the kernel must not change; ``scratch`` is the grader's own
    temporary folder (the guard's ``sitecustomize`` goes there).
    """
    if mode not in ("auto", "unshare", "guard"):
        raise ValueError(f"sandbox must be 'auto', 'unshare' or 'guard'; got {mode!r}")
    paths = sorted({str(Path(p).resolve()) for p in read_only if Path(p).exists()})
    if mode in ("auto", "unshare") and shutil.which("unshare") and sys.platform.startswith("linux"):
        prefix = _unshare_prefix(paths)
        probe = subprocess.run([*prefix, sys.executable, "-c", "import socket, sys; s = socket.socket(); "
                                "sys.exit(0 if s.connect_ex(('1.1.1.1', 53)) != 0 else 1)"],
                               capture_output=True, timeout=60)
        if probe.returncode == 0:
            return Sandbox("unshare", prefix, read_only=paths)
        if mode == "unshare":
            raise RuntimeError("--sandbox unshare: unprivileged user namespaces are not available here "
                               f"({probe.stderr.decode(errors='replace').strip()[:300]}); use --sandbox guard")
    elif mode == "unshare":
        raise RuntimeError("--sandbox unshare needs Linux and the `unshare` command (util-linux)")
    guard = scratch / "socket-guard"
    guard.mkdir(parents=True, exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD, encoding="utf-8")
    return Sandbox("guard", pythonpath=[str(guard)], read_only=paths)


@dataclass
class Reply:
    """What became of one execute request."""

    status: str  # "ok", "error", "timeout" (no reply in time) or "dead" (the kernel exited)
    ename: str = ""
    evalue: str = ""
    expressions: dict = field(default_factory=dict)  # user_expressions: name -> text/plain


class _SandboxedKernelManager(KernelManager):
    sandbox_prefix: list[str] = []

    def format_kernel_cmd(self, extra_arguments=None):
        return [*self.sandbox_prefix, *super().format_kernel_cmd(extra_arguments)]


class Kernel:
    """A fresh python3 kernel in ``workdir``, started under ``sandbox``, with ``env``."""

    def __init__(self, sandbox: Sandbox, workdir: Path, private: Path, env: dict[str, str]):
        self.manager = _SandboxedKernelManager(kernel_name="python3")
        self.manager.sandbox_prefix = list(sandbox.prefix)
        self.manager.transport = "ipc"  # Unix sockets: they work across the network namespace
        self.manager.connection_file = str(private / "kernel.json")
        env = dict(env)
        env["PYTHONPATH"] = os.pathsep.join([*sandbox.pythonpath, *filter(None, [env.get("PYTHONPATH")])])
        self.workdir, self.env, self.client = workdir, env, None

    def start(self, timeout: float) -> None:
        self.manager.start_kernel(cwd=str(self.workdir), env=self.env)
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=timeout)

    def alive(self) -> bool:
        return self.manager.is_alive()

    def _drain_iopub(self) -> None:
        """Outputs are not used (never trusted, never kept); drop them so they cannot pile up."""
        try:
            while True:
                self.client.get_iopub_msg(timeout=0)
        except queue.Empty:
            pass

    def execute(self, code: str, timeout: float, *, store_history: bool = True,
                user_expressions: dict[str, str] | None = None) -> Reply:
        msg_id = self.client.execute(code, silent=not store_history, store_history=store_history,
                                     user_expressions=user_expressions or {}, allow_stdin=False,
                                     stop_on_error=False)
        deadline = time.monotonic() + timeout
        while True:
            self._drain_iopub()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Reply("timeout")
            try:
                msg = self.client.get_shell_msg(timeout=min(0.2, remaining))
            except queue.Empty:
                if not self.alive():
                    return Reply("dead")
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            content = msg["content"]
            expressions = {name: value.get("data", {}).get("text/plain", "")
                           for name, value in (content.get("user_expressions") or {}).items()
                           if isinstance(value, dict) and value.get("status") == "ok"}
            return Reply(content.get("status", "error"), content.get("ename", ""), content.get("evalue", ""),
                         expressions)

    def interrupt(self, grace: float) -> bool:
        """Interrupt the running code; ``True`` when the kernel answers again within ``grace`` s."""
        if not self.alive():
            return False
        self.manager.interrupt_kernel()
        probe = self.execute("pass", grace, store_history=False)
        return probe.status == "ok"

    def cpu_seconds(self) -> float | None:
        """CPU time (user + sys) used so far by the kernel and its processes; ``None`` off Linux."""
        process = getattr(self.manager.provisioner, "process", None)
        if process is None or not Path("/proc/self/stat").exists():
            return None
        if not Path(f"/proc/{process.pid}").exists():
            return None  # already gone (a kernel that died): its time cannot be read any more
        ticks, total, todo = os.sysconf("SC_CLK_TCK"), 0.0, [process.pid]
        while todo:
            pid = todo.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += sum(int(f) for f in fields[11:15]) / ticks  # utime, stime, cutime, cstime
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
        return total

    def close(self) -> None:
        try:
            if self.client is not None:
                self.client.stop_channels()
        finally:
            try:
                self.manager.shutdown_kernel(now=True)
            except Exception:  # noqa: BLE001  (already gone)
                pass
            self.manager.cleanup_resources()
