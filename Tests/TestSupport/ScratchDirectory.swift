import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Private temporary directories for tests: made with `mkdtemp` (so 0700 and never shared with
/// another test or user), removed with everything in them.
package enum ScratchDirectory {
    /// Makes `<temporary directory>/<prefix>-XXXXXX` with mode `mode` (0700 unless told).
    package static func make(_ prefix: String, mode: mode_t = 0o700) throws -> URL {
        var template = Array(
            FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-XXXXXX").path.utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard made != nil else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let url = URL(fileURLWithPath: String(cString: template))
        // mkdtemp makes 0700; only a wider mode (e.g. 0711 for a daemon of another uid) needs a chmod.
        if mode != 0o700 { chmod(url.path, mode) }
        return url
    }

    /// Removes a directory `make` returned, and everything below it; a missing one is fine.
    package static func remove(_ url: URL) {
        try? FileManager.default.removeItem(at: url)
    }
}
