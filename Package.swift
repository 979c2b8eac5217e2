// swift-tools-version: 6.1
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "ccached",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ccached", targets: ["ccached"]),
        .executable(name: "ccachectl", targets: ["ccachectl"]),
        .executable(name: "ccached-bench", targets: ["ccached-bench"]),
        .library(name: "KCM", targets: ["KCM"]),
        .library(name: "CredentialStore", targets: ["CredentialStore"]),
        .library(name: "CCacheDaemon", targets: ["CCacheDaemon"]),
        .library(name: "CCacheClient", targets: ["CCacheClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // The KCM wire protocol: framing, opcodes, status codes, v4 encodings. Pure values, no I/O.
        .target(name: "KCM", dependencies: ["SecureMemory"], swiftSettings: strictSwift),
        // Secret bytes: locked in RAM, out of core dumps, zeroed when freed.
        .target(name: "SecureMemory", swiftSettings: strictSwift),
        // The in-memory model of caches and credentials. No I/O.
        .target(name: "CredentialStore", dependencies: ["KCM", "SecureMemory"], swiftSettings: strictSwift),
        // The few socket calls Swift cannot reach without _GNU_SOURCE (SO_PEERCRED, accept4).
        .target(name: "CSupport", cSettings: [.define("_GNU_SOURCE")]),
        // A constructor that makes the process non-dumpable (and its core limit 0) before main: linked
        // only into ccached and ccachectl, never into tests or the benchmark (issue 12, items 5 and 7).
        .target(name: "CEarlyHardening"),
        // The server: listening, peer authorisation, connections, dispatch.
        .target(
            name: "CCacheDaemon",
            dependencies: [
                "KCM", "CredentialStore", "SecureMemory", "CSupport", "CSystemd", "SessionRuntime",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "ccached",
            dependencies: [
                "CCacheDaemon", "CredentialStore", "CEarlyHardening",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        // libsystemd: login sessions (sd_pid_get_session).
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd"),
        // Where a session's daemon lives: session identity, runtime directory, socket, krb5.conf fragment.
        .target(name: "SessionRuntime", dependencies: ["CSystemd"], swiftSettings: strictSwift),
        // The thin client (CCAPI-style): find, start, re-find and authenticate this session's daemon.
        .target(
            name: "CCacheClient", dependencies: ["KCM", "SessionRuntime", "CSupport"], swiftSettings: strictSwift),
        .executableTarget(
            name: "ccachectl",
            dependencies: [
                "CCacheClient", "SessionRuntime", "KCM", "SecureMemory", "CKrb5", "CEarlyHardening",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        // MIT krb5's client library, for tools that read and write any ccache type and for the benchmark.
        .systemLibrary(name: "CKrb5", path: "Sources/CKrb5"),
        // `make bench`: ccached against FILE, KEYRING, MEMORY and a raw socket round trip, through libkrb5.
        .executableTarget(
            name: "ccached-bench",
            dependencies: [
                "CKrb5", "KCM", "CSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(name: "KCMTests", dependencies: ["KCM", "SecureMemory"], swiftSettings: strictSwift),
        .testTarget(name: "SecureMemoryTests", dependencies: ["SecureMemory"], swiftSettings: strictSwift),
        .testTarget(
            name: "CredentialStoreTests", dependencies: ["CredentialStore", "KCM"], swiftSettings: strictSwift),
        .testTarget(
            name: "CCacheDaemonTests",
            dependencies: ["CCacheDaemon", "CredentialStore", "KCM", "CSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "CCacheClientTests", dependencies: ["CCacheClient", "SessionRuntime", "KCM", "CSupport"],
            swiftSettings: strictSwift),
        .testTarget(name: "EndToEndTests", dependencies: ["KCM", "CSupport"], swiftSettings: strictSwift),
    ]
)
