// swift-tools-version: 6.1
import PackageDescription

let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")

let package = Package(
    name: "ccached",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ccached", targets: ["ccached"]),
        .executable(name: "ccachectl", targets: ["ccachectl"]),
        .executable(name: "ccached-door", targets: ["ccached-door"]),
        .library(name: "KCM", targets: ["KCM"]),
        .library(name: "CredentialStore", targets: ["CredentialStore"]),
        .library(name: "CCacheDaemon", targets: ["CCacheDaemon"]),
        .library(name: "CCacheClient", targets: ["CCacheClient"]),
        .library(name: "TicketRenewal", targets: ["TicketRenewal"]),
        .library(name: "StoreState", targets: ["StoreState"]),
        // For the benchmark (Benchmarks/, a package of its own): the system-call layer, the C socket
        // and thread calls, and MIT's client library, shared rather than copied.
        .library(name: "SystemCalls", targets: ["SystemCalls"]),
        .library(name: "CSupport", targets: ["CSupport"]),
        .library(name: "CKrb5", targets: ["CKrb5"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // The KCM wire protocol: framing, opcodes, status codes, v4 encodings. Pure values, no I/O.
        .target(name: "KCM", dependencies: ["SecureMemory"]),
        // Secret bytes: locked in RAM, out of core dumps, zeroed when freed.
        .target(name: "SecureMemory", dependencies: ["CSecretMemory"]),
        // memfd_secret(2), which glibc does not wrap and Swift cannot reach through syscall(2).
        .target(name: "CSecretMemory"),
        // The in-memory model of caches and credentials. No I/O.
        .target(name: "CredentialStore", dependencies: ["KCM", "SecureMemory"]),
        // The store's state file: an anonymous memory file holding the store's checksummed journal,
        // so that a daemon started after a crash restores it (Docs/state.md).
        .target(
            name: "StoreState", dependencies: ["CStateFile", "CredentialStore", "KCM", "SecureMemory", "SystemCalls"]),
        // memfd_create, mlock2(MLOCK_ONFAULT), hole punching and CRC32C, which Swift cannot reach.
        .target(name: "CStateFile"),
        // The system-call layer every module uses: Errno, the one EINTR loop, peer credentials, the
        // linked listener, socket activation, the monotonic clock, threads and the condition lock.
        .target(name: "SystemCalls", dependencies: ["CSupport"]),
        // The few socket calls Swift cannot reach without _GNU_SOURCE (SO_PEERCRED, accept4).
        .target(name: "CSupport", cSettings: [.define("_GNU_SOURCE")]),
        // A constructor that makes the process non-dumpable (and its core limit 0) before main: linked
        // only into ccached and ccachectl, never into tests or the benchmark (issue 12, items 5 and 7).
        .target(name: "CEarlyHardening"),
        // The server: listening, peer authorisation, connections, dispatch.
        .target(
            name: "CCacheDaemon",
            dependencies: [
                "KCM", "CredentialStore", "SecureMemory", "SessionRuntime", "SystemCalls", "CSupport", "TicketRenewal",
                "StoreState", logging,
            ]
        ),
        .executableTarget(
            name: "ccached",
            dependencies: ["CCacheDaemon", "CredentialStore", "CEarlyHardening", "TicketRenewal", logging]),
        // The front door's routing: peer identity without pid races, session daemon start with a
        // privilege drop, SCM_RIGHTS hand-off. Root code that parses nothing a client sends.
        .target(
            name: "CCacheDoor", dependencies: ["SessionRuntime", "SystemCalls", "CSupport", "CStateFile", logging]),
        // `ccached-door`: the root listener on /run/.heim_org.h5l.kcm-socket (argument parsing, wiring).
        .executableTarget(
            name: "ccached-door",
            dependencies: ["CCacheDoor", "CCacheDaemon", "CSystemd", "SystemCalls", "CEarlyHardening", logging]),
        // libsystemd, linked only into ccached-door: the daemon and the libraries reach it through
        // CSupport's wrappers, which load it on first real use (cold start, Docs/performance.md).
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd"),
        // Where a session's daemon lives: session identity, runtime directory, socket, krb5.conf fragment.
        .target(name: "SessionRuntime", dependencies: ["CSupport", "SystemCalls"]),
        // The thin client (CCAPI-style): find, start, re-find and authenticate this session's daemon.
        .target(name: "CCacheClient", dependencies: ["KCM", "SessionRuntime", "SystemCalls", "CSupport"]),
        .executableTarget(
            name: "ccachectl",
            dependencies: [
                "CCacheClient", "SessionRuntime", "KCM", "Krb5Caches", "CEarlyHardening",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Ticket renewal: when a credential is due (pure policy), renewing it through libkrb5, and the
        // worker that does both off the request path. Never touches the store itself.
        .target(
            name: "TicketRenewal",
            dependencies: ["KCM", "SecureMemory", "CKrb5Loader", "CredentialStore", "SystemCalls"]),
        // The libkrb5 calls renewal makes, with libkrb5.so.3 loaded by the first of them rather than
        // linked: the daemon starts without mapping libkrb5 and its five libraries (cold start).
        .target(name: "CKrb5Loader"),
        // MIT krb5's client library, for tools that read and write any ccache type and for the benchmark.
        .systemLibrary(name: "CKrb5", path: "Sources/CKrb5"),
        // Any ccache type read and written through libkrb5 (`ccachectl import`/`export`, the renewal tests).
        .target(name: "Krb5Caches", dependencies: ["CKrb5", "KCM", "SecureMemory"]),
        // What the test targets share: the binary locator, scratch directories, spawned processes and
        // commands, the KDC testbed, raw KCM connections, fixtures, one generator, one mutex box, the
        // requiresRoot trait. Built only for tests; it imports Swift Testing for that trait alone.
        .target(
            name: "TestSupport", dependencies: ["KCM", "CSupport"], path: "Tests/TestSupport", exclude: ["README.md"]),
        .testTarget(name: "KCMTests", dependencies: ["KCM", "SecureMemory", "TestSupport"]),
        .testTarget(name: "SecureMemoryTests", dependencies: ["SecureMemory"]),
        .testTarget(name: "SystemCallsTests", dependencies: ["SystemCalls", "TestSupport"]),
        .testTarget(name: "CredentialStoreTests", dependencies: ["CredentialStore", "KCM", "TestSupport"]),
        .testTarget(
            name: "CCacheDaemonTests",
            dependencies: [
                "CCacheDaemon", "CredentialStore", "KCM", "CSupport", "SecureMemory", "SystemCalls", "TestSupport",
                "TicketRenewal", "SessionRuntime", logging,
            ]
        ),
        .testTarget(
            name: "StoreStateTests",
            dependencies: ["StoreState", "CStateFile", "CCacheDaemon", "CredentialStore", "KCM", "TestSupport"]),
        .testTarget(
            name: "CCacheClientTests",
            dependencies: ["CCacheClient", "SessionRuntime", "KCM", "CSupport", "TestSupport"]),
        .testTarget(
            name: "TicketRenewalTests",
            dependencies: ["TicketRenewal", "CredentialStore", "KCM", "SecureMemory", "Krb5Caches", "TestSupport"]),
        .testTarget(
            name: "CCacheDoorTests",
            dependencies: [
                "CCacheDoor", "CCacheDaemon", "SessionRuntime", "CSupport", "SystemCalls", "CStateFile", logging,
            ]),
        .testTarget(
            name: "EndToEndTests", dependencies: ["KCM", "CSupport", "CStateFile", "CSecretMemory", "TestSupport"]),
    ]
)

// Every Swift target is built with the same upcoming features (the C targets have no Swift to apply
// them to).
for target in package.targets where target.type != .system {
    target.swiftSettings = [.enableUpcomingFeature("MemberImportVisibility"), .enableUpcomingFeature("ExistentialAny")]
}
