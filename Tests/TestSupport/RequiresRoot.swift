import Testing

#if canImport(Glibc)
    import Glibc
#endif

extension Trait where Self == ConditionTrait {
    /// Runs the test only as root (CI runs the tests as root). Elsewhere it skips loudly: `swift
    /// test` reports it as skipped, with `reason` and "CI runs as root", rather than passing in
    /// silence. The one gate for root-only tests; `reason` says what needs root.
    package static func requiresRoot(
        _ reason: String, sourceLocation: SourceLocation = #_sourceLocation
    ) -> Self {
        .enabled(if: getuid() == 0, Comment(rawValue: reason + "; CI runs as root"), sourceLocation: sourceLocation)
    }
}
