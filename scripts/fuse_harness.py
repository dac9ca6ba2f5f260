"""Mounting ninepd through `ninep mount -f` for the FUSE proofs (fuse-data-check, fuse-pressure,
bench-fuse): the mount daemon is a process of its own (started and stopped by PID), the mount is
taken down whatever happens (ninep umount, then the fusectl abort and a lazy unmount), and a
directory is only removed when nothing is mounted under it."""
import os
import signal
import subprocess
import time

import ninep_harness as harness


def mounts_under(path):
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def mounted(path):
    return path in mounts_under(path)


def ensure_fusectl():
    """The fusectl file system (each connection's `abort` file: the escape from a hung mount)."""
    if not os.listdir("/sys/fs/fuse/connections"):
        subprocess.run(["mount", "-t", "fusectl", "none", "/sys/fs/fuse/connections"], capture_output=True)


class FuseMount:
    """`ninep mount -f [options] SERVER MOUNTPOINT` as a child process, ready once it logs "mounted ".

    wrap: a function from argv to argv (e.g. a cgroup's), applied to the daemon's command line."""

    def __init__(self, ninep, address, mountpoint, log_path, options=(), wrap=None, timeout=30.0):
        self.ninep, self.mountpoint = ninep, mountpoint
        argv = [ninep, "mount", "-f"] + list(options) + [address, mountpoint]
        self.daemon = harness.Server(wrap(argv) if wrap else argv, log_path)
        self.pid = self.daemon.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.daemon.alive():
            if mounted(mountpoint) and "mounted " in self.daemon.log_text(100000):
                return
            time.sleep(0.05)
        self.close()
        raise RuntimeError("ninep mount did not become ready (%s): %s" % (self.daemon.describe_exit(), self.daemon.log_text()))

    def status(self, timeout=5.0):
        """The daemon's SIGUSR1 status line."""
        before = self.daemon.log_text(1 << 20).count("status:")
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while self.daemon.log_text(1 << 20).count("status:") == before and time.monotonic() < deadline:
            time.sleep(0.02)
        lines = [l for l in self.daemon.log_text(1 << 20).splitlines() if "status:" in l]
        return lines[-1] if lines else ""

    def unmount(self, timeout=30.0):
        """`ninep umount`, then the daemon must exit 0; returns (ok, detail)."""
        result = subprocess.run([self.ninep, "umount", self.mountpoint], capture_output=True, text=True, timeout=timeout)
        try:
            self.daemon.process.wait(15)
        except subprocess.TimeoutExpired:
            pass
        ok = result.returncode == 0 and self.daemon.returncode() == 0 and not mounted(self.mountpoint)
        return ok, "umount %d %s; daemon %s" % (result.returncode, result.stderr.strip(), self.daemon.describe_exit())

    def close(self):
        """Whatever state it is in: no mount left, the daemon stopped."""
        for path in reversed(mounts_under(self.mountpoint)):
            subprocess.run([self.ninep, "umount", "--abort", path], capture_output=True, timeout=30)
            subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)
        self.daemon.stop(5)


def remove_tree(work):
    """rm -rf of a scratch directory, only when nothing is mounted under it."""
    if mounts_under(work):
        print("cleanup: %s still has mounts %s; leaving it in place" % (work, mounts_under(work)))
        return False
    subprocess.run(["rm", "-rf", "--one-file-system", work])
    return True
