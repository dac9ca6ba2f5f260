// swift-tools-version: 6.1
import PackageDescription

// Micro-benchmarks with ordo-one/benchmark (time and malloc counts), kept out of the root
// package so that `swift test` there never builds the benchmark tooling.
// Run them with scripts/bench-micro (it writes Benchmarks/results/micro.md).
let benchmark: Target.Dependency = .product(name: "Benchmark", package: "benchmark")
let plugins: [Target.PluginUsage] = [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
// SwiftPM names a path dependency after its folder (the clone's name, not "swift-ninep").
let root = #filePath.split(separator: "/").dropLast(2).last.map(String.init) ?? "swift-ninep"
func ninep(_ product: String) -> Target.Dependency { .product(name: product, package: root) }

let package = Package(
    name: "swift-ninep-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // MallocInterposer only: the default RuntimeInterposer trait needs a package not mirrored here.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "WireCodec",
            dependencies: [benchmark, ninep("NinePWire")],
            path: "Benchmarks/WireCodec",
            plugins: plugins
        ),
        .executableTarget(
            name: "MemoryPools",
            dependencies: [
                benchmark,
                ninep("NinePMemory"),
                ninep("NinePTransport"),
            ],
            path: "Benchmarks/MemoryPools",
            plugins: plugins
        ),
        .executableTarget(
            name: "ServerRoundTrip",
            dependencies: [
                benchmark,
                ninep("NinePWire"),
                ninep("NinePServer"),
                ninep("NinePTransport"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ServerRoundTrip",
            plugins: plugins
        ),
    ],
    swiftLanguageModes: [.v6]
)
