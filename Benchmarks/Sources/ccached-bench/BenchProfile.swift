import ArgumentParser

/// How much work one run does. `quick` is what `make bench` runs (a minute or two); `full` adds
/// 10,000 credentials and more samples.
enum BenchProfile: String, ExpressibleByArgument, CaseIterable {
    case quick
    case full

    /// Credential counts per cache.
    var credentialCounts: [Int] { self == .quick ? [10, 100, 1000] : [10, 100, 1000, 10_000] }

    /// The largest N that still gets the profile's full sample counts. Scanning caches (FILE,
    /// KEYRING) cost milliseconds per lookup at 10,000, so larger N get fewer.
    private var largestFullySampledN: Int { self == .quick ? 100 : 1000 }

    /// Random retrievals per flag setting at `n` credentials.
    func retrievals(n: Int) -> Int { n <= largestFullySampledN ? (self == .quick ? 500 : 2000) : 200 }

    /// Timed full iterations at `n` credentials.
    func iterations(n: Int) -> Int { n <= largestFullySampledN ? (self == .quick ? 30 : 100) : 10 }

    /// Initialize operations timed per cache type and N.
    var initializations: Int { self == .quick ? 20 : 100 }

    /// Round trips of the raw socket floor.
    var echoRoundTrips: Int { self == .quick ? 5000 : 50_000 }

    /// How long each concurrency measurement runs, in milliseconds.
    var throughputMilliseconds: Int { self == .quick ? 1000 : 3000 }

    /// Cold starts timed (the median is reported); the daemons stay up together, so this is also
    /// how many run at once when their idle memory is read (the target is per daemon with 40).
    var coldStarts: Int { 40 }
}
