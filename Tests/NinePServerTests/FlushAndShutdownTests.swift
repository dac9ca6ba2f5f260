import Glibc
import NinePServer
import NinePTestSupport
import NinePWire
import Testing

/// Tflush (DESIGN.md "Tflush, exactly") and server shutdown with requests in flight.
@Suite struct FlushTests {
    @Test func flushOfATagNotInFlightIsAnsweredAtOnce() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        for (tag, oldtag): (UInt16, UInt16) in [(5, 77), (6, 6), (7, NineP.noTag), (8, 0)] {
            #expect(c.send(.flush(oldtag: oldtag), tag: tag))
            guard case let .message(m) = c.receive() else {
                Issue.record("no reply to Tflush(\(oldtag))")
                return
            }
            #expect(m.tag == tag)
            #expect(m.response == .flush, "Tflush(\(oldtag)) answered with \(m.response.type)")
        }
        // Before the session exists too: flush never gets Rlerror.
        let fresh = try s.client()
        #expect(fresh.send(.flush(oldtag: 1), tag: 2))
        #expect(try fresh.reply(tag: 2) == .flush)
        #expect(try c.getattr(0).qid.isDirectory)
    }

    @Test func flushOfACompletedRequestIsRflush() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        #expect(c.send(.getattr(fid: 0, mask: GetattrMask.all), tag: 10))
        guard case .getattr = try c.reply(tag: 10) else { Issue.record("no Rgetattr"); return }
        #expect(c.send(.flush(oldtag: 10), tag: 11))
        #expect(try c.reply(tag: 11) == .flush)

        // Pipelined: the request and its flush back to back. Its reply, if any, precedes Rflush.
        for round in 0..<20 {
            let old = UInt16(100 + 2 * round)
            #expect(c.send(.getattr(fid: 0, mask: GetattrMask.all), tag: old))
            #expect(c.send(.flush(oldtag: old), tag: old + 1))
            var flushed = false
            while !flushed {
                guard case let .message(m) = c.receive() else {
                    Issue.record("round \(round): no Rflush")
                    return
                }
                if m.tag == old + 1 {
                    #expect(m.response == .flush)
                    flushed = true
                } else {
                    #expect(m.tag == old)
                    if case .getattr = m.response {} else { Issue.record("round \(round): \(m.response.type) for the flushed tag") }
                }
            }
        }
        // Nothing for a flushed tag arrives after its Rflush.
        c.expectNothing(milliseconds: 200, "a late reply for a flushed tag")
        #expect(try c.getattr(0).qid.isDirectory)
    }

    /// A read blocked on a FIFO, flushed several times and by a flush of a flush: its reply
    /// (if any) comes first, then one Rflush per Tflush, in order; never Rlerror for a flush.
    @Test func flushesOfARequestInFlight() throws {
        let s = try TestServer()
        defer { s.shutdown() }
        let c = try s.session()
        try c.openFIFO(0, "fifo", as: 1, mode: 0o666)
        #expect(c.send(.read(fid: 1, offset: 0, count: 64), tag: 30))
        c.setTimeout(seconds: 0, milliseconds: 200)
        if case let .message(m) = c.receive() { Issue.record("the FIFO read answered early: \(m.response.type)") }

        #expect(c.send(.flush(oldtag: 30), tag: 31))
        #expect(c.send(.flush(oldtag: 30), tag: 32))
        #expect(c.send(.flush(oldtag: 31), tag: 33))
        var order: [RMessage] = []
        c.setTimeout(seconds: 0, milliseconds: 500)
        while case let .message(m) = c.receive() { order.append(m) }
        if !order.contains(where: { $0.tag == 31 }) {
            // The server let the read run: give it data so that it completes.
            let writer = open(s("fifo"), O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            #expect(writer >= 0)
            _ = Array("hello".utf8).withUnsafeBytes { Glibc.write(writer, $0.baseAddress, $0.count) }
            Glibc.close(writer)
        }
        c.setTimeout(seconds: 5)
        while !Set(order.map(\.tag)).isSuperset(of: [31, 32, 33]) {
            guard case let .message(m) = c.receive() else {
                Issue.record("missing Rflush; got tags \(order.map(\.tag))")
                return
            }
            order.append(m)
        }
        let tags = order.map(\.tag)
        #expect(tags.filter { $0 == 30 }.count <= 1)
        #expect(tags.filter { $0 == 31 }.count == 1 && tags.filter { $0 == 32 }.count == 1 && tags.filter { $0 == 33 }.count == 1)
        if let reply = tags.firstIndex(of: 30) {
            #expect(reply < tags.firstIndex(of: 31)!, "the read's reply came after its Rflush: \(tags)")
            if case let .read(data) = order[reply].response { #expect(Array(data) == Array("hello".utf8)) }
        }
        #expect(tags.firstIndex(of: 31)! < tags.firstIndex(of: 33)!, "a flush of a flush answered first: \(tags)")
        for m in order where m.tag != 30 { #expect(m.response == .flush, "tag \(m.tag): \(m.response.type)") }
        c.expectNothing(milliseconds: 200, "reply after the Rflushes")
        #expect(try c.getattr(0).qid.isDirectory)
    }
}

@Suite struct ShutdownTests {
    @Test func shutdownInterruptsAReadBlockedOnAFIFO() throws {
        let s = try TestServer()
        let reader = try s.session()
        try reader.openFIFO(0, "fifo", as: 1, mode: 0o644)
        #expect(reader.send(.read(fid: 1, offset: 0, count: 100), tag: 50))
        // An open of a FIFO with no writer blocks too.
        let opener = try s.session()
        try opener.mknod(0, "lonely", mode: Mode.fifo | 0o644)
        try opener.walk(0, 1, ["lonely"])
        #expect(opener.send(.lopen(fid: 1, flags: OpenFlags.readOnly), tag: 51))
        let idle = try s.session()
        for c in [reader, opener] {
            c.expectNothing(milliseconds: 300, "answered before shutdown")
        }

        let elapsed = s.shutdown(within: .seconds(10))
        #expect(elapsed != nil, "shutdown never returned")
        if let elapsed { expectPrompt(elapsed, under: .seconds(2), "shutdown with requests blocked on FIFOs") }
        for c in [reader, opener, idle] {
            #expect(c.waitForClose() != nil, "a connection stayed open after shutdown")
        }
        // Nothing is accepted any more.
        if let late = try? s.client(timeoutSeconds: 1) {
            #expect((try? late.version()) == nil)
        }
    }

    @Test func shutdownOfAnIdleServerIsQuick() throws {
        let s = try TestServer()
        let c = try s.session()
        #expect(try c.getattr(0).qid.isDirectory)
        let elapsed = s.shutdown(within: .seconds(10))
        #expect(elapsed != nil, "shutdown never returned")
        if let elapsed { expectPrompt(elapsed, under: .seconds(1), "shutdown of an idle server") }
        #expect(c.waitForClose() != nil)
    }
}
