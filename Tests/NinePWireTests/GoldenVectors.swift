/// Frames worked out by hand from the Linux client's layouts (include/net/9p/9p.h for the type
/// numbers, net/9p/client.c and net/9p/protocol.c for the field formats). Everything is
/// little-endian; string[s] is len[2] followed by the bytes; qid is type[1] version[4] path[8].
enum Golden {
    // Tversion "ds": msize version
    static let tversion = hex(
        "15000000",  // size = 21
        "64",  // type = Tversion (100)
        "ffff",  // tag = NOTAG
        "00200000",  // msize = 8192
        "0800", "3950323030302e4c"  // version = "9P2000.L"
    )

    // Rversion "ds": msize version
    static let rversion = hex(
        "15000000",  // size = 21
        "65",  // type = Rversion (101)
        "ffff",  // tag = NOTAG
        "00000100",  // msize = 65536
        "0800", "3950323030302e4c"  // version = "9P2000.L"
    )

    // Tattach "ddss?u": fid afid uname aname n_uname
    static let tattach = hex(
        "1f000000",  // size = 31
        "68",  // type = Tattach (104)
        "0100",  // tag = 1
        "00000000",  // fid = 0
        "ffffffff",  // afid = NOFID
        "0400", "726f6f74",  // uname = "root"
        "0400", "2f737276",  // aname = "/srv"
        "e8030000"  // n_uname = 1000
    )

    // Rattach "Q": qid
    static let rattach = hex(
        "14000000",  // size = 20
        "69",  // type = Rattach (105)
        "0100",  // tag = 1
        "80", "00000000", "0100000000000000"  // qid = (dir, version 0, path 1)
    )

    // Rerror (9P2000.u) "sd": ename errno
    static let rerror = hex(
        "19000000",  // size = 25
        "6b",  // type = Rerror (107)
        "0500",  // tag = 5
        "0c00", "6e6f20737563682066696c65",  // ename = "no such file"
        "02000000"  // errno = ENOENT (2)
    )

    // Rlerror "d": ecode
    static let rlerror = hex(
        "0b000000",  // size = 11
        "07",  // type = Rlerror (7)
        "0500",  // tag = 5
        "02000000"  // ecode = ENOENT (2)
    )

    // Twalk "ddT": fid newfid nwname wname[s]...
    static let twalk = hex(
        "1b000000",  // size = 27
        "6e",  // type = Twalk (110)
        "0200",  // tag = 2
        "00000000",  // fid = 0
        "01000000",  // newfid = 1
        "0200",  // nwname = 2
        "0300", "757372",  // "usr"
        "0300", "6c6962"  // "lib"
    )

    // Rwalk "R": nwqid qid...
    static let rwalk = hex(
        "23000000",  // size = 35
        "6f",  // type = Rwalk (111)
        "0200",  // tag = 2
        "0200",  // nwqid = 2
        "80", "00000000", "1000000000000000",  // qid (dir, 0, 0x10)
        "00", "07000000", "0807060504030201"  // qid (file, 7, 0x0102030405060708)
    )

    // Tlopen "dd": fid flags
    static let tlopen = hex(
        "0f000000",  // size = 15
        "0c",  // type = Tlopen (12)
        "0300",  // tag = 3
        "01000000",  // fid = 1
        "02020000"  // flags = O_RDWR | O_TRUNC (0x202)
    )

    // Rlopen "Qd": qid iounit
    static let rlopen = hex(
        "18000000",  // size = 24
        "0d",  // type = Rlopen (13)
        "0300",  // tag = 3
        "00", "01000000", "2a00000000000000",  // qid = (file, 1, 42)
        "00000000"  // iounit = 0
    )

    // Tread "dqd": fid offset count
    static let tread = hex(
        "17000000",  // size = 23
        "74",  // type = Tread (116)
        "0400",  // tag = 4
        "01000000",  // fid = 1
        "0010000000000000",  // offset = 4096
        "00100000"  // count = 4096
    )

    // Rread "D": count data
    static let rread = hex(
        "10000000",  // size = 16
        "75",  // type = Rread (117)
        "0400",  // tag = 4
        "05000000",  // count = 5
        "68656c6c6f"  // "hello"
    )

    // Twrite "dqV": fid offset count data
    static let twrite = hex(
        "1a000000",  // size = 26
        "76",  // type = Twrite (118)
        "0600",  // tag = 6
        "01000000",  // fid = 1
        "0a00000000000000",  // offset = 10
        "03000000",  // count = 3
        "616263"  // "abc"
    )

    // Rwrite "d": count
    static let rwrite = hex(
        "0b000000",  // size = 11
        "77",  // type = Rwrite (119)
        "0600",  // tag = 6
        "03000000"  // count = 3
    )

    // Tgetattr "dq": fid request_mask
    static let tgetattr = hex(
        "13000000",  // size = 19
        "18",  // type = Tgetattr (24)
        "0700",  // tag = 7
        "01000000",  // fid = 1
        "ff07000000000000"  // request_mask = P9_GETATTR_BASIC (0x7ff)
    )

    // Rgetattr "A" = "qQdugqqqqqqqqqqqqqqq"
    static let rgetattr = hex(
        "a0000000",  // size = 160
        "19",  // type = Rgetattr (25)
        "0700",  // tag = 7
        "ff07000000000000",  // valid = 0x7ff
        "00", "01000000", "2a00000000000000",  // qid = (file, 1, 42)
        "a4810000",  // mode = 0o100644
        "e8030000",  // uid = 1000
        "64000000",  // gid = 100
        "0100000000000000",  // nlink = 1
        "0000000000000000",  // rdev = 0
        "0500000000000000",  // size = 5
        "0010000000000000",  // blksize = 4096
        "0800000000000000",  // blocks = 8
        "00f1536500000000",  // atime_sec = 1700000000
        "0100000000000000",  // atime_nsec = 1
        "0200000000000000",  // mtime_sec = 2
        "0300000000000000",  // mtime_nsec = 3
        "0400000000000000",  // ctime_sec = 4
        "0500000000000000",  // ctime_nsec = 5
        "0000000000000000",  // btime_sec = 0
        "0000000000000000",  // btime_nsec = 0
        "0000000000000000",  // gen = 0
        "0000000000000000"  // data_version = 0
    )

    // Treaddir "dqd": fid offset count
    static let treaddir = hex(
        "17000000",  // size = 23
        "28",  // type = Treaddir (40)
        "0800",  // tag = 8
        "02000000",  // fid = 2
        "0000000000000000",  // offset = 0
        "e81f0000"  // count = 8168
    )

    // Rreaddir "D": count, then entries "Qqbs": qid offset type name
    static let rreaddir = hex(
        "3d000000",  // size = 61
        "29",  // type = Rreaddir (41)
        "0800",  // tag = 8
        "32000000",  // count = 50
        "80", "00000000", "0100000000000000",  // qid = (dir, 0, 1)
        "0100000000000000",  // offset = 1
        "04",  // type = DT_DIR
        "0100", "2e",  // name = "."
        "00", "00000000", "0200000000000000",  // qid = (file, 0, 2)
        "0200000000000000",  // offset = 2
        "08",  // type = DT_REG
        "0100", "61"  // name = "a"
    )

    // Tlock "dbdqqds": fid type flags start length proc_id client_id
    static let tlock = hex(
        "2a000000",  // size = 42
        "34",  // type = Tlock (52)
        "0900",  // tag = 9
        "01000000",  // fid = 1
        "01",  // type = P9_LOCK_TYPE_WRLCK
        "01000000",  // flags = P9_LOCK_FLAGS_BLOCK
        "0000000000000000",  // start = 0
        "0000000000000000",  // length = 0 (to EOF)
        "d2040000",  // proc_id = 1234
        "0400", "686f7374"  // client_id = "host"
    )

    // Rlock "b": status
    static let rlock = hex(
        "08000000",  // size = 8
        "35",  // type = Rlock (53)
        "0900",  // tag = 9
        "00"  // status = P9_LOCK_SUCCESS
    )

    // Tsetattr "dI" = "ddddqqqqq": fid valid mode uid gid size atime_sec atime_nsec mtime_sec mtime_nsec
    static let tsetattr = hex(
        "43000000",  // size = 67
        "1a",  // type = Tsetattr (26)
        "0a00",  // tag = 10
        "01000000",  // fid = 1
        "09000000",  // valid = MODE | SIZE
        "a4010000",  // mode = 0o644
        "00000000",  // uid = 0
        "00000000",  // gid = 0
        "6400000000000000",  // size = 100
        "0000000000000000",  // atime_sec
        "0000000000000000",  // atime_nsec
        "0000000000000000",  // mtime_sec
        "0000000000000000"  // mtime_nsec
    )

    // Tclunk "d": fid
    static let tclunk = hex(
        "0b000000",  // size = 11
        "78",  // type = Tclunk (120)
        "0b00",  // tag = 11
        "01000000"  // fid = 1
    )

    // Rclunk: empty body
    static let rclunk = hex(
        "07000000",  // size = 7
        "79",  // type = Rclunk (121)
        "0b00"  // tag = 11
    )

    // Tflush "w": oldtag
    static let tflush = hex(
        "09000000",  // size = 9
        "6c",  // type = Tflush (108)
        "0c00",  // tag = 12
        "0400"  // oldtag = 4
    )

    // Rflush: empty body
    static let rflush = hex(
        "07000000",  // size = 7
        "6d",  // type = Rflush (109)
        "0c00"  // tag = 12
    )

    // Tmkdir "dsdd": dfid name mode gid
    static let tmkdir = hex(
        "16000000",  // size = 22
        "48",  // type = Tmkdir (72)
        "0d00",  // tag = 13
        "01000000",  // dfid = 1
        "0100", "64",  // name = "d"
        "ed010000",  // mode = 0o755
        "64000000"  // gid = 100
    )

    // Tstatfs "d": fid
    static let tstatfs = hex(
        "0b000000",  // size = 11
        "08",  // type = Tstatfs (8)
        "0e00",  // tag = 14
        "01000000"  // fid = 1
    )

    // Rstatfs "ddqqqqqqd": type bsize blocks bfree bavail files ffree fsid namelen
    static let rstatfs = hex(
        "43000000",  // size = 67
        "09",  // type = Rstatfs (9)
        "0e00",  // tag = 14
        "97190201",  // type = V9FS_MAGIC 0x01021997
        "00100000",  // bsize = 4096
        "e803000000000000",  // blocks = 1000
        "f401000000000000",  // bfree = 500
        "9001000000000000",  // bavail = 400
        "6400000000000000",  // files = 100
        "3200000000000000",  // ffree = 50
        "0700000000000000",  // fsid = 7
        "ff000000"  // namelen = 255
    )

    // Tunlinkat "dsd": dirfid name flags
    static let tunlinkat = hex(
        "12000000",  // size = 18
        "4c",  // type = Tunlinkat (76)
        "0f00",  // tag = 15
        "01000000",  // dirfid = 1
        "0100", "78",  // name = "x"
        "00020000"  // flags = AT_REMOVEDIR (0x200)
    )

    // Tlcreate "dsddd": fid name flags mode gid
    static let tlcreate = hex(
        "1e000000",  // size = 30
        "0e",  // type = Tlcreate (14)
        "1000",  // tag = 16
        "03000000",  // fid = 3
        "0500", "662e747874",  // name = "f.txt"
        "41800000",  // flags = O_WRONLY | O_CREAT | O_LARGEFILE (0x8041)
        "a4810000",  // mode = 0o100644
        "00000000"  // gid = 0
    )

    // Rreadlink "s": target
    static let rreadlink = hex(
        "0e000000",  // size = 14
        "17",  // type = Rreadlink (23)
        "1100",  // tag = 17
        "0500", "2f746d702f"  // target = "/tmp/"
    )

    static let requests: [(String, [UInt8])] = [
        ("Tversion", tversion), ("Tattach", tattach), ("Twalk", twalk), ("Tlopen", tlopen), ("Tread", tread),
        ("Twrite", twrite), ("Tgetattr", tgetattr), ("Treaddir", treaddir), ("Tlock", tlock), ("Tsetattr", tsetattr),
        ("Tclunk", tclunk), ("Tflush", tflush), ("Tmkdir", tmkdir), ("Tstatfs", tstatfs), ("Tunlinkat", tunlinkat),
        ("Tlcreate", tlcreate),
    ]

    static let responses: [(String, [UInt8])] = [
        ("Rversion", rversion), ("Rattach", rattach), ("Rlerror", rlerror), ("Rwalk", rwalk), ("Rlopen", rlopen),
        ("Rread", rread), ("Rwrite", rwrite), ("Rgetattr", rgetattr), ("Rreaddir", rreaddir), ("Rlock", rlock),
        ("Rclunk", rclunk), ("Rflush", rflush), ("Rstatfs", rstatfs), ("Rreadlink", rreadlink), ("Rerror", rerror),
    ]
}
