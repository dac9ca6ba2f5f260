import NIOCore
import NIOHTTP1
import NIOPosix
import NinePMemory
import NinePTransport
import Prometheus

/// `--metrics-listen`: an HTTP listener (swift-nio, one event-loop thread of its own) that
/// serves `GET /metrics` in the Prometheus text format. Each scrape first asks the server to
/// publish (so the figures are current, not up to a second old), then renders the registry.
/// Nothing here runs on the request path or takes memory from the request budget.
final class MetricsEndpoint: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    /// Where it listens, as bound (the port is the real one when 0 was asked).
    let boundAddress: ListenAddress

    struct StartError: Error, CustomStringConvertible {
        let description: String
    }

    init(address: ListenAddress, registry: PrometheusCollectorRegistry, publish: @escaping @Sendable () -> Void) throws(StartError) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsRequestHandler(registry: registry, publish: publish))
                }
            }
        do {
            switch address {
            case let .tcp(host, port):
                channel = try bootstrap.bind(host: host, port: Int(port)).wait()
                boundAddress = .tcp(host: host, port: UInt16(channel.localAddress?.port ?? Int(port)))
            case let .unix(path):
                channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
                boundAddress = address
            }
        } catch {
            try? group.syncShutdownGracefully()
            throw StartError(description: "cannot serve metrics on \(address): \(error)")
        }
        self.group = group
    }

    func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Answers one HTTP request at a time: `/metrics` (and `/`, for a browser) with the exposition,
/// anything else 404, methods other than GET and HEAD 405.
private final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private let publish: @Sendable () -> Void
    private var head: HTTPRequestHead?
    /// Reused between scrapes of this connection.
    private var exposition: [UInt8] = []

    init(registry: PrometheusCollectorRegistry, publish: @escaping @Sendable () -> Void) {
        self.registry = registry
        self.publish = publish
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(request):
            head = request
        case .body:
            break
        case .end:
            guard let request = head else { return }
            head = nil
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let status: HTTPResponseStatus
        var body: [UInt8]
        var contentType = "text/plain; charset=utf-8"
        if request.method != .GET && request.method != .HEAD {
            status = .methodNotAllowed
            body = Array("only GET /metrics is served here\n".utf8)
        } else if path != "/metrics" && path != "/" {
            status = .notFound
            body = Array("\(path): not found; the metrics are at /metrics\n".utf8)
        } else if !MemoryProbe.canAllocate(bytes: 4 << 20) {
            // Rendering allocates; when malloc refuses, say so rather than trap in the daemon.
            status = .serviceUnavailable
            body = Array("memory is short: try again\n".utf8)
        } else {
            publish()
            exposition.removeAll(keepingCapacity: true)
            registry.emit(into: &exposition)
            status = .ok
            body = MetricHelp.annotate(exposition)
            contentType = "text/plain; version=0.0.4; charset=utf-8"
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        body.removeAll()
        let closing: EventLoopPromise<Void>? = request.isKeepAlive ? nil : context.eventLoop.makePromise()
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: closing)
        closing?.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
    }
}
