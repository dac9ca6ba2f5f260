// swift-tools-version: 6.1
import PackageDescription

// Layers (see DESIGN.md): NinePWire -> NinePMemory -> NinePTransport -> NinePServer -> ninepd.
// A lower layer never imports a higher one; CNinePShims holds what Swift cannot call directly.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "swift-ninep",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ninepd", targets: ["ninepd"]),
        .library(name: "NinePWire", targets: ["NinePWire"]),
        .library(name: "NinePServer", targets: ["NinePServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CNinePShims"),
        .target(name: "NinePWire", swiftSettings: strict),
        .target(name: "NinePMemory", dependencies: ["CNinePShims"], swiftSettings: strict),
        .target(name: "NinePTransport", dependencies: ["CNinePShims", "NinePMemory"], swiftSettings: strict),
        .target(
            name: "NinePServer",
            dependencies: [
                "CNinePShims", "NinePWire", "NinePMemory", "NinePTransport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ninepd",
            dependencies: [
                "NinePServer", "NinePTransport", "CNinePShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "NinePWireTests", dependencies: ["NinePWire"]),
        .testTarget(
            name: "NinePServerTests",
            dependencies: [
                "NinePWire", "NinePServer", "NinePTransport", "CNinePShims",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "IntegrationTests", dependencies: ["ninepd", "NinePWire", "CNinePShims"]),
    ],
    swiftLanguageModes: [.v6]
)
