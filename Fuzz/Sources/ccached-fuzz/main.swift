import CLibFuzzer

#if canImport(Glibc)
    import Glibc
#endif

// SwiftPM links an executable's `main` to this module's own entry point (so that tests can link
// executables), which would leave libFuzzer's `main` unused and a `-parse-as-library` module without
// any. So the module keeps its `main` and hands over to libFuzzer's driver, as libFuzzer's `main` does.

/// libFuzzer's callback: plays one input through two `ConnectionSession`s sharing a fresh `DaemonState`
/// (see ``FuzzSession``). Never returns non-zero; a broken invariant traps, which libFuzzer reports as a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzSession.run(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

var arguments = CommandLine.argc
var argumentVector: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&arguments, &argumentVector) { fuzzOneInput($0, $1) })
