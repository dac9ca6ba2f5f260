// swift-tools-version: 6.1
import PackageDescription

// Layers (see docs/ARCHITECTURE.md): NinePWire, NinePMemory, NinePTransport (independent of each other) -> NinePServer / NinePClient
// -> ninepd / ninep.
// A lower layer never imports a higher one; CNinePShims holds what Swift cannot call directly.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "swift-ninep",
    // Linux only (epoll, setfsuid, open_by_handle_at, statx, ...): no platforms are claimed.
    products: [
        .executable(name: "ninepd", targets: ["ninepd"]),
        .executable(name: "ninep", targets: ["ninep"]),
        .library(name: "NinePWire", targets: ["NinePWire"]),
        .library(name: "NinePServer", targets: ["NinePServer"]),
        .library(name: "NinePClient", targets: ["NinePClient"]),
        // For Benchmarks/ (a separate package): the pools and the socket helpers it measures.
        .library(name: "NinePMemory", targets: ["NinePMemory"]),
        .library(name: "NinePTransport", targets: ["NinePTransport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        // The metrics endpoint (ninepd --metrics-listen) and its reader (ninep top): the
        // exposition format and the HTTP server/client, all off the request path.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        // `swift package generate-documentation` (the DocC catalogs of NinePClient and NinePServer).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
        // ninepd's --config file (YAML). Only ninepd depends on it: NinePServer takes Swift values.
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // `--version` of ninepd and ninep: the VERSION file and the git commit, stamped at build time.
        .plugin(name: "BuildStamp", capability: .buildTool()),
        .target(name: "CNinePShims"),
        .target(name: "NinePWire", swiftSettings: strict),
        .target(
            name: "NinePMemory",
            dependencies: ["CNinePShims", .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        .target(name: "NinePTransport", dependencies: ["CNinePShims"], swiftSettings: strict),
        .target(
            name: "NinePServer",
            dependencies: [
                "CNinePShims", "NinePWire", "NinePMemory", "NinePTransport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "NinePClient",
            dependencies: ["CNinePShims", "NinePWire", "NinePMemory", "NinePTransport"],
            swiftSettings: strict
        ),
        // `ninep mount`: the FUSE protocol codec (Protocol/), the /dev/fuse session and the file
        // system that maps FUSE requests onto a NinePClient. No swift-nio: the mount daemon keeps
        // the client's allocation promise.
        .target(
            name: "NinePFuse",
            dependencies: ["CNinePShims", "NinePWire", "NinePMemory", "NinePTransport", "NinePClient"],
            swiftSettings: strict
        ),
        // Reading a metrics endpoint (ninep top, and the tests that query Prometheus): an HTTP
        // GET, the text format, and what changed between two scrapes.
        .target(
            name: "NinePMetricsReader",
            dependencies: [
                "NinePTransport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ninep",
            dependencies: [
                "NinePClient", "NinePWire", "NinePMemory", "NinePTransport", "CNinePShims", "NinePMetricsReader", "NinePFuse",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict,
            plugins: ["BuildStamp"]
        ),
        .executableTarget(
            name: "ninepd",
            dependencies: [
                "NinePServer", "NinePMemory", "NinePTransport", "CNinePShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict,
            plugins: ["BuildStamp"]
        ),
        // The client side of the load and fault-injection scripts (scripts/malloc-failure,
        // memory-pressure, bench-allocs, bench-isolation): a developer tool, not installed.
        .executableTarget(
            name: "ninep-load",
            dependencies: [
                "NinePWire", "NinePTransport", "CNinePShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Shared by the test targets (and the load tool): servers on socketpairs, a raw wire
        // client, an in-memory backend with fault injection, helpers for FIFOs and clocks.
        .target(
            name: "NinePTestSupport",
            dependencies: [
                "CNinePShims", "NinePWire", "NinePMemory", "NinePTransport", "NinePServer", "NinePClient",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "NinePWireTests", dependencies: ["NinePWire"]),
        .testTarget(
            name: "NinePServerTests",
            dependencies: [
                "NinePWire", "NinePServer", "NinePMemory", "NinePTransport", "CNinePShims", "NinePTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "NinePClientTests",
            dependencies: ["NinePClient", "NinePWire", "NinePServer", "NinePTransport", "CNinePShims", "NinePTestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "NinePFuseTests", dependencies: ["CNinePShims", "NinePFuse", "NinePWire", "NinePClient", "NinePTransport", "NinePTestSupport"]),
        .testTarget(name: "NinePMetricsReaderTests", dependencies: ["NinePMetricsReader"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["ninepd", "ninep", "ninep-load", "NinePWire", "CNinePShims", "NinePTestSupport", "NinePMetricsReader"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
