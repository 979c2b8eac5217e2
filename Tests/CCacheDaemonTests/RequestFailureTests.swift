import CCacheDaemon
import CredentialStore
import KCM
import TestSupport
import Testing

/// One mapping from every failure to the krb5 status clients expect, and the log level it gets.
@Suite("RequestFailure")
struct RequestFailureTests {
    static let table: [(failure: RequestFailure, status: KCMStatus, routine: Bool, mentions: String)] = [
        (.unauthorized(uid: 4242), .fccPerm, true, "4242"),
        (.malformed(.truncated(offset: 3, needed: 1)), .ccIO, false, "truncated"),
        (.oversized(length: 99, limit: 10), .ccNoMem, false, "--max-request-bytes"),
        (.unsupportedOpcode(13), .fccInternal, true, "13"),
        (.replyTooLargeForMIT(length: 11 << 20), .ccNoSupp, true, "by UUID"),
        (.retrieveFromSkewedCache(kdcOffset: -3600), .ccNoSupp, true, "-3600 s"),
        (.store(.noSuchCache("1000:x")), .fccNoFile, true, "1000:x"),
        (.store(.noMatchingCredential), .ccNotFound, true, "no matching credential"),
        (.store(.unknownUUID(KCMUUID(high: 1, low: 2))), .ccEnd, true, "UUID"),
        (.store(.invalidName(length: 4097)), .ccBadName, false, "4097"),
        (.store(.limitReached(.caches, limit: 2)), .ccNoMem, false, "limit of 2 caches is reached (--max-caches)"),
        (
            .store(.limitReached(.credentialsPerCache, limit: 3)), .ccNoMem, false,
            "3 credentials per cache is reached (--max-credentials-per-cache)"
        ),
        (.store(.limitReached(.credentialBytes, limit: 7)), .ccNoMem, false, "(--max-credential-bytes)"),
    ]

    @Test("each failure has its krb5 status, its log level, and a description naming what failed", arguments: table)
    func mapping(failure: RequestFailure, status: KCMStatus, routine: Bool, mentions: String) {
        #expect(failure.status == status)
        #expect(failure.isRoutine == routine)
        #expect(failure.description.contains(mentions), "\(failure.description)")
    }

    @Test("every store limit names the option that sets it")
    func options() {
        #expect(
            CredentialStoreLimit.allCases.map(RequestFailure.option(for:)) == [
                "--max-caches", "--max-credentials-per-cache", "--max-credential-bytes",
            ])
    }
}
