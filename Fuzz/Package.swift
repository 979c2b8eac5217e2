// swift-tools-version: 6.1
// The libFuzzer target for the daemon's input path (`make fuzz`). A package of its own so that the
// root package's `swift build` and `swift test` never see the sanitizer flags: the Makefile builds it
// with `-sanitize=fuzzer,address`, which instruments this package and the root's libraries alike.
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "ccached-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Found through the name the root manifest declares, whatever its directory is called.
        .package(name: "ccached", path: ".."),
        // The same swift-log the daemon uses: ConnectionSession takes a Logger.
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // libFuzzer's entry point into its driver (`LLVMFuzzerRunDriver`); the library itself comes
        // with `-sanitize=fuzzer`.
        .systemLibrary(name: "CLibFuzzer", path: "Sources/CLibFuzzer"),
        .executableTarget(
            name: "ccached-fuzz",
            dependencies: [
                "CLibFuzzer",
                .product(name: "KCM", package: "ccached"),
                .product(name: "CredentialStore", package: "ccached"),
                .product(name: "CCacheDaemon", package: "ccached"),
                .product(name: "StoreState", package: "ccached"),
                .product(name: "SystemCalls", package: "ccached"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)
