import CCacheDaemon
import Logging
import TestSupport
import Testing

/// The journal entry ccached writes: standard fields and metadata as journal field names.
@Suite("JournalLogHandler")
struct JournalLogHandlerTests {
    @Test("fields: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_*, metadata upper-cased")
    func fields() {
        let fields = JournalLogHandler.fields(
            message: "connection opened", level: .warning, identifier: "ccached",
            metadata: ["peer_pid": "42", "peer-uid": "1000", "_trusted": "x", "9lives": "y"], file: "Daemon.swift",
            function: "serve", line: 7)
        #expect(
            fields == [
                "MESSAGE=connection opened", "PRIORITY=4", "SYSLOG_IDENTIFIER=ccached", "CODE_FILE=Daemon.swift",
                "CODE_LINE=7", "CODE_FUNC=serve", "LIVES=y", "TRUSTED=x", "PEER_UID=1000", "PEER_PID=42",
            ])
    }

    @Test(
        "syslog priorities",
        arguments: [
            (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ])
    func priorities(level: Logger.Level, expected: Int) {
        #expect(
            JournalLogHandler.fields(
                message: "", level: level, identifier: "x", metadata: [:], file: "", function: "", line: 0)[1]
                == "PRIORITY=\(expected)")
    }
}
