#!/usr/bin/env python3
"""Kernel-client interrupt checks for a 9P2000.L server.

Runs INSIDE the user-mode-linux guest started by scripts/uml/run-9p-battery,
as root, on a directory where the Linux 9p client has mounted the server under
test (same conventions as battery.py). Each check blocks or busies a child
process in a system call on the mount, interrupts it with SIGINT (default
action, no handler) or SIGKILL, and asserts that the process is gone within
2 s of the signal (measured from kill(2) to the child becoming reapable), that
nothing the server holds was lost or half-done, and that the mount still works.
Python 3 standard library only.

Usage:
  interrupt.py MOUNT RESULTS.json [--only a,b] [--skip a,b] [--msize N]
               [--write-mib 64] [--check-timeout 60]

RESULTS.json = {"mount_opts", "mount_line", "msize", "checks": [{"name", "ok",
"skipped", "detail", "seconds"}], "passed", "failed", "skipped"}; while the
checks run, RESULTS.json.partial holds the ones finished so far.

Checks:
  fifo-open-{sigint,sigkill}   child blocked opening a FIFO (made with mkfifo on
                               the mount) for reading, no writer
  fifo-read-{sigint,sigkill}   child blocked in read() on the FIFO, a writer
                               holding it open without writing
  lock-wait-{sigint,sigkill}   child blocked in F_SETLKW on a range process A
                               holds (A on the same mount); A keeps its lock
  lock-wait-remote-{sigint,sigkill}
                               the same with A holding the lock through a second
                               9p mount of the same server (another connection):
                               the guest's own lock table knows nothing of A's
                               lock, so the wait happens through the server
                               (Tlock answered "blocked", the client retries)
  write-interrupted-{sigkill,sigint}
                               a 64 MiB file of self-describing 4096-byte blocks
                               (generation OLD) is overwritten by ONE write(2)
                               of generation NEW, signalled inside the write(2)
                               at several points; every block must be entirely
                               OLD or entirely NEW and the size unchanged
  mount-usable                 (last) create, write, read back, stat, listdir,
                               unlink, mkdir/rmdir; every other check also ends
                               with a small usability probe

Each check runs in its own process group with a SIGALRM limit
(--check-timeout x a factor) and, behind it, a hard limit (30 s more) that the
runner enforces with SIGKILL to the group: a handled SIGALRM cannot break a
wait inside the 9p client, which only fatal signals interrupt. The runner
itself never touches the mount after creating the top directory.

What the Linux 6.1 client does, as these checks see it (so read the results
with it in mind):
- A FIFO on a 9p mount is a local special file in the guest (v9fs calls
  init_special_inode): open and read block in the guest's pipe code and send
  nothing to the server (no Tlopen, no Tread), so the fifo-* checks show
  the guest side only; the server sees Tmknod and walks.
- F_SETLKW first takes the guest's own lock table (locks_lock_file_wait), so
  with A on the same mount B waits locally; only the -remote variants make
  B's wait go through the server (Tlock with the BLOCK flag answered
  P9_LOCK_BLOCKED, then an interruptible sleep of up to 30 s before retrying).
- A fatal signal during a Twrite makes the client send Tflush and wait for
  Rflush. If the server answered the Twrite (Rwrite, then Rflush) the client
  goes on with the rest of the write(2): p9_client_rpc clears the pending
  signal before each later request, so the whole write completes and the
  process only dies afterwards. The write stops part-way only if a request
  was still unsent (cancelled) or the server dropped the flushed Twrite; then
  the file is new up to the end of the last answered Twrite, which is whole
  4 KiB blocks only if the Twrite size (iounit, else msize - 24) is.

Where the guest kernel shows it, a check's detail names where the child was
blocked before the signal (process state, wchan, top of /proc/PID/stack).
"""
import argparse
import errno
import fcntl
import hashlib
import json
import os
import re
import select
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback

from checklib import CHECKS, KiB, MiB, CheckTimeout, Skip, check, ename, expect, read_all, step, write_all

BLOCK = 4096
GONE_WITHIN = 2.0        # seconds from kill(2) to the child being reapable
BLOCK_BEFORE_KILL = 0.5  # seconds a child sits blocked before the signal
REAP_LIMIT = 10.0        # how long we wait at most for a signalled child

LIVE = {}                # pid -> label: forked helpers not reaped yet
STUCK = {}               # pid -> label: helpers we could not reap even after SIGKILL


def signame(sig):
    return signal.Signals(sig).name


def describe_status(st):
    if st is None:
        return "not reaped"
    if os.WIFSIGNALED(st):
        return "killed by %s" % signame(os.WTERMSIG(st))
    if os.WIFEXITED(st):
        return "exited %d" % os.WEXITSTATUS(st)
    return "status 0x%x" % st


# ----------------------------------------------------------------------------
# helper processes


class Helper:
    """A forked helper with a JSON-lines channel each way.

    The child runs fn(chan) with SIGINT, SIGTERM and SIGALRM at their default
    actions (nothing installed: Python's own SIGINT handler is removed) and an
    alarm so it never outlives its check by much. Every helper is in LIVE until
    reaped; reap_leftovers() kills and reaps what a check left behind."""

    def __init__(self, fn, label, life=90):
        p2c_r, p2c_w = os.pipe()
        c2p_r, c2p_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(p2c_w)
                os.close(c2p_r)
                for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
                    signal.signal(s, signal.SIG_DFL)
                signal.alarm(life)
                fn(_Chan(p2c_r, c2p_w))
            except BaseException:
                try:
                    _Chan(-1, c2p_w).send({"exception": traceback.format_exc(limit=3)})
                except BaseException:
                    pass
                code = 1
            os._exit(code)
        os.close(p2c_r)
        os.close(c2p_w)
        self.pid = pid
        self.label = label
        self.status = None
        self.chan = _Chan(c2p_r, p2c_w)
        LIVE[pid] = label

    def send(self, obj):
        self.chan.send(obj)

    def recv(self, timeout=10):
        msg = self.chan.recv(timeout)
        if isinstance(msg, dict) and "exception" in msg:
            raise AssertionError("%s failed: %s" % (self.label, msg["exception"]))
        return msg

    def pending(self):
        """A message the child sent that we have not read yet, else None."""
        try:
            return self.chan.recv(0)
        except CheckTimeout:
            return None
        except AssertionError:   # channel closed: the child died
            return {"closed": True}

    def alive(self):
        if self.status is not None:
            return False
        pid, st = os.waitpid(self.pid, os.WNOHANG)
        if pid:
            self._reaped(st)
            return False
        return True

    def _reaped(self, st):
        self.status = st
        LIVE.pop(self.pid, None)
        STUCK.pop(self.pid, None)
        for fd in (self.chan.rfd, self.chan.wfd):
            try:
                os.close(fd)
            except OSError:
                pass

    def kill_and_time(self, sig, limit=REAP_LIMIT):
        """Send sig; return seconds until the child could be reaped (None if it
        was still there after limit)."""
        t0 = time.monotonic()
        os.kill(self.pid, sig)
        left = wait_exit(self.pid, limit)
        if left is None:
            return None
        seconds = time.monotonic() - t0
        _, st = os.waitpid(self.pid, 0)
        self._reaped(st)
        return seconds

    def finish(self, limit=10):
        """Reap after a normal exit (wait up to limit), else SIGKILL."""
        if self.status is not None:
            return self.status
        if wait_exit(self.pid, limit) is None:
            os.kill(self.pid, signal.SIGKILL)
            if wait_exit(self.pid, 5) is None:
                STUCK[self.pid] = self.label
                return None
        _, st = os.waitpid(self.pid, 0)
        self._reaped(st)
        return st


def wait_exit(pid, limit):
    """Wait until pid is a zombie (reapable), without reaping it; True, or None
    after limit seconds. Uses a pidfd where the kernel has one, else polls."""
    deadline = time.monotonic() + limit
    try:
        pfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pfd = None
    try:
        while True:
            left = deadline - time.monotonic()
            if pfd is not None:
                r, _, _ = select.select([pfd], [], [], max(0.0, left))
                if r:
                    return True
            else:
                try:
                    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    return True
                if info is not None:
                    return True
                time.sleep(0.001)
            if time.monotonic() >= deadline:
                return None
    finally:
        if pfd is not None:
            os.close(pfd)


def reap_leftovers():
    """SIGKILL and reap every helper still in LIVE; returns notes on those that
    would not go (e.g. stuck in D state waiting for the server)."""
    notes = []
    for pid, label in list(LIVE.items()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if wait_exit(pid, 5) is None:
            STUCK[pid] = label
            notes.append("%s (pid %d) still there 5 s after SIGKILL: %s" % (label, pid, where(pid)))
            continue
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        LIVE.pop(pid, None)
        STUCK.pop(pid, None)
    return notes


class _Chan:
    def __init__(self, rfd, wfd):
        self.rfd, self.wfd, self.buf = rfd, wfd, b""

    def send(self, obj):
        write_all(self.wfd, (json.dumps(obj) + "\n").encode())

    def recv(self, timeout=10):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.rfd], [], [], max(0.0, left))
            if r:
                b = os.read(self.rfd, 65536)
                if not b:
                    raise AssertionError("other process closed the channel (died?)")
                self.buf += b
            elif left <= 0:
                raise CheckTimeout("no message from the other process within %ss" % timeout)
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def where(pid, stack=True):
    """Where a process is: state, wchan, the top of its kernel stack."""
    parts = []
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts.append("state " + f.read().rsplit(")", 1)[1].split()[0])
    except OSError:
        return "gone"
    try:
        with open("/proc/%d/wchan" % pid) as f:
            w = f.read().strip()
            if w and w != "0":
                parts.append("wchan " + w)
    except OSError:
        pass
    if not stack:
        return ", ".join(parts)
    try:
        with open("/proc/%d/stack" % pid) as f:
            frames = [re.sub(r"^\[<[0-9a-fx]+>\]\s*", "", l.strip()).split("+")[0] for l in f if l.strip()]
        frames = [fr for fr in frames if fr and not fr.startswith(("0x", "?"))]
        if frames:
            parts.append("stack " + "<".join(frames[:7]))
    except OSError:
        pass
    return ", ".join(parts)


def exited_by(st, sig):
    return st is not None and os.WIFSIGNALED(st) and os.WTERMSIG(st) == sig


def interrupt(helper, sig, what):
    """The common middle of every blocked-syscall check: the helper must still
    be blocked (no message, alive); send sig; it must be gone within
    GONE_WITHIN and have died of sig. Returns (seconds, where-it-was)."""
    early = helper.pending()
    expect(early is None, "%s returned before the signal: %r" % (what, early))
    expect(helper.alive(), "%s: the child died before the signal (%s)" % (what, describe_status(helper.status)))
    blocked_in = where(helper.pid)
    seconds = helper.kill_and_time(sig)
    if seconds is None:
        raise AssertionError("%s: child still there %.0f s after %s (was: %s; now: %s)" % (
            what, REAP_LIMIT, signame(sig), blocked_in, where(helper.pid)))
    expect(exited_by(helper.status, sig), "%s: child %s, want killed by %s" % (
        what, describe_status(helper.status), signame(sig)))
    expect(seconds <= GONE_WITHIN, "%s: child took %.3f s to go after %s (limit %.1f s; it was %s)" % (
        what, seconds, signame(sig), GONE_WITHIN, blocked_in))
    return seconds, blocked_in


def usable(d, tag="probe"):
    """The mount still works in d: create, write, read back, stat, listdir, unlink."""
    p = os.path.join(d, "usable-%s-%s" % (tag, os.urandom(3).hex()))
    data = os.urandom(3000) + tag.encode()
    fd = step("usable: create", os.open, p, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    try:
        step("usable: write", write_all, fd, data)
    finally:
        os.close(fd)
    fd = step("usable: open", os.open, p, os.O_RDONLY)
    try:
        got = step("usable: read", read_all, fd)
    finally:
        os.close(fd)
    expect(got == data, "usable: read back %d bytes, want %d" % (len(got), len(data)))
    st = step("usable: stat", os.stat, p)
    expect(stat.S_ISREG(st.st_mode) and st.st_size == len(data), "usable: stat mode %o size %d" % (st.st_mode, st.st_size))
    expect(os.path.basename(p) in step("usable: listdir", os.listdir, d), "usable: new file not listed")
    step("usable: unlink", os.unlink, p)
    expect(not os.path.lexists(p), "usable: file still there after unlink")
    return "mount usable"


# ----------------------------------------------------------------------------
# FIFO checks


def fifo_open(ctx, d, sig):
    p = os.path.join(d, "fifo")
    os.mkfifo(p, 0o644)
    expect(stat.S_ISFIFO(os.lstat(p).st_mode), "mkfifo made no FIFO")

    def reader(chan):
        chan.send("opening")
        fd = os.open(p, os.O_RDONLY)
        chan.send("opened %d" % fd)
        time.sleep(60)

    r = Helper(reader, "fifo reader")
    expect(r.recv(20) == "opening", "protocol")
    time.sleep(BLOCK_BEFORE_KILL)
    seconds, was = interrupt(r, sig, "open(fifo, O_RDONLY) with no writer")
    return "open blocked %.1f s (%s); %s -> gone in %.3f s; %s" % (
        BLOCK_BEFORE_KILL, was, signame(sig), seconds, usable(d))


def fifo_read(ctx, d, sig):
    p = os.path.join(d, "fifo")
    os.mkfifo(p, 0o644)

    def writer(chan):
        chan.send("opening")
        fd = os.open(p, os.O_WRONLY)
        chan.send("opened")
        chan.recv(60)           # hold the FIFO open, write nothing
        os.close(fd)

    def reader(chan):
        fd = os.open(p, os.O_RDONLY)
        chan.send("opened")
        chan.send("reading")
        b = os.read(fd, 4096)
        chan.send("read %d bytes" % len(b))
        time.sleep(60)

    w = Helper(writer, "fifo writer")
    expect(w.recv(20) == "opening", "protocol (writer)")
    r = Helper(reader, "fifo reader")
    expect(r.recv(20) == "opened", "reader's open did not complete with a writer waiting")
    expect(w.recv(20) == "opened", "writer's open did not complete with a reader")
    expect(r.recv(20) == "reading", "protocol (reader)")
    time.sleep(BLOCK_BEFORE_KILL)
    seconds, was = interrupt(r, sig, "read(fifo) with an idle writer")
    wsec = w.kill_and_time(signal.SIGKILL)
    expect(wsec is not None, "writer still there %.0f s after SIGKILL: %s" % (REAP_LIMIT, where(w.pid)))
    return "read blocked %.1f s (%s); %s -> gone in %.3f s; writer SIGKILL -> gone in %.3f s; %s" % (
        BLOCK_BEFORE_KILL, was, signame(sig), seconds, wsec, usable(d))


for _sig in (signal.SIGINT, signal.SIGKILL):
    check("fifo-open-" + _sig.name.lower())(lambda ctx, d, s=_sig: fifo_open(ctx, d, s))
    check("fifo-read-" + _sig.name.lower())(lambda ctx, d, s=_sig: fifo_read(ctx, d, s))


# ----------------------------------------------------------------------------
# lock checks

LOCK_START, LOCK_LEN = 100, 4000


def lock_probe(path, label):
    """A new process opens path and tries F_SETLK (F_WRLCK) on the range; returns
    "ok" (then releases it) or the errno name."""
    def prober(chan):
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, LOCK_LEN, LOCK_START)
            fcntl.lockf(fd, fcntl.LOCK_UN, LOCK_LEN, LOCK_START)
            chan.send("ok")
        except OSError as e:
            chan.send(ename(e))
        os.close(fd)

    h = Helper(prober, label)
    try:
        return h.recv(40)
    finally:
        h.finish()


def lock_wait(ctx, d, sig, remote):
    p = os.path.join(d, "lockfile")
    with open(p, "wb") as f:
        f.write(b"L" * 8192)
    a_path = p
    if remote:
        m2 = ctx.second_mount()
        a_path = os.path.join(m2, os.path.relpath(p, ctx.mount))
        expect(os.path.exists(a_path), "the file is not visible through the second mount at %s" % a_path)

    def holder(chan):
        fd = os.open(a_path, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, LOCK_LEN, LOCK_START)
        chan.send("locked")
        expect(chan.recv(120) == "unlock", "protocol")
        fcntl.lockf(fd, fcntl.LOCK_UN, LOCK_LEN, LOCK_START)
        chan.send("unlocked")
        chan.recv(120)
        os.close(fd)

    def waiter(chan):
        fd = os.open(p, os.O_RDWR)
        chan.send("blocking")
        fcntl.lockf(fd, fcntl.LOCK_EX, LOCK_LEN, LOCK_START)     # F_SETLKW
        chan.send("got the lock")
        time.sleep(60)

    a = Helper(holder, "lock holder A")
    expect(a.recv(20) == "locked", "A could not take the lock")
    before = lock_probe(p, "probe C0")
    expect(before == "EAGAIN", "a third process's F_SETLK while A holds the range: %s, want EAGAIN" % before)
    b = Helper(waiter, "lock waiter B")
    expect(b.recv(20) == "blocking", "protocol (B)")
    time.sleep(BLOCK_BEFORE_KILL)
    seconds, was = interrupt(b, sig, "F_SETLKW on a range A holds")
    expect(a.alive(), "A died: %s" % describe_status(a.status))
    held = lock_probe(p, "probe C1")
    expect(held == "EAGAIN",
           "after B was killed, a third process's F_SETLK got %s: A's lock is gone (want EAGAIN)" % held)
    a.send("unlock")
    expect(a.recv(20) == "unlocked", "A could not unlock")
    after = lock_probe(p, "probe C2")
    expect(after == "ok", "after A unlocked, a new F_SETLK got %s, want success" % after)
    a.send("exit")
    st = a.finish()
    expect(st == 0, "A: %s" % describe_status(st))
    return "%sB blocked %.1f s (%s); %s -> gone in %.3f s; then F_SETLK by C: %s (A still holds), after A's unlock: ok; %s" % (
        "A holds via a second mount; " if remote else "", BLOCK_BEFORE_KILL, was, signame(sig), seconds, held, usable(d))


for _sig in (signal.SIGINT, signal.SIGKILL):
    check("lock-wait-" + _sig.name.lower())(lambda ctx, d, s=_sig: lock_wait(ctx, d, s, False))
for _sig in (signal.SIGINT, signal.SIGKILL):
    check("lock-wait-remote-" + _sig.name.lower())(lambda ctx, d, s=_sig: lock_wait(ctx, d, s, True))


# ----------------------------------------------------------------------------
# interrupted big write

MAGIC = b"9P-BLOCK"
OLD, NEW = 1, 2


def block(idx, gen):
    """4096 self-describing bytes: magic, block index, generation, then a filler
    derived from (index, generation) by SHA-256, so any mix of two blocks or of
    two generations of one block differs from both."""
    head = struct.pack("<8sQQ", MAGIC, idx, gen)
    fill = hashlib.sha256(b"%d/%d" % (idx, gen)).digest() * ((BLOCK - len(head)) // 32 + 1)
    return head + fill[:BLOCK - len(head)]


def blocks_into(buf, first, count, gen):
    """Write blocks first..first+count-1 of generation gen into buf (a
    bytearray, reused: fresh memory costs a page fault per page in UML)."""
    mv = memoryview(buf)
    for k in range(count):
        mv[k * BLOCK:(k + 1) * BLOCK] = block(first + k, gen)
    return mv[:count * BLOCK]


def fill_old(path, nblocks):
    per = MiB // BLOCK
    buf = bytearray(per * BLOCK)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        for first in range(0, nblocks, per):
            write_all(fd, blocks_into(buf, first, min(per, nblocks - first), OLD), offset=first * BLOCK)
    finally:
        os.close(fd)


def classify(path, nblocks):
    """Every block -> OLD, NEW or torn. Returns (old, new, torn list, new ranges)."""
    per = MiB // BLOCK
    buf = bytearray(per * BLOCK)
    mv = memoryview(buf)
    fd = os.open(path, os.O_RDONLY)
    old = new = 0
    torn = []
    is_new = []
    try:
        for first in range(0, nblocks, per):
            n = min(per, nblocks - first)
            got = 0
            while got < n * BLOCK:
                r = os.preadv(fd, [mv[got:n * BLOCK]], first * BLOCK + got)
                if r <= 0:
                    break
                got += r
            expect(got == n * BLOCK, "short read at block %d: %d bytes" % (first, got))
            for k in range(n):
                i = first + k
                b = mv[k * BLOCK:(k + 1) * BLOCK]
                if b == block(i, OLD):
                    old += 1
                    is_new.append(False)
                elif b == block(i, NEW):
                    new += 1
                    is_new.append(True)
                else:
                    torn.append((i, describe_torn(i, bytes(b))))
                    is_new.append(None)
    finally:
        os.close(fd)
    ranges = []
    for i, v in enumerate(is_new):
        if v:
            if ranges and ranges[-1][1] == i:
                ranges[-1][1] = i + 1
            else:
                ranges.append([i, i + 1])
    return old, new, torn, ranges


def describe_torn(i, b):
    o, n = block(i, OLD), block(i, NEW)
    runs = []           # (kind, start) where the block switches between old and new bytes
    for off in range(0, BLOCK, 8):
        piece = b[off:off + 8]
        kind = "new" if piece == n[off:off + 8] else ("old" if piece == o[off:off + 8] else "other")
        if not runs or runs[-1][0] != kind:
            runs.append((kind, off))
    return "block %d (file offset %d): %s" % (i, i * BLOCK, ", ".join("%s from +%d" % r for r in runs[:6]))


def new_writer(path, nblocks):
    """Helper body: build the NEW generation, open without O_TRUNC, say
    "writing", then ONE write(2) of the whole file; report its result."""
    def writer(chan):
        data = bytearray(nblocks * BLOCK)
        blocks_into(data, 0, nblocks, NEW)
        fd = os.open(path, os.O_WRONLY)
        chan.send("writing")
        t = time.monotonic()
        n = os.write(fd, data)
        chan.send({"wrote": n, "seconds": round(time.monotonic() - t, 3)})
        chan.recv(120)
    return writer


def write_interrupted(ctx, d, sig):
    """One write(2) of a whole file interrupted at several points; after each,
    every 4096-byte block is entirely OLD or entirely NEW and the size holds.

    First an uninterrupted run measures how long the write(2) takes (T); then
    the signal is sent 0.1 T, 0.35 T, 0.6 T and 0.85 T after the writer announced the
    write (each time onto a fresh OLD file). An attempt counts as "in the
    write" if the write(2) had not returned when the signal was sent. The
    writer must be gone within 2 T + 2 s of the signal: the 6.1 client flushes
    the Twrite in flight and, if the server answers it with Rwrite, goes on
    with the rest of the write(2) (p9_client_rpc hides the pending signal from
    every later wait), so the time to go is up to the rest of the write, and
    UML's speed varies from run to run."""
    nblocks = ctx.args.write_mib * MiB // BLOCK
    size = nblocks * BLOCK
    p = os.path.join(d, "big")

    # calibration: the same write, not interrupted
    t = time.monotonic()
    fill_old(p, nblocks)
    fill_s = time.monotonic() - t
    w = Helper(new_writer(p, nblocks), "writer (calibration)")
    expect(w.recv(60) == "writing", "protocol (writer)")
    done = w.recv(ctx.args.check_timeout * 3)
    expect(isinstance(done, dict) and done.get("wrote") == size, "uninterrupted write(2) returned %r, want %d" % (done, size))
    full = done["seconds"]
    w.send("exit")
    expect(w.finish() == 0, "calibration writer: %s" % describe_status(w.status))
    old, new, torn, _ = classify(p, nblocks)
    expect((old, new, len(torn)) == (0, nblocks, 0), "after an uninterrupted write: %d old, %d new, %d torn blocks" % (
        old, new, len(torn)))
    notes = ["OLD fill %.2f s; uninterrupted write(2) %.2f s, all %d blocks NEW" % (fill_s, full, nblocks)]

    inside = stopped = 0
    for attempt, frac in enumerate((0.1, 0.35, 0.6, 0.85), 1):
        delay = max(0.002, frac * full)
        fill_old(p, nblocks)
        expect(os.stat(p).st_size == size, "OLD file has size %d, want %d" % (os.stat(p).st_size, size))
        w = Helper(new_writer(p, nblocks), "writer")
        expect(w.recv(60) == "writing", "protocol (writer)")
        time.sleep(delay)
        early = w.pending()
        was = where(w.pid, stack=False)
        seconds = w.kill_and_time(sig, limit=full + REAP_LIMIT)
        if seconds is None:
            raise AssertionError("attempt %d: writer still there %.1f s after %s (was: %s; now: %s)" % (
                attempt, full + REAP_LIMIT, signame(sig), was, where(w.pid)))
        st = os.stat(p)
        old, new, torn, ranges = classify(p, nblocks)
        rng = ",".join("%d..%d" % (a, b - 1) for a, b in ranges[:4]) + (" ..." if len(ranges) > 4 else "")
        note = "%s at %.2f s%s -> gone in %.3f s (%s); new %d (%s), old %d, torn %d; size %s" % (
            signame(sig), delay, " AFTER the write(2) returned" if early else " inside write(2) (%s)" % was,
            seconds, describe_status(w.status), new, rng or "none", old, len(torn),
            "unchanged" if st.st_size == size else "%d, want %d" % (st.st_size, size))
        notes.append(note)
        expect(not torn, "TORN blocks after %s during the write: %s; first: %s" % (
            signame(sig), note, "; ".join(x for _, x in torn[:3])))
        expect(st.st_size == size, "file size changed: %s" % note)
        expect(exited_by(w.status, sig), "writer %s, want killed by %s" % (describe_status(w.status), signame(sig)))
        expect(seconds <= 2 * full + GONE_WITHIN, "writer took %.3f s to go (limit: twice the uninterrupted write(2), %.2f s, + %.1f s): %s" % (
            seconds, full, GONE_WITHIN, note))
        if not early:
            inside += 1
            stopped += new < nblocks
    expect(inside > 0, "the signal never landed inside the write(2): " + " | ".join(notes))
    return "%d x 4 KiB blocks; signal inside the write(2) %d times, the write stopped part-way %d times; %s; %s" % (
        nblocks, inside, stopped, " | ".join(notes), usable(d))


check("write-interrupted-sigkill", slow=4)(lambda ctx, d: write_interrupted(ctx, d, signal.SIGKILL))
check("write-interrupted-sigint", slow=4)(lambda ctx, d: write_interrupted(ctx, d, signal.SIGINT))


# ----------------------------------------------------------------------------


@check("mount-usable")
def c_mount_usable(ctx, d):
    notes = [usable(d, "final")]
    sub = os.path.join(d, "sub")
    os.mkdir(sub, 0o755)
    for i in range(5):
        usable(sub, "n%d" % i)
    os.rmdir(sub)
    expect(not os.path.lexists(sub), "rmdir left the directory")
    entries = os.listdir(ctx.top)
    missing = sorted(n for n in ctx.ran if n not in entries)
    expect(not missing, "check directories missing from the top directory listing: %s" % missing)
    stuck = {pid: label for pid, label in ctx.stuck.items() if os.path.exists("/proc/%d" % pid)}
    expect(not stuck, "processes of earlier checks still there after SIGKILL: %s" % ", ".join(
        "%s pid %d (%s)" % (label, pid, where(pid)) for pid, label in sorted(stuck.items())))
    return "%s; mkdir, 5 probes, rmdir; top directory lists %d entries; no process of an earlier check left" % (
        notes[0], len(entries))


# ----------------------------------------------------------------------------
# runner


def bounded(cmd, limit):
    """Run cmd, at most limit seconds (then SIGKILL, not waited for if it will
    not die: umount of a wedged 9p mount can sit in D state)."""
    pr = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if wait_exit(pr.pid, limit) is None:
        pr.kill()
        if wait_exit(pr.pid, 5) is None:
            return None, "%s: still running after %ds and SIGKILL (%s)" % (" ".join(cmd), limit, where(pr.pid))
    err = pr.stderr.read().decode(errors="replace").strip()
    return pr.wait(), err


class Ctx:
    def second_mount(self):
        """A second 9p mount of the same server (a separate connection) at
        self.m2_dir, made by the first check that needs it; it outlives that
        check's process (same mount namespace), the runner unmounts it."""
        with open("/proc/mounts") as f:
            if any(l.split()[1:2] == [self.m2_dir] for l in f):
                return self.m2_dir
        fields = self.mount_line.split()
        expect(len(fields) >= 4 and fields[2] == "9p", "cannot tell the 9p source from the mount line %r" % self.mount_line)
        src, opts_seen = fields[0], fields[3]
        port = re.search(r"(?:^|,)port=(\d+)", opts_seen)
        opts = ["trans=tcp", "port=%s" % (port.group(1) if port else "564"), "version=9p2000.L"]
        wanted = self.opts or ",".join(o for o in opts_seen.split(",")
                                      if o.split("=")[0] in ("msize", "access", "cache", "aname", "uname"))
        opts += [o for o in wanted.split(",") if o and o.split("=")[0] not in ("trans", "port", "version")]
        cmd = ["mount", "-t", "9p", "-o", ",".join(opts), src, self.m2_dir]
        rc, err = bounded(cmd, 60)
        expect(rc == 0, "second mount failed (%s): rc %s %s" % (" ".join(cmd), rc, err))
        return self.m2_dir

    def close(self):
        with open("/proc/mounts") as f:
            mounted = any(l.split()[1:2] == [self.m2_dir] for l in f)
        if mounted:
            rc, err = bounded(["umount", self.m2_dir], 30)
            if rc != 0:
                bounded(["umount", "-l", self.m2_dir], 30)
        try:
            os.rmdir(self.m2_dir)
        except OSError:
            pass


def run_inline(ctx, name, fn, limit):
    """The body of a check process: returns its record (without seconds)."""
    rec = {"name": name, "ok": False, "skipped": False, "detail": ""}

    def on_alarm(signum, frame):
        raise CheckTimeout("check exceeded its time limit of %ds" % limit)
    signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.alarm(limit)
        try:
            d = os.path.join(ctx.top, name)
            os.mkdir(d, 0o755)
            rec["detail"] = fn(ctx, d) or ""
        finally:
            signal.alarm(0)
        rec["ok"] = True
    except Skip as e:
        rec["ok"], rec["skipped"], rec["detail"] = True, True, "skipped: %s" % e
    except AssertionError as e:
        rec["detail"] = "FAILED: %s" % e
    except Exception as e:
        frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == __file__]
        at = "line %d `%s`" % (frames[-1].lineno, frames[-1].line) if frames else "?"
        rec["detail"] = "ERROR %s at %s: %s" % (type(e).__name__, at, e)
    leftovers = reap_leftovers()
    if leftovers:
        rec["ok"] = False
        rec["detail"] += "; LEFTOVERS: " + "; ".join(leftovers)
    rec["stuck"] = {str(pid): label for pid, label in STUCK.items()}
    return rec


def run_isolated(ctx, name, fn, limit):
    """Run one check in its own process (and process group). SIGALRM inside it
    gives a readable failure when it waits interruptibly; but a process waiting
    for the server in the 9p client (wait_event_killable) only notices a fatal
    signal, so the runner also enforces limit + 30 s with SIGKILL to the whole
    group and never touches the mount itself."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            write_all(w, json.dumps(run_inline(ctx, name, fn, limit)).encode())
        except BaseException:
            code = 1
        os._exit(code)
    os.close(w)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    hard = limit + 30
    deadline = time.monotonic() + hard
    buf, eof = b"", False
    while not eof:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        rr, _, _ = select.select([r], [], [], left)
        if rr:
            b = os.read(r, 65536)
            eof = not b
            buf += b
    os.close(r)
    rec = None
    if eof:
        try:
            rec = json.loads(buf)
        except ValueError:
            rec = None
    stuck = {}
    if rec is None:
        was = where(pid)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        rec = {"name": name, "ok": False, "skipped": False,
               "detail": ("FAILED: hard time limit (%ds): the check process did not finish; it was %s" % (hard, was))
               if not eof else "ERROR: the check process died without a result"}
    if wait_exit(pid, 10) is None:
        stuck[pid] = "check process " + name
        rec["detail"] += "; the check process (pid %d) is still there 10 s after SIGKILL: %s" % (pid, where(pid))
        rec["ok"] = False
    else:
        os.waitpid(pid, 0)
    for spid, label in (rec.pop("stuck", None) or {}).items():
        stuck[int(spid)] = label
    return rec, stuck


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mount")
    ap.add_argument("results")
    ap.add_argument("--msize", type=int)
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="")
    ap.add_argument("--write-mib", type=int, default=64)
    ap.add_argument("--check-timeout", type=int, default=60)
    args = ap.parse_args()

    ctx = Ctx()
    ctx.args = args
    ctx.mount = os.path.abspath(args.mount)
    ctx.opts = os.environ.get("BATTERY_MOUNT_OPTS", "")
    ctx.mount_line = os.environ.get("BATTERY_MOUNT_LINE", "")
    if not ctx.mount_line:
        with open("/proc/mounts") as f:
            ctx.mount_line = next((l.strip() for l in f if l.split()[1:2] == [ctx.mount]), "")
    m_eff = re.search(r"[ ,]msize=(\d+)", ctx.mount_line)
    m_req = re.search(r"(?:^|,)msize=(\d+)", ctx.opts)
    ctx.msize = args.msize or (int(m_eff.group(1)) if m_eff else None) or (int(m_req.group(1)) if m_req else None) or 8192
    ctx.ran = set()
    ctx.stuck = {}
    ctx.m2_dir = tempfile.mkdtemp(prefix="interrupt-m2-", dir="/tmp")

    only = set(filter(None, args.only.split(",")))
    skip = set(filter(None, args.skip.split(",")))
    unknown = (only | skip) - set(n for n, _, _ in CHECKS)
    if unknown:
        ap.error("unknown checks: %s" % ", ".join(sorted(unknown)))
    # guest PIDs repeat from boot to boot: the random part keeps runs apart
    ctx.top = os.path.join(ctx.mount, "interrupt-%d-%s" % (time.time(), os.urandom(4).hex()))
    os.mkdir(ctx.top, 0o755)
    results = {"mount_opts": ctx.opts, "mount_line": ctx.mount_line, "msize": ctx.msize,
               "top": ctx.top, "checks": [], "passed": 0, "failed": 0, "skipped": 0}

    def save(path):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, path)

    t_all = time.monotonic()
    for name, fn, slow in CHECKS:
        if (only and name not in only) or name in skip:
            continue
        t0 = time.monotonic()
        ctx.ran.add(name)
        rec, stuck = run_isolated(ctx, name, fn, args.check_timeout * slow)
        ctx.stuck.update(stuck)
        rec["seconds"] = round(time.monotonic() - t0, 3)
        results["checks"].append(rec)
        key = "skipped" if rec["skipped"] else ("passed" if rec["ok"] else "failed")
        results[key] += 1
        print("%-5s %-26s %7.2fs  %s" % ("SKIP" if rec["skipped"] else ("PASS" if rec["ok"] else "FAIL"),
                                         name, rec["seconds"], rec["detail"]), flush=True)
        save(args.results + ".partial")
    results["seconds"] = round(time.monotonic() - t_all, 3)
    save(args.results)
    try:
        os.unlink(args.results + ".partial")
    except OSError:
        pass
    print("interrupt: %d passed, %d failed, %d skipped in %.1fs" % (
        results["passed"], results["failed"], results["skipped"], results["seconds"]), flush=True)
    ctx.close()
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main())
