import CCacheDaemon
import Logging
import Testing

/// The option parser `ccached` and `ccached-door` share: one wording for a value outside its choices.
@Suite("OptionReader")
struct OptionReaderTests {
    @Test("a choice option takes only its choices, in both spellings, and names them when refused")
    func choices() throws {
        var reader = OptionReader(["--log-target", "journal", "--log-target=syslog", "--log-target", "file"])
        #expect(try reader.next() == "--log-target")
        #expect(try reader.choice(for: "--log-target", among: ["auto", "stderr", "journal"]) == "journal")
        #expect(try reader.next() == "--log-target")
        #expect(try reader.choice(for: "--log-target", among: ["journal", "syslog"]) == "syslog")
        #expect(try reader.next() == "--log-target")
        #expect {
            _ = try reader.choice(for: "--log-target", among: ["auto", "stderr", "journal"])
        } throws: { error in
            (error as? UsageError)?.message == "--log-target is auto, stderr or journal, not 'file'"
        }
    }

    @Test("--log-level takes swift-log's level names and nothing else")
    func logLevels() throws {
        var reader = OptionReader(["--log-level", "debug", "--log-level", "loud"])
        #expect(try reader.next() == "--log-level")
        #expect(try reader.logLevel(for: "--log-level") == .debug)
        #expect(try reader.next() == "--log-level")
        #expect {
            _ = try reader.logLevel(for: "--log-level")
        } throws: { error in
            (error as? UsageError)?.message
                == "--log-level is trace, debug, info, notice, warning, error or critical, not 'loud'"
        }
    }

    @Test("read hands each option to its parser, stops at --help, and refuses a name the parser does not know")
    func readLoop() throws {
        func parse(_ arguments: [String]) throws(UsageError) -> [String]? {
            try OptionReader.read(arguments, into: []) { name, seen, reader throws(UsageError) -> Bool in
                guard name == "--a" else { return false }
                seen.append(try reader.value(for: name))
                return true
            }
        }
        #expect(try parse(["--a", "1", "--a=2"]) == ["1", "2"])
        #expect(try parse(["--a", "1", "--help", "--bogus"]) == nil)
        #expect {
            _ = try parse(["--a", "1", "--bogus"])
        } throws: { error in
            (error as? UsageError)?.message == "unknown argument '--bogus'"
        }
    }
}
