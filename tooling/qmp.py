"""A minimal QMP and qtest client for the project's scripts (no dependencies)."""

import json
import os
import socket
import subprocess
import tempfile
import time


class QEMU:
    """Run qemu-system-x86_64 under -accel qtest with a QMP and a qtest socket."""

    def __init__(self, binary, args, env=None, stderr_path=None, wrapper=()):
        self.dir = tempfile.mkdtemp(prefix="vfio-series-")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.qtest_path = os.path.join(self.dir, "qtest.sock")
        self.stderr_path = stderr_path or os.path.join(self.dir, "stderr")
        qmp_srv = self._listen(self.qmp_path)
        qtest_srv = self._listen(self.qtest_path)
        cmd = list(wrapper) + [binary, "-accel", "qtest", "-display", "none", "-nodefaults",
               "-qtest", "unix:" + self.qtest_path, "-qtest-log", "/dev/null",
               "-chardev", "socket,id=qmp,path=" + self.qmp_path,
               "-mon", "chardev=qmp,mode=control"] + args
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr)
        self.qtest = self._accept(qtest_srv)
        self.qmp = self._accept(qmp_srv)
        self.qtest_buf = b""
        self.qmp_file = self.qmp.makefile("rb")
        self.events = []
        json.loads(self.qmp_file.readline())          # greeting
        self.cmd("qmp_capabilities")

    @staticmethod
    def _listen(path):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(1)
        return s

    def _accept(self, srv, timeout=600):
        """Wait for QEMU to connect; fail at once if it exits first."""
        srv.settimeout(0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn, _ = srv.accept()
                break
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError("QEMU exited with %d; stderr:\n%s" %
                                       (self.proc.returncode, self.read_stderr()))
                if time.monotonic() > deadline:
                    self.proc.kill()
                    raise RuntimeError("QEMU did not connect; stderr:\n" +
                                       self.read_stderr())
        srv.close()
        conn.settimeout(None)
        return conn

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.qmp.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            line = self.qmp_file.readline()
            if not line:
                raise RuntimeError("QMP closed; stderr:\n" + self.read_stderr())
            resp = json.loads(line)
            if "event" in resp:
                self.events.append(resp)
                continue
            if "error" in resp:
                raise RuntimeError("%s: %s" % (name, resp["error"]["desc"]))
            return resp["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def qtest_cmd(self, line):
        self.qtest.sendall(line.encode() + b"\n")
        while b"\n" not in self.qtest_buf:
            chunk = self.qtest.recv(4096)
            if not chunk:
                raise RuntimeError("qtest closed; stderr:\n" + self.read_stderr())
            self.qtest_buf += chunk
        resp, self.qtest_buf = self.qtest_buf.split(b"\n", 1)
        resp = resp.decode()
        if not resp.startswith("OK"):
            raise RuntimeError("qtest %r: %s" % (line, resp))
        return resp

    def read_stderr(self):
        self.stderr.flush()
        with open(self.stderr_path) as f:
            return f.read()

    def quit(self):
        try:
            self.cmd("quit")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()
        return self.proc.returncode
