#!/usr/bin/env python3
"""A minimal 9P2000.L client over raw TCP sockets, for load and measurement (standard library only).

Wire layout as in Sources/NinePWire: size[4] type[1] tag[2] then the body, little-endian;
strings are len[2] + UTF-8; a qid is type[1] version[4] path[8].

    conn = Connection.connect("127.0.0.1", port, msize=1 << 20)
    root = 1
    conn.attach(root, uname="root", aname=export, n_uname=0)
    conn.walk(root, 2, ["dir", "file"])
    qid, iounit = conn.lopen(2, O_RDWR)
    conn.write(2, 0, b"data"); conn.read(2, 0, 4); conn.getattr(2); conn.clunk(2)

Pipelining: `send(mtype, body)` returns the tag it used; `wait(tag)` returns that tag's reply
(other replies that arrive first are kept); `pipeline([(mtype, body), ...])` sends them all and
returns the replies in request order. Message builders are the module-level t_* functions, reply
parsers the r_* functions. Errors: Rlerror (a 9P error reply, with .errno), ProtocolError (a
reply that makes no sense), ConnectionLost (EOF, reset, timeout).

Command line (a smoke test and a tiny load loop):
    ninep_load.py HOST:PORT --aname EXPORT smoke
    ninep_load.py HOST:PORT --aname EXPORT loop --seconds 5 --depth 8
"""
import argparse
import errno as errno_module
import os
import socket
import struct
import sys
import time

# Message types (include/net/9p/9p.h; Sources/NinePWire/MessageType.swift).
TLERROR, RLERROR = 6, 7
TSTATFS, RSTATFS = 8, 9
TLOPEN, RLOPEN = 12, 13
TLCREATE, RLCREATE = 14, 15
TGETATTR, RGETATTR = 24, 25
TSETATTR, RSETATTR = 26, 27
TREADDIR, RREADDIR = 40, 41
TFSYNC, RFSYNC = 50, 51
TMKDIR, RMKDIR = 72, 73
TUNLINKAT, RUNLINKAT = 76, 77
TVERSION, RVERSION = 100, 101
TAUTH, RAUTH = 102, 103
TATTACH, RATTACH = 104, 105
TFLUSH, RFLUSH = 108, 109
TWALK, RWALK = 110, 111
TREAD, RREAD = 116, 117
TWRITE, RWRITE = 118, 119
TCLUNK, RCLUNK = 120, 121
TREMOVE, RREMOVE = 122, 123

NAMES = {v: k for k, v in globals().items() if k[:1] in "TR" and k.isupper() and isinstance(v, int)}

NOTAG = 0xFFFF
NOFID = 0xFFFFFFFF
NONUNAME = 0xFFFFFFFF
HEADER = 7
READ_OVERHEAD = 11    # Rread: size type tag count
WRITE_OVERHEAD = 23   # Twrite: size type tag fid offset count
VERSION = "9P2000.L"

# Tlopen/Tlcreate flags (P9_DOTL_*, the Linux values).
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = 0o100, 0o200, 0o1000, 0o2000
O_DIRECTORY = 0o200000

GETATTR_BASIC = 0x7FF
GETATTR_ALL = 0x3FFF

_HDR = struct.Struct("<IBH")


class NinePError(Exception):
    pass


class Rlerror(NinePError):
    """The server answered Rlerror(errno)."""

    def __init__(self, ecode, request=None):
        self.errno = ecode
        self.request = request
        name = errno_module.errorcode.get(ecode, str(ecode))
        super().__init__("Rlerror %s (%d)%s: %s" % (name, ecode, " to " + NAMES.get(request, str(request)) if request else "",
                                                   os.strerror(ecode)))


class ProtocolError(NinePError):
    pass


class ConnectionLost(NinePError):
    pass


# -- encoding -----------------------------------------------------------------------------------

def _s(text):
    raw = text.encode() if isinstance(text, str) else bytes(text)
    return struct.pack("<H", len(raw)) + raw


def t_version(msize, version=VERSION):
    return TVERSION, struct.pack("<I", msize) + _s(version)


def t_attach(fid, uname="root", aname="", n_uname=NONUNAME, afid=NOFID):
    return TATTACH, struct.pack("<II", fid, afid) + _s(uname) + _s(aname) + struct.pack("<I", n_uname)


def t_flush(oldtag):
    return TFLUSH, struct.pack("<H", oldtag)


def t_walk(fid, newfid, names=()):
    return TWALK, struct.pack("<IIH", fid, newfid, len(names)) + b"".join(_s(n) for n in names)


def t_lopen(fid, flags):
    return TLOPEN, struct.pack("<II", fid, flags)


def t_lcreate(fid, name, flags, mode=0o644, gid=0):
    return TLCREATE, struct.pack("<I", fid) + _s(name) + struct.pack("<III", flags, mode, gid)


def t_read(fid, offset, count):
    return TREAD, struct.pack("<IQI", fid, offset, count)


def t_write(fid, offset, data):
    return TWRITE, struct.pack("<IQI", fid, offset, len(data)) + bytes(data)


def t_getattr(fid, mask=GETATTR_BASIC):
    return TGETATTR, struct.pack("<IQ", fid, mask)


def t_clunk(fid):
    return TCLUNK, struct.pack("<I", fid)


def t_remove(fid):
    return TREMOVE, struct.pack("<I", fid)


def t_mkdir(dfid, name, mode=0o755, gid=0):
    return TMKDIR, struct.pack("<I", dfid) + _s(name) + struct.pack("<II", mode, gid)


def t_unlinkat(dfid, name, flags=0):
    return TUNLINKAT, struct.pack("<I", dfid) + _s(name) + struct.pack("<I", flags)


def t_fsync(fid, datasync=0):
    return TFSYNC, struct.pack("<II", fid, datasync)


# -- decoding -----------------------------------------------------------------------------------

def _qid(body, at):
    qtype, version, path = struct.unpack_from("<BIQ", body, at)
    return (qtype, version, path)


def r_version(body):
    msize, n = struct.unpack_from("<IH", body, 0)
    return msize, bytes(body[6:6 + n]).decode(errors="replace")


def r_attach(body):
    return _qid(body, 0)


def r_walk(body):
    (n,) = struct.unpack_from("<H", body, 0)
    if len(body) != 2 + 13 * n:
        raise ProtocolError("Rwalk of %d bytes for %d qids" % (len(body), n))
    return [_qid(body, 2 + 13 * i) for i in range(n)]


def r_open(body):
    """Rlopen and Rlcreate: (qid, iounit)."""
    return _qid(body, 0), struct.unpack_from("<I", body, 13)[0]


def r_read(body):
    (count,) = struct.unpack_from("<I", body, 0)
    if len(body) != 4 + count:
        raise ProtocolError("Rread says %d bytes, carries %d" % (count, len(body) - 4))
    return body[4:4 + count]


def r_write(body):
    return struct.unpack_from("<I", body, 0)[0]


_GETATTR = struct.Struct("<Q13sIII" + "Q" * 15)
_GETATTR_FIELDS = ("valid", "qid", "mode", "uid", "gid", "nlink", "rdev", "size", "blksize", "blocks",
                   "atime_sec", "atime_nsec", "mtime_sec", "mtime_nsec", "ctime_sec", "ctime_nsec",
                   "btime_sec", "btime_nsec", "gen", "data_version")


def r_getattr(body):
    if len(body) != _GETATTR.size:
        raise ProtocolError("Rgetattr of %d bytes, not %d" % (len(body), _GETATTR.size))
    values = list(_GETATTR.unpack_from(body, 0))
    result = dict(zip(_GETATTR_FIELDS, values))
    result["qid"] = _qid(values[1], 0)
    return result


# -- connection ---------------------------------------------------------------------------------

class Reply:
    __slots__ = ("mtype", "tag", "body", "request")

    def __init__(self, mtype, tag, body, request):
        self.mtype, self.tag, self.body, self.request = mtype, tag, body, request

    def expect(self, rtype):
        """The body if this is `rtype`; raises Rlerror or ProtocolError otherwise."""
        if self.mtype == rtype:
            return self.body
        if self.mtype == RLERROR:
            raise Rlerror(struct.unpack_from("<I", self.body, 0)[0], self.request)
        raise ProtocolError("expected %s to tag %d, got %s" % (NAMES.get(rtype, rtype), self.tag, NAMES.get(self.mtype, self.mtype)))

    @property
    def error(self):
        """errno of an Rlerror, else None."""
        return struct.unpack_from("<I", self.body, 0)[0] if self.mtype == RLERROR else None


class Connection:
    def __init__(self, sock, msize=65536, timeout=30.0):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.msize = msize
        self.next_tag = 0
        self.in_flight = {}     # tag -> request type
        self.arrived = {}       # tag -> Reply that nobody waited for yet
        self.sent = 0
        self.received = 0
        self._header = bytearray(HEADER)

    @classmethod
    def connect(cls, host, port, msize=65536, timeout=30.0, version=True):
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ConnectionLost("connect to %s:%d: %s" % (host, port, e)) from e
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = cls(sock, msize, timeout)
        if version:
            try:
                conn.version(msize)
            except BaseException:
                conn.close()
                raise
        return conn

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- tags, sending and receiving --

    def allocate_tag(self):
        """Cyclic, skipping tags in flight and NOTAG."""
        for _ in range(0x10000):
            tag = self.next_tag
            self.next_tag = (self.next_tag + 1) % NOTAG
            if tag not in self.in_flight and tag not in self.arrived:
                return tag
        raise ProtocolError("all 65535 tags in flight")

    def send(self, mtype, body, tag=None):
        tag, frame = self.frame(mtype, body, tag)
        try:
            self.sock.sendall(frame)
        except (OSError, socket.timeout) as e:
            raise ConnectionLost("send %s: %s" % (NAMES.get(mtype, mtype), e)) from e
        return tag

    def frame(self, mtype, body, tag=None):
        """(tag, frame) of a request now counted in flight, for the caller to send itself (from
        a sending thread, say, while this one reads replies)."""
        if tag is None:
            tag = self.allocate_tag()
        size = HEADER + len(body)
        if size > self.msize:
            raise ProtocolError("%s of %d bytes exceeds msize %d" % (NAMES.get(mtype, mtype), size, self.msize))
        self.in_flight[tag] = mtype
        self.sent += 1
        return tag, _HDR.pack(size, mtype, tag) + body

    def _read_exact(self, view):
        got = 0
        while got < len(view):
            try:
                n = self.sock.recv_into(view[got:])
            except socket.timeout as e:
                raise ConnectionLost("no reply within %.0f s (%d requests in flight)" % (self.sock.gettimeout(), len(self.in_flight))) from e
            except OSError as e:
                raise ConnectionLost("receive: %s" % e) from e
            if n == 0:
                raise ConnectionLost("server closed the connection (%d requests in flight)" % len(self.in_flight))
            got += n

    def recv(self):
        """The next reply off the wire (any tag)."""
        self._read_exact(memoryview(self._header))
        size, mtype, tag = _HDR.unpack(self._header)
        if size < HEADER or size > self.msize:
            raise ProtocolError("reply size %d outside [7, msize %d]" % (size, self.msize))
        body = bytearray(size - HEADER)
        if body:
            self._read_exact(memoryview(body))
        request = self.in_flight.pop(tag, None)
        if request is None:
            raise ProtocolError("reply %s with tag %d that is not in flight" % (NAMES.get(mtype, mtype), tag))
        if mtype != RLERROR and mtype != request + 1:
            raise ProtocolError("reply %s to %s (tag %d)" % (NAMES.get(mtype, mtype), NAMES.get(request, request), tag))
        self.received += 1
        return Reply(mtype, tag, body, request)

    def wait(self, tag):
        """The reply to `tag`, keeping replies to other tags for their own wait()."""
        if tag in self.arrived:
            return self.arrived.pop(tag)
        if tag not in self.in_flight:
            raise ProtocolError("tag %d is not in flight" % tag)
        while True:
            reply = self.recv()
            if reply.tag == tag:
                return reply
            self.arrived[reply.tag] = reply

    def wait_any(self):
        """Any reply: one already received, else the next off the wire."""
        if self.arrived:
            tag = next(iter(self.arrived))
            return self.arrived.pop(tag)
        return self.recv()

    def rpc(self, message):
        mtype, body = message
        return self.wait(self.send(mtype, body)).expect(mtype + 1)

    def pipeline(self, messages):
        """Sends every message, then returns their Replies in order (Rlerror is not raised)."""
        tags = [self.send(mtype, body) for mtype, body in messages]
        return [self.wait(tag) for tag in tags]

    # -- operations --

    def version(self, msize=None):
        tag = self.send(*t_version(msize or self.msize), tag=NOTAG)
        msize, version = r_version(self.wait(tag).expect(RVERSION))
        if version != VERSION:
            raise ProtocolError("server speaks %r, not %s" % (version, VERSION))
        self.msize = msize
        return msize

    def attach(self, fid, uname="root", aname="", n_uname=NONUNAME):
        return r_attach(self.rpc(t_attach(fid, uname, aname, n_uname)))

    def walk(self, fid, newfid, names=()):
        qids = r_walk(self.rpc(t_walk(fid, newfid, names)))
        if len(qids) != len(names):
            # A partial walk: no new fid.
            raise Rlerror(errno_module.ENOENT, TWALK)
        return qids

    def lopen(self, fid, flags):
        return r_open(self.rpc(t_lopen(fid, flags)))

    def lcreate(self, fid, name, flags, mode=0o644, gid=0):
        return r_open(self.rpc(t_lcreate(fid, name, flags, mode, gid)))

    def read(self, fid, offset, count):
        return r_read(self.rpc(t_read(fid, offset, count)))

    def write(self, fid, offset, data):
        return r_write(self.rpc(t_write(fid, offset, data)))

    def getattr(self, fid, mask=GETATTR_BASIC):
        return r_getattr(self.rpc(t_getattr(fid, mask)))

    def clunk(self, fid):
        self.rpc(t_clunk(fid))

    def remove(self, fid):
        self.rpc(t_remove(fid))

    def mkdir(self, dfid, name, mode=0o755, gid=0):
        return _qid(self.rpc(t_mkdir(dfid, name, mode, gid)), 0)

    def unlinkat(self, dfid, name, flags=0):
        self.rpc(t_unlinkat(dfid, name, flags))

    def flush(self, oldtag):
        """Sends Tflush(oldtag) and waits for Rflush; the old request's reply, if it comes first,
        is returned (else None)."""
        tag = self.send(*t_flush(oldtag))
        old = None
        while True:
            reply = self.recv()
            if reply.tag == tag:
                reply.expect(RFLUSH)
                if oldtag in self.in_flight:
                    del self.in_flight[oldtag]   # no reply will follow Rflush
                return old
            if reply.tag == oldtag:
                old = reply
            else:
                self.arrived[reply.tag] = reply

    def write_all(self, fid, offset, data):
        """Writes all of data in iounit/msize-sized Twrites."""
        chunk = self.msize - WRITE_OVERHEAD
        done = 0
        while done < len(data):
            n = self.write(fid, offset + done, data[done:done + chunk])
            if n <= 0:
                raise ProtocolError("Rwrite of %d bytes" % n)
            done += n
        return done

    def read_all(self, fid, offset, count):
        chunk = self.msize - READ_OVERHEAD
        parts = []
        while count > 0:
            data = self.read(fid, offset, min(chunk, count))
            if not data:
                break
            parts.append(bytes(data))
            offset += len(data)
            count -= len(data)
        return b"".join(parts)


def parse_address(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError("address %r is not HOST:PORT" % text)
    host = host.strip("[]")
    if not (host.startswith("127.") or host == "localhost"):
        raise ValueError("only loopback addresses (127.0.0.0/8) are allowed: %r" % text)
    return host, int(port)


# -- command line -------------------------------------------------------------------------------

def _smoke(conn, aname):
    conn.attach(1, aname=aname, n_uname=os.getuid())
    name = "ninep_load-smoke-%d" % os.getpid()
    conn.walk(1, 2)
    conn.lcreate(2, name, O_RDWR | O_CREAT | O_TRUNC)
    data = os.urandom(3 * conn.msize + 17)
    conn.write_all(2, 0, data)
    back = conn.read_all(2, 0, len(data) + 100)
    assert back == data, "read back %d bytes, %d differ" % (len(back), sum(a != b for a, b in zip(back, data)))
    attributes = conn.getattr(2)
    assert attributes["size"] == len(data), attributes
    conn.clunk(2)
    replies = conn.pipeline([t_walk(1, 10 + i, [name]) for i in range(8)])
    assert all(r.mtype == RWALK for r in replies)
    replies = conn.pipeline([t_clunk(10 + i) for i in range(8)])
    assert all(r.mtype == RCLUNK for r in replies)
    assert conn.flush(0x1234) is None
    try:
        conn.walk(1, 3, ["no-such-file"])
        raise AssertionError("walk to a missing name succeeded")
    except Rlerror as e:
        assert e.errno == errno_module.ENOENT, e
    conn.unlinkat(1, name)
    print("smoke ok: msize %d, %d requests" % (conn.msize, conn.sent))


def _loop(conn, aname, seconds, depth):
    conn.attach(1, aname=aname, n_uname=os.getuid())
    name = "ninep_load-loop-%d" % os.getpid()
    conn.walk(1, 2)
    conn.lcreate(2, name, O_RDWR | O_CREAT | O_TRUNC)
    conn.write(2, 0, b"x" * 4096)
    deadline = time.monotonic() + seconds
    done = 0
    while time.monotonic() < deadline:
        replies = conn.pipeline([t_read(2, 0, 4096)] * depth + [t_getattr(2)] * depth)
        for r in replies:
            r.expect(r.request + 1)
        done += len(replies)
    conn.clunk(2)
    conn.unlinkat(1, name)
    print("loop: %d requests in %.1f s (%.0f/s)" % (done, seconds, done / seconds))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="HOST:PORT (loopback)")
    parser.add_argument("--aname", default="", help="export path to attach (empty: the export)")
    parser.add_argument("--msize", type=int, default=1 << 20)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("smoke")
    loop = sub.add_parser("loop")
    loop.add_argument("--seconds", type=float, default=5.0)
    loop.add_argument("--depth", type=int, default=8)
    args = parser.parse_args(argv)
    host, port = parse_address(args.address)
    try:
        with Connection.connect(host, port, msize=args.msize) as conn:
            if args.command == "smoke":
                _smoke(conn, args.aname)
            else:
                _loop(conn, args.aname, args.seconds, args.depth)
    except NinePError as e:
        print("ninep_load: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
