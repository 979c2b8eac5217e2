import Testing

@testable import CCacheDaemon

@Suite("re-exec arguments")
struct ReexecutionTests {
    @Test("--inherit's value reads back what was written, and anything malformed is refused")
    func inheritRoundTrip() throws {
        let handed = InheritedDescriptors(
            listener: 3, handoff: 4, state: 5, clients: [6, 7], handoffConnections: [8])
        #expect(handed.text == "listen=3,handoff=4,state=5,clients=6:7,handoffs=8")
        #expect(try InheritedDescriptors.parse(handed.text).get() == handed)
        let activated = InheritedDescriptors(listener: 3, listenerOwnsPath: false, state: 4)
        #expect(activated.text == "activated=3,state=4")
        #expect(try InheritedDescriptors.parse(activated.text).get() == activated)
        for bad in [
            "", "state=4", "listen=3,listen=4", "listen=3,activated=4", "listen=3:4", "listen=-1", "listen=3,state=3",
            "listen=3,clients=4:4", "listen=3,what=4", "listen", "listen=3,clients=",
        ] {
            guard case .failure = InheritedDescriptors.parse(bad) else {
                Issue.record("'\(bad)' was accepted")
                continue
            }
        }
    }

    @Test(
        "the new binary gets the daemon's own command line without what described this start (--state-from-door too: the state file is inherited), and --inherit"
    )
    func commandLine() {
        let inherited = InheritedDescriptors(listener: 3, state: 5, clients: [6])
        let arguments = Reexecution.arguments(
            from: [
                "/usr/bin/ccached", "--socket", "/run/user/1000/ccached/kcm.sock", "--ready-fd", "3", "--state-fd=4",
                "--login-session", "7", "--inherit", "listen=9", "--state-from-door", "--idle-timeout", "60",
            ], inheriting: inherited)
        #expect(
            arguments == [
                "/usr/bin/ccached", "--socket", "/run/user/1000/ccached/kcm.sock", "--login-session", "7",
                "--idle-timeout", "60", "--inherit", "listen=3,state=5,clients=6",
            ])
    }
}
