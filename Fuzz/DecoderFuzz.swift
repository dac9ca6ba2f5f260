// libFuzzer target for the NinePWire decoders. Built by scripts/fuzz-decoder together with
// the sources of Sources/NinePWire as a single module (so there is no `import NinePWire`).
//
// For every input it checks that:
//  - FrameHeader/TMessage/RMessage.decode either decode or throw a decode error (never a trap,
//    never `.noRoom`), for several msize values, on the whole input and on the input cut into
//    frames the way a transport would;
//  - whatever decodes re-encodes to exactly the same bytes, both with `encode(tag:into:)` and
//    with the streaming encoders (twalk, twrite, rlerror, beginRread, beginRwalk,
//    DirEntryWriter), into a buffer of exactly the frame's size (ASan catches overruns);
//  - encoding into a buffer one byte short throws `.noRoom`;
//  - the lazy views (WalkNames, QidList, DirEntries) iterate fully and account for every byte.

let msizes: [UInt32] = [64, 8192, UInt32.max]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    for msize in msizes {
        checkFrame(input, msize: msize)
    }
    // The input as a stream of frames: take each frame's length from its header.
    var offset = 0
    while offset < size {
        let rest = UnsafeRawBufferPointer(rebasing: input[offset...])
        guard let header = try? FrameHeader.decode(rest, msize: 1 << 20) else { break }
        let length = Int(header.size)
        guard length <= rest.count else { break }
        checkFrame(UnsafeRawBufferPointer(rebasing: rest[0..<length]), msize: 1 << 20)
        offset += length
    }
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

func checkDecodeError(_ error: WireError, _ frame: UnsafeRawBufferPointer, msize: UInt32) {
    check(error != .noRoom, "decode threw noRoom")
    switch error {
    case .tooLarge(let size, let limit):
        check(limit == msize && size > msize, "bad tooLarge \(error)")
        check(error.errno == LinuxErrno.EMSGSIZE, "errno")
    case .unknownType:
        check(error.errno == LinuxErrno.EOPNOTSUPP, "errno")
    case .tooManyWalkElements(let count):
        check(count > NineP.maxWalkElements, "bad walk count \(count)")
        check(error.errno == LinuxErrno.EINVAL, "errno")
    case .trailingBytes(let count):
        check(count > 0 && count < frame.count, "bad trailing count \(count)")
        check(error.errno == LinuxErrno.EINVAL, "errno")
    default:
        check(error.errno == LinuxErrno.EINVAL, "errno")
    }
}

func checkFrame(_ frame: UnsafeRawBufferPointer, msize: UInt32) {
    var header: FrameHeader?
    do {
        let h = try FrameHeader.decode(frame, msize: msize)
        check(h.size >= 7 && h.size <= msize, "header accepted bad size \(h.size)")
        header = h
    } catch {
        checkDecodeError(error, frame, msize: msize)
        check(frame.count < 7 || error != .truncated, "header truncated with 7 bytes")
    }

    do {
        let message = try TMessage.decode(frame, msize: msize)
        check(header != nil && Int(header!.size) == frame.count, "T decoded with bad header")
        check(header!.tag == message.tag && header!.type == message.request.type.rawValue, "T header mismatch")
        walkViews(message.request)
        reencode(frame, expect: "T") { w throws(WireError) in try message.request.encode(tag: message.tag, into: &w) }
        reencodeStreaming(frame, message)
    } catch {
        checkDecodeError(error, frame, msize: msize)
    }

    do {
        let message = try RMessage.decode(frame, msize: msize)
        check(header != nil && Int(header!.size) == frame.count, "R decoded with bad header")
        check(header!.tag == message.tag && header!.type == message.response.type.rawValue, "R header mismatch")
        walkViews(message.response)
        reencode(frame, expect: "R") { w throws(WireError) in try message.response.encode(tag: message.tag, into: &w) }
        reencodeStreaming(frame, message)
    } catch {
        checkDecodeError(error, frame, msize: msize)
    }
}

/// Encodes into a buffer of exactly `frame.count` bytes and compares; then checks that one
/// byte less gives `.noRoom`.
func reencode(_ frame: UnsafeRawBufferPointer, expect label: StaticString, _ encode: (inout WireWriter) throws(WireError) -> Int) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 1)
    defer { buffer.deallocate() }
    var writer = WireWriter(buffer)
    do {
        let length = try encode(&writer)
        check(length == frame.count && writer.offset == frame.count, "\(label): re-encoded length \(length) != \(frame.count)")
        check(UnsafeRawBufferPointer(buffer).elementsEqual(frame), "\(label): re-encoding differs")
    } catch {
        fatalError("\(label): re-encoding threw \(error)")
    }
    let short = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(frame.count - 1)])
    var shortWriter = WireWriter(short)
    do {
        _ = try encode(&shortWriter)
        fatalError("\(label): encoding into \(frame.count - 1) bytes did not throw")
    } catch {
        check(error == .noRoom, "\(label): short encode threw \(error)")
    }
}

func compareEncoded(_ frame: UnsafeRawBufferPointer, _ written: UnsafeRawBufferPointer, _ label: StaticString) {
    check(written.count == frame.count, "\(label): length \(written.count) != \(frame.count)")
    check(written.elementsEqual(frame), "\(label): bytes differ")
}

func reencodeStreaming(_ frame: UnsafeRawBufferPointer, _ message: TMessage) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 1)
    defer { buffer.deallocate() }
    var w = WireWriter(buffer)
    do {
        switch message.request {
        case let .walk(fid, newfid, names):
            try w.twalk(tag: message.tag, fid: fid, newfid: newfid, names: Array(names))
            compareEncoded(frame, w.written, "twalk")
        case let .write(fid, offset, data):
            try w.twrite(tag: message.tag, fid: fid, offset: offset, data: data)
            compareEncoded(frame, w.written, "twrite")
        default:
            break
        }
    } catch {
        fatalError("streaming T re-encoding threw \(error)")
    }
}

func reencodeStreaming(_ frame: UnsafeRawBufferPointer, _ message: RMessage) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 1)
    defer { buffer.deallocate() }
    var w = WireWriter(buffer)
    do {
        switch message.response {
        case let .lerror(ecode):
            try w.rlerror(tag: message.tag, errno: ecode)
            compareEncoded(frame, w.written, "rlerror")
        case let .read(data):
            let region = try w.beginRread(tag: message.tag, maxCount: Int.max)
            check(region.count == data.count, "beginRread region \(region.count) != \(data.count)")
            if data.count > 0 { data.copyWireBytes(to: region.baseAddress!) }
            w.finishRread(reserved: region.count, produced: data.count)
            compareEncoded(frame, w.written, "rread")
        case let .walk(qids):
            try w.beginRwalk(tag: message.tag)
            for qid in qids { try w.qid(qid) }
            w.finishRwalk(count: qids.count)
            compareEncoded(frame, w.written, "rwalk")
        case let .readdir(entries):
            var d = try DirEntryWriter(into: buffer, tag: message.tag, maxCount: entries.data.count)
            for e in entries {
                check(d.append(qid: e.qid, offset: e.offset, type: e.type, name: e.name), "DirEntryWriter refused an entry")
            }
            let length = d.finish()
            check(length == frame.count, "rreaddir length")
            compareEncoded(frame, UnsafeRawBufferPointer(rebasing: buffer[0..<length]), "rreaddir")
        default:
            break
        }
    } catch {
        fatalError("streaming R re-encoding threw \(error)")
    }
}

func walkViews(_ request: Request) {
    if case let .walk(_, _, names) = request {
        var seen = 0
        var bytes = 0
        for name in names {
            seen += 1
            bytes += 2 + name.count
            _ = name.contains(byte: 0x2F)
        }
        check(seen == names.count && seen <= NineP.maxWalkElements, "WalkNames iterated \(seen) of \(names.count)")
        var writerBytes = 0
        for name in names { writerBytes += 2 + name.wireByteCount }
        check(bytes == writerBytes, "WalkNames sizes")
    }
}

func walkViews(_ response: Response) {
    switch response {
    case let .walk(qids):
        check(qids.count <= NineP.maxWalkElements, "QidList too long")
        var seen = 0
        for qid in qids {
            _ = qid.isDirectory
            seen += 1
        }
        check(seen == qids.count, "QidList iterated \(seen) of \(qids.count)")
        if qids.count > 0 { _ = qids[qids.count - 1] }
    case let .readdir(entries):
        var total = 0
        for entry in entries {
            total += DirEntry.wireSize(nameLength: entry.name.count)
        }
        check(total == entries.data.count, "DirEntries covered \(total) of \(entries.data.count) bytes")
    default:
        break
    }
}
