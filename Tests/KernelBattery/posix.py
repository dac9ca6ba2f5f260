#!/usr/bin/env python3
"""POSIX battery: every case runs twice, on the directory under test and on a local reference
directory, and what a process sees must be the same in both.

    posix.py TARGET RESULTS.json [--reference DIR] [--only CLASS,...]

Run as root. TARGET is a directory on the file system under test (in the user-mode-linux guest:
the 9p mount, see scripts/uml/run-9p-battery); the reference is a fresh directory on a local
file system (default: under /tmp, tmpfs in the guest). Each case is a small program run in a
forked child with a given identity (uid, gid, supplementary groups, umask); it returns an
observation (an errno name, modes, owners, link counts, sizes, whether a time moved) with no
path or inode number in it. A case passes when the observations are equal. The reference is
the local kernel's own answer, so the battery needs no table of expected results to get wrong.

Classes (issue 12): modes (creation modes and umask), group (the group of a new file),
supplementary (permission through supplementary groups), matrix (owner/group/other x r/w/x),
open-fd (ftruncate/fchmod/fchown/futimens through an open descriptor), sticky (sticky and
setgid directories, rename and unlink by other users), chown (who may chown/chgrp, and the bits
it clears), names (long names, hard links, fifos, sockets, devices), times (timestamps), errors
(the errno of common mistakes).

Cases whose child runs with supplementary groups that the user database of the server does not
list carry "client-groups": a server that checks permissions itself (access=user) cannot see
those groups, so they are reported in a group of their own; with access=client they must pass.

RESULTS.json = {"target", "reference", "classes": {CLASS: {"passed", "failed", "client_groups_failed"}},
"cases": [{"name", "class", "ok", "client_groups", "target", "reference"}], "passed", "failed",
"client_groups_failed"}. Exit status 0 when every case without "client-groups" passed.
"""
import argparse
import errno
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import time

# Identities. Users and groups that the guest and the server host both know (the guest runs on
# the host's own root file system), plus ids no user database lists.
ROOT = (0, 0, [])
DAEMON = (1, 1, [])            # daemon:daemon, no supplementary groups
BIN = (2, 2, [])               # bin:bin
NOBODY = (65534, 65534, [])    # nobody:nogroup
SYNC = (4, 65534, [])          # sync: primary group nogroup, like nobody's
SHARED_GID = 65534             # nogroup: sync owns the matrix's files, nobody is in their group
STRANGER_GID = 4242            # a group nobody belongs to on the server

CASES = []


def case(klass, name, client_groups=False):
    def register(fn):
        CASES.append((klass, name, fn, client_groups))
        return fn
    return register


def err(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def attempt(fn, *args):
    """'ok' or the errno name."""
    try:
        fn(*args)
        return "ok"
    except OSError as e:
        return err(e)


def failure(e):
    """An exception without the path in it (target and reference paths differ)."""
    return err(e) if isinstance(e, OSError) else "%s: %s" % (type(e).__name__, e)


def describe(path):
    """The parts of stat that must match: type, mode bits, owner, group, links, size."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return err(e)
    return {"type": stat.S_IFMT(st.st_mode), "mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid,
            "gid": st.st_gid, "nlink": st.st_nlink if not stat.S_ISDIR(st.st_mode) else None,
            "size": st.st_size if stat.S_ISREG(st.st_mode) else None}


def as_user(identity, umask, fn, *args):
    """Runs fn(*args) in a forked child with that identity and umask; returns what it returned
    (a JSON-able value) or 'child: ...' when it raised."""
    uid, gid, groups = identity
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        try:
            os.setgroups(groups)
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
            os.umask(umask)
            value = fn(*args)
            out = json.dumps({"value": value}).encode()
        except BaseException as e:  # the child must never return into the battery
            out = json.dumps({"value": "child: " + failure(e)}).encode()
        os.write(writer, out)
        os._exit(0)
    os.close(writer)
    chunks = []
    while True:
        b = os.read(reader, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(reader)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks) or b'{"value": "child died"}')["value"]


def prepare(d, mode=0o777, uid=0, gid=0):
    os.mkdir(d)
    os.chown(d, uid, gid)
    os.chmod(d, mode)


def put(path, data=b"x", mode=0o644, uid=0, gid=0):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    os.write(fd, data)
    os.close(fd)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


# -- modes: the mode a creation asks for, less the umask, exactly once -------------------------

def create_file(path, mode):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    os.close(fd)
    return describe(path)


def make_dir(path, mode):
    os.mkdir(path, mode)
    return describe(path)


def make_fifo(path, mode):
    os.mkfifo(path, mode)
    return describe(path)


for _umask in (0, 0o022, 0o077, 0o002):
    for _mode in (0o620, 0o642, 0o777, 0o600, 0o644, 0o4755, 0o2755, 0o1755, 0o000):
        for _who, _identity in (("root", ROOT), ("daemon", DAEMON)):
            def _file(d, identity=_identity, mode=_mode, umask=_umask):
                prepare(d)
                return as_user(identity, umask, create_file, d + "/f", mode)
            case("modes", "open O_CREAT %04o umask %03o as %s" % (_mode, _umask, _who))(_file)
    for _mode in (0o777, 0o755, 0o1777, 0o2775, 0o700, 0o3777):
        def _dir(d, mode=_mode, umask=_umask):
            prepare(d)
            return as_user(DAEMON, umask, make_dir, d + "/sub", mode)
        case("modes", "mkdir %04o umask %03o" % (_mode, _umask))(_dir)
    for _mode in (0o666, 0o640):
        def _fifo(d, mode=_mode, umask=_umask):
            prepare(d)
            return as_user(DAEMON, umask, make_fifo, d + "/p", mode)
        case("modes", "mkfifo %04o umask %03o" % (_mode, _umask))(_fifo)


@case("modes", "a directory made 0777 lets another user rename in it")
def _rename_in_0777(d):
    prepare(d)
    as_user(DAEMON, 0, make_dir, d + "/shared", 0o777)
    put(d + "/shared/a", uid=2, gid=2)
    return as_user(BIN, 0o022, lambda: attempt(os.rename, d + "/shared/a", d + "/shared/b"))


# -- group: the group a new file gets -----------------------------------------------------------

def create_all(d):
    out = {}
    out["file"] = attempt(lambda: os.close(os.open(d + "/f", os.O_CREAT | os.O_WRONLY, 0o644)))
    out["dir"] = attempt(os.mkdir, d + "/sub", 0o755)
    out["fifo"] = attempt(os.mkfifo, d + "/p", 0o644)
    out["symlink"] = attempt(os.symlink, "target", d + "/l")
    for name in ("f", "sub", "p", "l"):
        out[name] = describe(d + "/" + name)
    return out


@case("group", "nobody with fsgid 65533 creates in a 0777 directory")
def _group_other_gid(d):
    prepare(d)
    return as_user((65534, 65533, []), 0o022, create_all, d)


@case("group", "daemon with its own group creates")
def _group_own(d):
    prepare(d)
    return as_user(DAEMON, 0o022, create_all, d)


@case("group", "root with fsgid 4242 creates")
def _group_root(d):
    prepare(d)
    return as_user((0, STRANGER_GID, []), 0o022, create_all, d)


@case("group", "a setgid directory gives its group, and mkdir keeps the bit")
def _group_setgid(d):
    prepare(d, 0o2777, 0, STRANGER_GID)
    return as_user(DAEMON, 0o022, create_all, d)


@case("group", "setgid bit of a new file in a setgid directory, creator not in the group")
def _group_setgid_file(d):
    prepare(d, 0o2777, 0, STRANGER_GID)
    return as_user(DAEMON, 0, create_file, d + "/f", 0o2755)


# -- supplementary groups ----------------------------------------------------------------------

@case("supplementary", "read a 0040 file through a supplementary group", client_groups=True)
def _supp_read(d):
    prepare(d, 0o755)
    put(d + "/f", b"group", 0o040, 0, STRANGER_GID)
    return as_user((2, 2, [STRANGER_GID]), 0o022, lambda: attempt(lambda: os.close(os.open(d + "/f", os.O_RDONLY))))


@case("supplementary", "list a 0070 directory through a supplementary group", client_groups=True)
def _supp_list(d):
    prepare(d, 0o755)
    prepare(d + "/g", 0o070, 0, STRANGER_GID)
    return as_user((2, 2, [STRANGER_GID]), 0o022, lambda: attempt(os.listdir, d + "/g"))


@case("supplementary", "chgrp an own file to a supplementary group", client_groups=True)
def _supp_chgrp(d):
    prepare(d)
    put(d + "/f", uid=2, gid=2)
    result = as_user((2, 2, [STRANGER_GID]), 0o022, lambda: attempt(os.chown, d + "/f", -1, STRANGER_GID))
    return [result, describe(d + "/f")]


@case("supplementary", "create with a supplementary group as fsgid", client_groups=True)
def _supp_create(d):
    prepare(d)
    return as_user((2, STRANGER_GID, [2]), 0o022, create_all, d)


@case("supplementary", "no access through a group one is not in")
def _supp_none(d):
    prepare(d, 0o755)
    put(d + "/f", b"group", 0o040, 0, STRANGER_GID)
    return as_user(BIN, 0o022, lambda: attempt(lambda: os.close(os.open(d + "/f", os.O_RDONLY))))


# -- matrix: owner/group/other x r/w/x ------------------------------------------------------------

def file_access(path):
    out = {}
    for label, flags in (("read", os.O_RDONLY), ("write", os.O_WRONLY)):
        out[label] = attempt(lambda f=flags: os.close(os.open(path, f)))
    out["access_x"] = os.access(path, os.X_OK)
    return out


def dir_access(path):
    return {"list": attempt(os.listdir, path), "stat_inside": attempt(os.stat, path + "/inner"),
            "create": attempt(lambda: os.close(os.open(path + "/new", os.O_CREAT | os.O_WRONLY, 0o644))),
            "unlink": attempt(os.unlink, path + "/victim")}


# sync owns; nobody shares its primary group (as the server's user database says too); bin is
# other.
for _who, _identity in (("owner", SYNC), ("group", NOBODY), ("other", BIN)):
    for _bits in (0o400, 0o200, 0o100, 0o040, 0o020, 0o010, 0o004, 0o002, 0o001, 0o000, 0o777, 0o707, 0o070):
        def _matrix_file(d, identity=_identity, bits=_bits):
            prepare(d, 0o755)
            put(d + "/f", b"data", bits, SYNC[0], SHARED_GID)
            return as_user(identity, 0o022, file_access, d + "/f")
        case("matrix", "file %04o as %s" % (_bits, _who))(_matrix_file)

        def _matrix_dir(d, identity=_identity, bits=_bits):
            prepare(d, 0o755)
            prepare(d + "/x", 0o755, SYNC[0], SHARED_GID)
            put(d + "/x/inner")
            put(d + "/x/victim")
            os.chmod(d + "/x", bits)
            return as_user(identity, 0o022, dir_access, d + "/x")
        case("matrix", "directory %04o as %s" % (_bits, _who))(_matrix_dir)


# -- open-fd: what an open descriptor allows ------------------------------------------------------

def through_descriptor(d):
    fd = os.open(d + "/f", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0)
    os.write(fd, b"0123456789abcdef")
    out = {"ftruncate": attempt(os.ftruncate, fd, 10)}
    out["size_after"] = os.fstat(fd).st_size
    out["fchmod"] = attempt(os.fchmod, fd, 0o600)
    out["fchown_own_group"] = attempt(os.fchown, fd, -1, os.getgid())
    out["futimens"] = attempt(lambda: os.utime(fd, (1_000_000_000, 1_000_000_000)))
    out["mtime_after"] = int(os.fstat(fd).st_mtime)
    out["truncate_by_path"] = attempt(os.truncate, d + "/f", 4)
    os.close(fd)
    out["state"] = describe(d + "/f")
    return out


@case("open-fd", "ftruncate, fchmod, fchown, futimens on a mode-0 file opened O_RDWR at creation")
def _open_fd(d):
    prepare(d)
    return as_user(DAEMON, 0o022, through_descriptor, d)


@case("open-fd", "ftruncate of a read-only descriptor")
def _open_fd_readonly(d):
    prepare(d)
    put(d + "/f", b"0123456789", 0o644, 1, 1)

    def body():
        fd = os.open(d + "/f", os.O_RDONLY)
        try:
            return attempt(os.ftruncate, fd, 2)
        finally:
            os.close(fd)
    return [as_user(DAEMON, 0o022, body), describe(d + "/f")]


@case("open-fd", "write through a descriptor after chmod 0")
def _open_fd_chmod(d):
    prepare(d)

    def body():
        fd = os.open(d + "/f", os.O_CREAT | os.O_RDWR, 0o644)
        os.fchmod(fd, 0)
        result = attempt(os.write, fd, b"still mine")
        os.close(fd)
        return result
    return [as_user(DAEMON, 0o022, body), describe(d + "/f")]


# -- sticky and setgid directories ---------------------------------------------------------------

def remove_and_rename(d):
    return {"unlink": attempt(os.unlink, d + "/a"), "rename": attempt(os.rename, d + "/b", d + "/b2"),
            "rmdir": attempt(os.rmdir, d + "/c"),
            "rename_over": attempt(os.rename, d + "/own", d + "/e")}


for _who, _identity in (("the files' owner", DAEMON), ("another user", BIN), ("root", ROOT),
                        ("the directory's owner", NOBODY)):
    for _mode, _label in ((0o1777, "sticky 1777 directory"), (0o777, "0777 directory")):
        def _shared(d, identity=_identity, mode=_mode):
            prepare(d, mode, 65534, 65534)
            for name in ("a", "b", "e"):
                put(d + "/" + name, uid=1, gid=1)
            os.mkdir(d + "/c")
            os.chown(d + "/c", 1, 1)
            put(d + "/own", uid=identity[0], gid=identity[1])
            return [as_user(identity, 0o022, remove_and_rename, d), sorted(os.listdir(d))]
        case("sticky", "%s: %s removes and renames" % (_label, _who))(_shared)


@case("sticky", "rename a directory into a setgid directory keeps its group")
def _setgid_rename(d):
    prepare(d, 0o777)
    prepare(d + "/g", 0o2777, 0, STRANGER_GID)
    as_user(DAEMON, 0o022, make_dir, d + "/mine", 0o755)
    result = as_user(DAEMON, 0o022, lambda: attempt(os.rename, d + "/mine", d + "/g/mine"))
    return [result, describe(d + "/g/mine")]


# -- chown ---------------------------------------------------------------------------------------

def chown_attempts(path, uid, gid):
    return {"chown": attempt(os.chown, path, uid, -1), "chgrp": attempt(os.chown, path, -1, gid)}


for _bits in (0o755, 0o4755, 0o2755, 0o6755, 0o2745, 0o4644):
    def _chown_root(d, bits=_bits):
        prepare(d)
        put(d + "/f", b"x", bits, 1, 1)
        return [as_user(ROOT, 0o022, chown_attempts, d + "/f", 2, 2), describe(d + "/f")]
    case("chown", "root chowns a %04o file" % _bits)(_chown_root)

    def _chgrp_owner(d, bits=_bits):
        prepare(d)
        put(d + "/f", b"x", bits, 1, 1)
        result = as_user(DAEMON, 0o022, lambda: attempt(os.chown, d + "/f", -1, 1))
        return [result, describe(d + "/f")]
    case("chown", "the owner chgrps a %04o file to its own group" % _bits)(_chgrp_owner)


@case("chown", "the owner gives a file away")
def _chown_give(d):
    prepare(d)
    put(d + "/f", uid=1, gid=1)
    return [as_user(DAEMON, 0o022, chown_attempts, d + "/f", 2, 65534), describe(d + "/f")]


@case("chown", "another user chowns")
def _chown_other(d):
    prepare(d)
    put(d + "/f", uid=1, gid=1)
    return [as_user(BIN, 0o022, chown_attempts, d + "/f", 2, 2), describe(d + "/f")]


@case("chown", "chmod by another user, and the setgid bit of a non-member")
def _chmod_rules(d):
    prepare(d)
    put(d + "/f", uid=1, gid=STRANGER_GID)
    other = as_user(BIN, 0o022, lambda: attempt(os.chmod, d + "/f", 0o666))
    owner = as_user(DAEMON, 0o022, lambda: attempt(os.chmod, d + "/f", 0o2755))
    return [other, owner, describe(d + "/f")]


@case("chown", "a write by another user clears setuid and setgid")
def _write_clears(d):
    prepare(d)
    put(d + "/f", b"x", 0o6777, 1, 1)
    result = as_user(BIN, 0o022, lambda: attempt(
        lambda: (lambda fd: (os.write(fd, b"y"), os.close(fd)))(os.open(d + "/f", os.O_WRONLY))))
    return [result, describe(d + "/f")]


# -- names and special files ----------------------------------------------------------------------

@case("names", "names of 255 and 256 bytes")
def _long_names(d):
    prepare(d)

    def body():
        return {"255": attempt(lambda: os.close(os.open(d + "/" + "n" * 255, os.O_CREAT | os.O_WRONLY, 0o644))),
                "256": attempt(lambda: os.close(os.open(d + "/" + "m" * 256, os.O_CREAT | os.O_WRONLY, 0o644))),
                "mkdir 256": attempt(os.mkdir, d + "/" + "k" * 256),
                "listed": sorted(len(n) for n in os.listdir(d))}
    return as_user(DAEMON, 0o022, body)


@case("names", "hard links: counts, to a directory, across owners")
def _hard_links(d):
    prepare(d)
    put(d + "/f", uid=1, gid=1)
    os.mkdir(d + "/dir")

    def body():
        return {"link": attempt(os.link, d + "/f", d + "/g"), "nlink": os.stat(d + "/f").st_nlink,
                "link_dir": attempt(os.link, d + "/dir", d + "/dir2"),
                "link_exists": attempt(os.link, d + "/f", d + "/g"),
                "unlink_one": attempt(os.unlink, d + "/f"), "nlink_after": os.stat(d + "/g").st_nlink,
                "data": open(d + "/g", "rb").read().decode()}
    return as_user(DAEMON, 0o022, body)


@case("names", "fifo, unix socket and devices")
def _special(d):
    prepare(d)
    out = {"fifo": attempt(os.mkfifo, d + "/p", 0o640)}
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        out["socket"] = attempt(s.bind, d + "/s")
    finally:
        s.close()
    out["chardev"] = attempt(os.mknod, d + "/c", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    out["blockdev"] = attempt(os.mknod, d + "/b", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    out["mknod as daemon"] = as_user(DAEMON, 0o022, lambda: attempt(
        os.mknod, d + "/c2", 0o600 | stat.S_IFCHR, os.makedev(1, 3)))
    for name in ("p", "s", "c", "b"):
        out[name] = describe(d + "/" + name)
        try:
            out[name + " rdev"] = os.lstat(d + "/" + name).st_rdev
        except OSError as e:
            out[name + " rdev"] = err(e)
    return out


@case("names", "symlink: readlink, lstat, a dangling link, a loop")
def _symlinks(d):
    prepare(d)

    def body():
        os.symlink("target-" + "t" * 200, d + "/long")
        os.symlink("loop2", d + "/loop1")
        os.symlink("loop1", d + "/loop2")
        return {"readlink": len(os.readlink(d + "/long")), "dangling_open": attempt(os.open, d + "/long", os.O_RDONLY),
                "loop_open": attempt(os.open, d + "/loop1", os.O_RDONLY), "lstat": describe(d + "/long")["type"]}
    return as_user(DAEMON, 0o022, body)


# -- times ----------------------------------------------------------------------------------------

@case("times", "utime sets whole seconds; write moves mtime; chmod moves ctime, not mtime")
def _times(d):
    prepare(d)
    put(d + "/f", uid=1, gid=1)

    def body():
        p = d + "/f"
        out = {"utime": attempt(os.utime, p, (1_000_000_000, 1_100_000_000))}
        st = os.stat(p)
        out["set"] = [int(st.st_atime), int(st.st_mtime)]
        before = os.stat(p)
        time.sleep(1.1)
        os.chmod(p, 0o640)
        after = os.stat(p)
        out["chmod moves ctime"] = after.st_ctime > before.st_ctime
        out["chmod keeps mtime"] = after.st_mtime == before.st_mtime
        fd = os.open(p, os.O_WRONLY)
        os.write(fd, b"z")
        os.close(fd)
        out["write moves mtime"] = os.stat(p).st_mtime > after.st_mtime
        out["utime now"] = attempt(os.utime, p, None)
        out["now is recent"] = abs(os.stat(p).st_mtime - time.time()) < 60
        return out
    return as_user(DAEMON, 0o022, body)


@case("times", "utime by another user: explicit times need ownership, 'now' needs write access")
def _times_other(d):
    prepare(d)
    put(d + "/f", b"x", 0o666, 1, 1)
    put(d + "/g", b"x", 0o644, 1, 1)
    return as_user(BIN, 0o022, lambda: {
        "explicit, writable": attempt(os.utime, d + "/f", (5, 5)),
        "now, writable": attempt(os.utime, d + "/f", None),
        "now, not writable": attempt(os.utime, d + "/g", None)})


# -- errors ---------------------------------------------------------------------------------------

@case("errors", "the errno of common mistakes")
def _errors(d):
    prepare(d)
    put(d + "/f")
    os.mkdir(d + "/full")
    put(d + "/full/x")
    os.mkdir(d + "/empty")

    def body():
        return {
            "O_EXCL on existing": attempt(os.open, d + "/f", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644),
            "open dir for writing": attempt(os.open, d + "/full", os.O_WRONLY),
            "rmdir non-empty": attempt(os.rmdir, d + "/full"),
            "unlink a directory": attempt(os.unlink, d + "/empty"),
            "mkdir existing": attempt(os.mkdir, d + "/f"),
            "rename dir over non-empty": attempt(os.rename, d + "/empty", d + "/full"),
            "rename file over dir": attempt(os.rename, d + "/f", d + "/empty"),
            "rename dir over file": attempt(os.rename, d + "/empty", d + "/f"),
            "rename dir into itself": attempt(os.rename, d + "/full", d + "/full/sub"),
            "file as directory": attempt(os.stat, d + "/f/x"),
            "missing": attempt(os.stat, d + "/nothing"),
            "rmdir a file": attempt(os.rmdir, d + "/f"),
            "O_DIRECTORY on a file": attempt(os.open, d + "/f", os.O_RDONLY | os.O_DIRECTORY),
        }
    return as_user(ROOT, 0o022, body)


def run_case(fn, base, name):
    d = os.path.join(base, name)
    try:
        return fn(d)
    except Exception as e:   # a fixture that failed is an observation too
        return "setup: " + failure(e)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target")
    parser.add_argument("results")
    parser.add_argument("--reference", default=None, help="a directory on a local file system (default: a new one under /tmp)")
    parser.add_argument("--only", default="", help="classes to run, comma-separated")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("posix.py: must run as root (it switches identities per case)", file=sys.stderr)
        return 2
    only = set(filter(None, args.only.split(",")))
    stamp = "posix-%d-%s" % (time.time(), os.urandom(3).hex())
    target = os.path.join(os.path.abspath(args.target), stamp)
    reference = os.path.join(args.reference or tempfile.gettempdir(), stamp + "-reference")
    for top in (target, reference):
        os.mkdir(top)
        os.chmod(top, 0o755)
    results = {"target": target, "reference": reference, "classes": {}, "cases": [], "passed": 0, "failed": 0,
               "client_groups_failed": 0}
    started = time.monotonic()
    for index, (klass, name, fn, client_groups) in enumerate(CASES):
        if only and klass not in only:
            continue
        directory = "%04d" % index
        seen = run_case(fn, target, directory)
        expected = run_case(fn, reference, directory)
        ok = seen == expected
        record = {"name": name, "class": klass, "ok": ok, "client_groups": client_groups}
        if not ok:
            record["target"], record["reference"] = seen, expected
        results["cases"].append(record)
        counts = results["classes"].setdefault(klass, {"passed": 0, "failed": 0, "client_groups_failed": 0})
        key = "passed" if ok else ("client_groups_failed" if client_groups else "failed")
        counts[key] += 1
        results[key] += 1
        if not ok:
            print("FAIL %-13s %s%s\n     target:    %s\n     reference: %s" % (
                klass, name, " (client-groups)" if client_groups else "", json.dumps(seen), json.dumps(expected)),
                flush=True)
    results["seconds"] = round(time.monotonic() - started, 2)
    shutil.rmtree(reference, ignore_errors=True)
    with open(args.results + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(args.results + ".tmp", args.results)
    for klass, counts in results["classes"].items():
        print("posix: %-13s %3d passed, %d failed%s" % (
            klass, counts["passed"], counts["failed"],
            ", %d need the client's groups" % counts["client_groups_failed"] if counts["client_groups_failed"] else ""))
    print("posix: %d passed, %d failed, %d need the client's groups, in %.1f s" % (
        results["passed"], results["failed"], results["client_groups_failed"], results["seconds"]))
    return 0 if results["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
