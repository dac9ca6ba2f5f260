#!/usr/bin/env python3
"""Data integrity through a mount: a random-operation file exerciser and fio --verify.

    exerciser.py MOUNT RESULTS.json [--seed N] [--operations 3000] [--max-size 1M] [--fio]

Runs as root in the user-mode-linux guest (scripts/uml/run-9p-battery) on the 9p mount, or on any
directory. The exerciser keeps a model of the file (a bytearray) and applies the same random
operations to the file and to the model: pwrite, pread (compared with the model), ftruncate up
and down, writes past the end that leave holes (which must read back as zeros), writes and reads
through a shared mapping (msync after writes), O_DIRECT reads and writes of whole 4 KiB blocks
from aligned buffers, fsync, and closing and reopening the file (so cached state must agree
with the server). Every read is checked against the model; the first difference stops the run
with the operation number, the offset and the last operations. Reproducible: the same seed gives
the same operations. Mapped writes need a mount that allows them (cache=loose or mmap with the
Linux 9p client); where mmap(PROT_WRITE, MAP_SHARED) is refused (cache=none), the run says so
and uses private read-only mappings for mapped reads.

--fio also runs Debian's fio on the mount with --verify=crc32c (random reads and writes of 4 to
64 KiB, then every block verified), with the psync engine and with the mmap engine, seeded.

RESULTS.json = {"seed", "operations", "done", "mismatches", "first_mismatch", "counts", "notes",
"fio": [{"engine", "ok", "detail"}]}; exit status 0 when nothing differed.
"""
import argparse
import collections
import errno
import json
import mmap
import os
import random
import subprocess
import sys
import time

BLOCK = 4096


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text and text[-1] in units else int(text)


class Mismatch(Exception):
    pass


class Exerciser:
    def __init__(self, path, seed, max_size):
        self.path, self.rng, self.max_size = path, random.Random(seed), max_size
        self.model = bytearray()
        self.log = collections.deque(maxlen=12)
        self.counts = collections.Counter()
        self.notes = []
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self.direct = self.open_direct()
        self.map_writes = self.probe_map_writes()

    def open_direct(self):
        try:
            return os.open(self.path, os.O_RDWR | os.O_DIRECT)
        except OSError as e:
            note = "O_DIRECT open refused (%s): no direct operations" % errno.errorcode.get(e.errno)
            if note not in self.notes:
                self.notes.append(note)
            return None

    def probe_map_writes(self):
        os.ftruncate(self.fd, BLOCK)
        try:
            m = mmap.mmap(self.fd, BLOCK, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            m.close()
            ok = True
        except OSError as e:
            self.notes.append("mmap(PROT_WRITE, MAP_SHARED) refused (%s): mapped reads only" % errno.errorcode.get(e.errno))
            ok = False
        os.ftruncate(self.fd, 0)
        return ok

    def data(self, length):
        return self.rng.randbytes(length)

    def grow_model(self, end):
        if len(self.model) < end:
            self.model.extend(bytes(end - len(self.model)))

    def check(self, offset, got, what):
        want = bytes(self.model[offset:offset + len(got)])
        if got != want:
            first = next(i for i in range(min(len(got), len(want))) if got[i] != want[i]) if len(got) == len(want) else 0
            raise Mismatch("%s at %d, %d bytes: first difference at +%d (got %r, want %r)%s" % (
                what, offset, len(got), first, got[first:first + 8], want[first:first + 8],
                "" if len(got) == len(want) else "; length %d, want %d" % (len(got), len(want))))

    def expect_size(self, what):
        size = os.fstat(self.fd).st_size
        if size != len(self.model):
            raise Mismatch("%s: file size %d, model %d" % (what, size, len(self.model)))

    # -- operations ----------------------------------------------------------------------------

    def op_write(self):
        offset = self.rng.randrange(0, self.max_size)
        length = min(self.rng.randrange(1, 65536), self.max_size - offset)
        data = self.data(length)
        n = os.pwrite(self.fd, data, offset)
        if n != length:
            raise Mismatch("pwrite of %d at %d wrote %d" % (length, offset, n))
        self.grow_model(offset + length)
        self.model[offset:offset + length] = data
        return "pwrite %d+%d" % (offset, length)

    def op_hole(self):
        offset = len(self.model) + self.rng.randrange(1, 3 * BLOCK)
        length = self.rng.randrange(1, 9000)
        if offset + length > self.max_size:
            return self.op_truncate()
        data = self.data(length)
        os.pwrite(self.fd, data, offset)
        self.grow_model(offset + length)
        self.model[offset:offset + length] = data
        return "hole then pwrite %d+%d" % (offset, length)

    def op_read(self):
        if not self.model:
            return self.op_write()
        offset = self.rng.randrange(0, len(self.model))
        length = self.rng.randrange(1, 131072)
        got = os.pread(self.fd, length, offset)
        expected = min(length, len(self.model) - offset)
        if len(got) != expected:
            raise Mismatch("pread of %d at %d gave %d bytes, want %d" % (length, offset, len(got), expected))
        self.check(offset, got, "pread")
        return "pread %d+%d" % (offset, length)

    def op_truncate(self):
        size = self.rng.randrange(0, self.max_size)
        os.ftruncate(self.fd, size)
        if size < len(self.model):
            del self.model[size:]
        else:
            self.grow_model(size)
        self.expect_size("after ftruncate(%d)" % size)
        return "ftruncate %d" % size

    def op_map_read(self):
        if len(self.model) < 1:
            return self.op_write()
        # Where shared writable mappings are refused, so is MAP_SHARED of a file open for
        # writing (Linux's read-only mmap): a private mapping still reads the file's pages.
        flags = mmap.MAP_SHARED if self.map_writes else mmap.MAP_PRIVATE
        m = mmap.mmap(self.fd, len(self.model), flags, mmap.PROT_READ)
        try:
            offset = self.rng.randrange(0, len(self.model))
            length = min(self.rng.randrange(1, 65536), len(self.model) - offset)
            self.check(offset, m[offset:offset + length], "mapped read")
        finally:
            m.close()
        return "mapped read %d+%d" % (offset, length)

    def op_map_write(self):
        if not self.map_writes:
            return self.op_map_read()
        if len(self.model) < BLOCK:
            return self.op_write()
        m = mmap.mmap(self.fd, len(self.model), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            offset = self.rng.randrange(0, len(self.model))
            length = min(self.rng.randrange(1, 32768), len(self.model) - offset)
            data = self.data(length)
            m[offset:offset + length] = data
            m.flush()
            self.model[offset:offset + length] = data
        finally:
            m.close()
        return "mapped write %d+%d" % (offset, length)

    def op_direct_write(self):
        if self.direct is None:
            return self.op_write()
        blocks = self.rng.randrange(1, 17)
        offset = self.rng.randrange(0, max(1, self.max_size // BLOCK - blocks)) * BLOCK
        data = self.data(blocks * BLOCK)
        buffer = mmap.mmap(-1, len(data))   # page-aligned, as O_DIRECT wants
        buffer[:] = data
        n = os.pwritev(self.direct, [buffer], offset)
        buffer.close()
        if n != len(data):
            raise Mismatch("O_DIRECT pwrite of %d at %d wrote %d" % (len(data), offset, n))
        self.grow_model(offset + len(data))
        self.model[offset:offset + len(data)] = data
        return "direct pwrite %d+%d" % (offset, len(data))

    def op_direct_read(self):
        if self.direct is None or len(self.model) < BLOCK:
            return self.op_read()
        blocks = self.rng.randrange(1, 17)
        offset = self.rng.randrange(0, len(self.model) // BLOCK) * BLOCK
        buffer = mmap.mmap(-1, blocks * BLOCK)
        n = os.preadv(self.direct, [buffer], offset)
        got = bytes(buffer[:n])
        buffer.close()
        expected = min(blocks * BLOCK, len(self.model) - offset)
        if n != expected:
            raise Mismatch("O_DIRECT pread of %d at %d gave %d bytes, want %d" % (blocks * BLOCK, offset, n, expected))
        self.check(offset, got, "direct pread")
        return "direct pread %d+%d" % (offset, blocks * BLOCK)

    def op_fsync(self):
        os.fsync(self.fd)
        self.expect_size("after fsync")
        return "fsync"

    def op_reopen(self):
        os.close(self.fd)
        if self.direct is not None:
            os.close(self.direct)
        self.fd = os.open(self.path, os.O_RDWR)
        self.direct = self.open_direct()
        self.expect_size("after reopen")
        return "close and reopen"

    OPERATIONS = [(op_write, 25), (op_read, 25), (op_hole, 5), (op_truncate, 6), (op_map_read, 8),
                  (op_map_write, 8), (op_direct_write, 6), (op_direct_read, 6), (op_fsync, 3), (op_reopen, 3)]

    def run(self, operations):
        table = [op for op, weight in self.OPERATIONS for _ in range(weight)]
        done = 0
        for index in range(operations):
            op = self.rng.choice(table)
            self.log.append("%d: %s ..." % (index, op.__name__[3:]))
            self.log[-1] = "%d: %s" % (index, op(self))
            self.counts[op.__name__[3:]] += 1
            done += 1
        # The whole file, at the end, by plain reads.
        self.expect_size("at the end")
        offset = 0
        while offset < len(self.model):
            chunk = os.pread(self.fd, 1 << 20, offset)
            if not chunk:
                raise Mismatch("whole-file read ended at %d of %d" % (offset, len(self.model)))
            self.check(offset, chunk, "final read")
            offset += len(chunk)
        return done


def run_fio(directory, seed, engine):
    name = os.path.join(directory, "fio-%s.dat" % engine)
    argv = ["fio", "--name=verify-%s" % engine, "--filename=" + name, "--size=16M", "--rw=randrw",
            "--bsrange=4k-64k", "--ioengine=" + engine, "--verify=crc32c", "--do_verify=1",
            "--verify_fatal=1", "--verify_state_save=0", "--randseed=%d" % seed, "--output-format=terse", "--minimal"]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"engine": engine, "ok": False, "detail": "fio did not run: %s" % e}
    fields = p.stdout.decode(errors="replace").strip().split(";")
    errors = fields[4] if len(fields) > 4 else "?"
    detail = "exit %d, error field %s; %s" % (p.returncode, errors, p.stderr.decode(errors="replace")[-400:].strip())
    return {"engine": engine, "ok": p.returncode == 0 and errors == "0", "detail": detail}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mount")
    parser.add_argument("results")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--operations", type=int, default=3000)
    parser.add_argument("--max-size", type=parse_size, default=parse_size("1M"))
    parser.add_argument("--fio", action="store_true")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    directory = os.path.join(args.mount, "exerciser-%d-%s" % (time.time(), os.urandom(3).hex()))
    os.mkdir(directory)
    result = {"seed": seed, "operations": args.operations, "done": 0, "mismatches": 0, "first_mismatch": None,
              "counts": {}, "notes": [], "fio": [], "mount": os.environ.get("BATTERY_MOUNT_OPTS", "")}
    started = time.monotonic()
    exerciser = Exerciser(os.path.join(directory, "exercised.dat"), seed, args.max_size)
    try:
        result["done"] = exerciser.run(args.operations)
    except (Mismatch, OSError) as e:
        result["mismatches"] = 1
        what = str(e) if isinstance(e, Mismatch) else "%s: %s" % (errno.errorcode.get(e.errno, e.errno), e)
        result["first_mismatch"] = {"after": len(exerciser.log), "what": what, "last_operations": list(exerciser.log)}
    result["done"] = result["done"] or sum(exerciser.counts.values())
    result["counts"], result["notes"] = dict(exerciser.counts), exerciser.notes
    result["seconds"] = round(time.monotonic() - started, 2)
    if args.fio:
        result["fio"].append(run_fio(directory, seed, "psync"))
        if exerciser.map_writes:
            result["fio"].append(run_fio(directory, seed, "mmap"))
        else:
            result["notes"].append("fio's mmap engine needs shared writable mappings: not run")
    with open(args.results + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
    os.replace(args.results + ".tmp", args.results)
    print("exerciser: seed %d, %d of %d operations, %d mismatches in %.1f s; %s%s" % (
        seed, result["done"], args.operations, result["mismatches"], result["seconds"],
        ", ".join("%s %d" % kv for kv in sorted(result["counts"].items())),
        "".join("\n  note: " + n for n in result["notes"])))
    if result["first_mismatch"]:
        print("  FIRST MISMATCH: %s\n  last operations: %s" % (
            result["first_mismatch"]["what"], "; ".join(result["first_mismatch"]["last_operations"])))
    for f in result["fio"]:
        print("fio %s: %s (%s)" % (f["engine"], "verified" if f["ok"] else "FAILED", f["detail"][:300]))
    bad = result["mismatches"] or any(not f["ok"] for f in result["fio"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
