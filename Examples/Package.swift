// swift-tools-version: 6.1
import Foundation
import PackageDescription

// Two small programs that use swift-ninep as a library, the way your own program would:
//   swift run serve-directory DIR [tcp:127.0.0.1:5640]   a 9P server inside your process
//   swift run read-file tcp:127.0.0.1:5640 PATH          print a remote file with NinePClient
// scripts/test builds both and runs one against the other.
// SwiftPM names a package found by path after its folder: the checkout's, whatever it is called.
let ninep = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "swift-ninep-examples",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "serve-directory",
            dependencies: [
                .product(name: "NinePServer", package: ninep),
                .product(name: "NinePTransport", package: ninep),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "read-file",
            dependencies: [.product(name: "NinePClient", package: ninep)]
        ),
    ],
    swiftLanguageModes: [.v6]
)
