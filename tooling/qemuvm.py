"""QEMU driven with QEMU's own Python packages (python/qemu/machine and
python/qemu/qmp from the base tree, build/src/python).

A thin adapter: the project's scripts call cmd(), hmp(), qtest_cmd(),
read_stderr(), quit() and proc; qemu.machine does the process, the QMP
connection (a socketpair), the qtest socket and the log.  Run with Debian's
/usr/bin/python3 (the packages need nothing beyond the standard library).
"""

import logging
import os
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QEMU_PYTHON = os.path.join(os.environ.get("VFIO_BUILD",
                                          os.path.join(TOP, "build")),
                           "src", "python")
if QEMU_PYTHON not in sys.path:
    sys.path.insert(0, QEMU_PYTHON)

# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine  # noqa: E402
from qemu.machine.machine import VMLaunchFailure  # noqa: E402
from qemu.machine.qtest import QEMUQtestMachine  # noqa: E402
from qemu.qmp import QMPError  # noqa: E402  (re-exported for callers)
from qemu.qmp.legacy import QMPBadPortError  # noqa: E402,F401

__all__ = ["VM", "QMPError", "VMLaunchFailure"]
# the tests judge exit statuses themselves
logging.getLogger("qemu.machine").setLevel(logging.ERROR)


def env_wrapper(env):
    """A command prefix that runs QEMU in env (a full environment) or,
    when env is None, in ours: qemu.machine's Popen takes no env."""
    if env is None:
        return []
    if all(env.get(k) == v for k, v in os.environ.items()):
        return ["/usr/bin/env"] + ["%s=%s" % kv for kv in env.items()
                                   if os.environ.get(kv[0]) != kv[1]]
    return ["/usr/bin/env", "-i"] + ["%s=%s" % kv for kv in env.items()]


class VM:
    """qemu-system-x86_64 through qemu.machine.

    qtest=True: -accel qtest and a qtest socket (QEMUQtestMachine);
    otherwise a real guest (the caller gives -accel).  stderr_path: where
    QEMU's stdout and stderr go (qemu.machine's log file).
    """

    def __init__(self, binary, args, env=None, stderr_path=None, wrapper=(),
                 qtest=True, qmp_timer=600, launch=True):
        self.dir = tempfile.mkdtemp(prefix="vfio-series-")
        log_dir, name = self.dir, "qemu"
        if stderr_path:
            log_dir = os.path.dirname(os.path.abspath(stderr_path))
            name = os.path.basename(stderr_path)
        self.stderr_path = os.path.join(log_dir, name + ".log")
        wrap = env_wrapper(env) + list(wrapper)
        args = ["-nodefaults"] + list(args)
        if qtest:
            self.m = QEMUQtestMachine(binary, args, wrapper=wrap, name=name,
                                      base_temp_dir=self.dir,
                                      qmp_timer=qmp_timer)
            self.m._args = ["-qtest-log", "/dev/null"] + self.m._args
        else:
            self.m = QEMUMachine(binary, args, wrapper=wrap, name=name,
                                 base_temp_dir=self.dir, log_dir=log_dir,
                                 qmp_timer=qmp_timer)
        if qtest:
            self.m._log_dir = log_dir
        self.exitcode = None
        if launch:
            self.launch()

    def launch(self):
        self.m.launch()

    @property
    def proc(self):
        return self.m._subp  # pylint: disable=protected-access

    def cmd(self, name, **args):
        """A QMP command; its return value; QMPError if it fails."""
        return self.m.cmd(name, args_dict=args)

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def qtest_cmd(self, line):
        resp = self.m.qtest(line)
        if not resp.startswith("OK"):
            raise RuntimeError("qtest %r: %s" % (line, resp))
        return resp

    def event_wait(self, name, timeout, match=None):
        return self.m.event_wait(name, timeout=timeout, match=match)

    def read_stderr(self):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def running(self):
        return self.m.is_running()

    def quit(self, timeout=60):
        """quit over QMP (killed if it does not exit); the exit status."""
        if self.exitcode is None:
            try:
                self.m.shutdown(timeout=timeout)
            except Exception:  # pylint: disable=broad-except
                self.m.shutdown(hard=True)
            self.exitcode = self.m.exitcode()
        return self.exitcode

    def kill(self):
        self.m.shutdown(hard=True)
        self.exitcode = self.m.exitcode()
        return self.exitcode
