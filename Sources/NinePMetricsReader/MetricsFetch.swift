import NIOCore
import NIOHTTP1
import NIOPosix
import NinePTransport

/// One HTTP GET (swift-nio), for reading a metrics endpoint (`ninepd --metrics-listen`) or a
/// Prometheus server's query API. Not on any request path: a monitoring tool's fetch.
public enum MetricsFetch {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The body of `GET path` at `address` when the status is 200; otherwise a failure naming
    /// the address and what went wrong.
    public static func get(_ address: ListenAddress, path: String, timeout: Duration = .seconds(5)) async throws(Failure) -> String {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)))
        let host: String
        do {
            let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
            switch address {
            case let .tcp(name, port):
                host = name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
                channel = try await bootstrap.connect(host: name, port: Int(port)) { channel in
                    channel.eventLoop.makeCompletedFuture { try Self.wrap(channel) }
                }
            case let .unix(path):
                host = "localhost"
                channel = try await bootstrap.connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture { try Self.wrap(channel) }
                }
            }
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask { try await Self.exchange(channel, host: host, path: path) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let body = first else {
                    throw Failure(description: "\(address): no answer to GET \(path) within \(timeout)")
                }
                return body
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "\(address): GET \(path) failed: \(error)")
        }
    }

    private static func wrap(_ channel: any Channel) throws -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        return try NIOAsyncChannel(wrappingChannelSynchronously: channel)
    }

    private static func exchange(_ channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>, host: String, path: String) async throws -> String {
        try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
            head.headers.add(name: "Host", value: host)
            head.headers.add(name: "Connection", value: "close")
            try await outbound.write(.head(head))
            try await outbound.write(.end(nil))
            var status = HTTPResponseStatus.ok
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case let .head(response):
                    status = response.status
                case var .body(bytes):
                    body.writeBuffer(&bytes)
                case .end:
                    let text = String(buffer: body)
                    guard status == .ok else {
                        throw Failure(description: "GET \(path): HTTP \(status.code) \(status.reasonPhrase): \(text.prefix(200))")
                    }
                    return text
                }
            }
            throw Failure(description: "GET \(path): the connection closed before the whole answer")
        }
    }
}
