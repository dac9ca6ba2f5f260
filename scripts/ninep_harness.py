"""Process helpers shared by bench-allocs, bench-isolation, malloc-failure and memory-pressure:
loopback ports, starting a server (ninepd or diod) by PID and stopping exactly that PID, the
ninep-load client tool (Sources/ninep-load) and its JSON lines, build and machine facts."""
import datetime
import hashlib
import json
import os
import platform
import select
import signal
import socket
import subprocess
import sys
import tempfile
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


def load_tool(near=None, explicit=None):
    """The ninep-load binary: `explicit`, else the one beside `near` (a ninepd binary: the same
    build), else .build/release or .build/debug, else built now (swift build; never while a build
    of this tree runs, e.g. under swift test, whose test target builds it beside ninepd)."""
    if explicit:
        return os.path.abspath(explicit)
    candidates = [os.path.join(os.path.dirname(os.path.abspath(near)), "ninep-load")] if near else []
    release = bool(near) and "/release/" in os.path.abspath(near)
    candidates += [os.path.join(ROOT, ".build", c, "ninep-load") for c in (("release", "debug") if release or not near else ("debug", "release"))]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    configuration = ["-c", "release"] if release else []
    binary = None
    try:
        subprocess.run(["swift", "build", "--product", "ninep-load"] + configuration, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, timeout=1800)
        binary = subprocess.run(["swift", "build", "--show-bin-path"] + configuration, cwd=ROOT, check=True,
                                capture_output=True, text=True, timeout=600).stdout.strip() + "/ninep-load"
    except (OSError, subprocess.SubprocessError) as e:
        print("no ninep-load binary, and swift build could not make one: %s" % e, file=sys.stderr)
    if binary is None or not os.access(binary, os.X_OK):
        raise SystemExit(2)   # the scripts' status for a setup error
    return binary


class LoadToolError(RuntimeError):
    pass


class LoadTool:
    """A ninep-load process (own process group, stopped by PID): commands go to its stdin, one
    JSON value per line comes back on its stdout. Every read has a timeout."""

    def __init__(self, binary, argv):
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen([binary] + list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, start_new_session=True)
        self.pid = self.process.pid
        self.buffer = b""

    def read(self, timeout):
        """The next JSON line; LoadToolError when none comes within `timeout` or the tool ended."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LoadToolError("ninep-load gave no answer within %.0f s%s" % (timeout, self.error_text()))
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.process.wait(10)
                    raise LoadToolError("ninep-load ended (status %s)%s" % (self.process.returncode, self.error_text()))
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as e:
            raise LoadToolError("ninep-load wrote %r: %s" % (line[:200], e)) from e

    def lines(self, deadline):
        """Every JSON line until the tool ends or `deadline` (monotonic) passes."""
        out = []
        while time.monotonic() < deadline:
            try:
                out.append(self.read(max(0.1, deadline - time.monotonic())))
            except LoadToolError:
                break
        return out

    def command(self, text, timeout=60.0):
        """Sends one command line and returns its answer (a dict)."""
        try:
            self.process.stdin.write((text + "\n").encode())
            self.process.stdin.flush()
        except OSError as e:
            raise LoadToolError("ninep-load does not take commands (%s)%s" % (e, self.error_text())) from e
        return self.read(timeout)

    def error_text(self):
        try:
            self.stderr.seek(0)
            text = self.stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return ": " + text[-2000:] if text else ""

    def close(self, timeout=30.0):
        """Ends its input (it closes its connections and exits), then SIGKILL by PID after `timeout`."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)   # its own process group: only what we started
            self.process.wait(10)
        self.process.stdout.close()
        self.stderr.close()
        return self.process.returncode


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
