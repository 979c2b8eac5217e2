// swift-tools-version: 6.1
// The benchmark (`make bench`, Docs/performance.md): a package of its own, as swift-nio keeps its
// Benchmarks/, so that the product ships no benchmark and `make release` and `make deb` never
// compile it. It depends on the root package by path and frames KCM only through its `KCM` library.
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "ccached-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Found through the name the root manifest declares, whatever its directory is called.
        .package(name: "ccached", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // `ccached-bench`: ccached beside Heimdal's kcm, sssd-kcm, FILE, KEYRING, MEMORY and a raw
        // socket round trip, through libkrb5; and the probes the scripts run (connect, cold start,
        // soak, door, latency).
        .executableTarget(
            name: "ccached-bench",
            dependencies: [
                .product(name: "KCM", package: "ccached"),
                .product(name: "SystemCalls", package: "ccached"),
                .product(name: "CSupport", package: "ccached"),
                .product(name: "CKrb5", package: "ccached"),
                .product(name: "CredentialStore", package: "ccached"),
                .product(name: "StoreState", package: "ccached"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        )
    ]
)
