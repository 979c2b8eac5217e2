/// The base of a suite whose every test runs against its own fresh ``KerberosTestbed``: Swift Testing
/// makes one instance of a suite per test, so `init` is each test's setup and `deinit` its teardown.
/// A test that needs the daemon started differently stops it and starts it again
/// (`bed.stopDaemon()`, then `bed.startDaemon(extraArguments:)`).
open class TestbedSuite {
    package let bed: KerberosTestbed

    /// The KDC's host principals (``KerberosTestbed/init(services:)``); a suite that needs another
    /// number overrides it.
    open class var services: Int { 3 }

    package init() throws {
        bed = try KerberosTestbed(services: Self.services)
    }

    deinit { bed.stop() }
}
