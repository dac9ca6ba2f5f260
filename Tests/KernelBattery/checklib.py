"""Helpers shared by the guest-side check scripts (battery.py, interrupt.py): the check
registry, assertions that name what failed, and whole-buffer IO."""
import errno
import os

KiB, MiB = 1024, 1024 * 1024
CHECKS = []       # (name, function, per-check timeout factor)

def check(name, slow=1):
    def register(fn):
        CHECKS.append((name, fn, slow))
        return fn
    return register


class Skip(Exception):
    """Raised by a check that cannot run here; reported as skipped."""


class CheckTimeout(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def write_all(fd, data, offset=None):
    view = memoryview(data)
    done = 0
    while done < len(view):
        if offset is None:
            n = os.write(fd, view[done:])
        else:
            n = os.pwrite(fd, view[done:], offset + done)
        expect(n > 0, "write returned %d" % n)
        done += n


def read_all(fd, chunk=1 * MiB):
    parts = []
    while True:
        b = os.read(fd, chunk)
        if not b:
            return b"".join(parts)
        parts.append(b)


def step(label, fn, *a, **kw):
    """fn(*a, **kw); an OSError becomes a failure that names the step."""
    try:
        return fn(*a, **kw)
    except OSError as e:
        raise AssertionError("%s -> %s" % (label, ename(e)))


def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if isinstance(e, OSError) else type(e).__name__
