"""Process helpers shared by bench-allocs, malloc-failure and memory-pressure: loopback ports,
starting a server (ninepd or diod) by PID and stopping exactly that PID, build and machine facts."""
import datetime
import hashlib
import os
import platform
import signal
import socket
import subprocess
import time

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(SCRIPTS)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listener(port, timeout=15.0, process=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            time.sleep(0.05)
    return False


_help_cache = {}


def ninepd_options(binary):
    """The long options that `ninepd --help` lists."""
    if binary not in _help_cache:
        try:
            text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        _help_cache[binary] = {word.rstrip(",=") for word in text.split() if word.startswith("--")}
    return _help_cache[binary]


def build_mallocshim(output=None):
    command = [os.path.join(SCRIPTS, "build-mallocshim")] + ([output] if output else [])
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]


class Server:
    """A server child process (own process group, stdout/stderr to a log file)."""

    def __init__(self, argv, log_path, env=None, preexec_fn=None):
        self.argv = argv
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True, preexec_fn=preexec_fn)
        self.pid = self.process.pid

    def alive(self):
        return self.process.poll() is None

    def returncode(self):
        return self.process.poll()

    def describe_exit(self):
        code = self.process.poll()
        if code is None:
            return "running"
        if code < 0:
            return "killed by %s" % signal.Signals(-code).name
        return "exited with status %d" % code

    def stop(self, timeout=10.0):
        """SIGTERM to the server's PID, SIGKILL after `timeout`; returns the exit code (negative: signal)."""
        if self.process.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()
        return self.process.returncode

    def log_text(self, tail=4000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""


def start_ninepd(binary, export, port, log_path, env=None, extra=(), preexec_fn=None):
    argv = [binary, "--export", export, "--listen", "tcp:127.0.0.1:%d" % port] + list(extra)
    server = Server(argv, log_path, env=env, preexec_fn=preexec_fn)
    if not wait_listener(port, process=server.process):
        server.stop(2)
        raise RuntimeError("ninepd did not listen on 127.0.0.1:%d (%s); log:\n%s" % (port, server.describe_exit(), server.log_text()))
    return server


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def git_head():
    try:
        head = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h %cd", "--date=iso"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--", "Sources"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + (" (Sources modified)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_description(binary, label=None):
    binary = os.path.abspath(binary)
    flavour = "release" if "/release/" in binary else "debug" if "/debug/" in binary else "unknown configuration"
    stamp = datetime.datetime.fromtimestamp(os.stat(binary).st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    shown = os.path.relpath(binary, ROOT) if binary.startswith(ROOT + "/") else binary
    return "%s (%s, built %s, sha256 %s); %s" % (shown, flavour, stamp, file_digest(binary), label or "tree " + git_head())


def machine_description():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            memory = ", %d MiB RAM" % (int(f.readline().split()[1]) // 1024)
    except (OSError, ValueError, IndexError):
        pass
    return "%s, %s, %d CPUs%s, Linux %s, glibc %s" % (platform.node(), cpu, os.cpu_count() or 0, memory, platform.release(),
                                                  platform.libc_ver()[1])


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
