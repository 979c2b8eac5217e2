import CredentialStore
import KCM

/// Applies one decoded request to the store and returns its reply: the one exhaustive `switch`
/// over the opcodes. Pure: no I/O, no clock, no locking (the caller holds the store's lock), so it
/// is tested and fuzzed in-process.
public enum RequestDispatcher {
    /// Applies `request`. `status` builds the CCACHED_STATUS payload from the store, `renewalState`
    /// the CCACHED_RENEWAL_STATE one.
    ///
    /// CCACHED_WATCH is answered as of now (the changes, a resync, or none yet: the timeout reply);
    /// waiting for a change is ``ConnectionSession``'s, outside the lock. CCACHED_RENEW needs the
    /// renewal worker and is answered there too; here it only checks that the cache exists.
    public static func perform(
        _ request: KCMRequest, store: CredentialStore, status: (CredentialStore) -> KCMDaemonStatus,
        renewalState: (CredentialStore) -> KCMRenewalState
    ) throws(RequestFailure) -> KCMReply {
        if case .unsupported(let opcode) = request { throw .unsupportedOpcode(opcode) }
        do {
            switch request {
            case .watch(let watch):
                return .watch(store.journal.watchReply(for: watch) ?? store.journal.timeoutReply(for: watch))
            case .renewalState:
                return .renewalState(renewalState(store))
            case .renew(let renew):
                if let name = renew.cacheName { _ = try store.cache(named: name) }
                return .renew(KCMRenew.Reply(results: []))
            default:
                break
            }
            return try apply(request, store: store, status: status)
        } catch {
            throw .store(error)
        }
    }

    private static func apply(
        _ request: KCMRequest, store: CredentialStore, status: (CredentialStore) -> KCMDaemonStatus
    ) throws(CredentialStoreError) -> KCMReply {
        switch request {
        case .noop:
            return .empty
        case .genNew:
            return .name(store.generateName())
        case .initialize(let name, let principal):
            try store.initialize(name, principal: principal)
        case .destroy(let name):
            try store.destroy(name)
        case .store(let name, let credential):
            try store.store(credential, in: name)
        case .retrieve(let name, let flags, let template):
            let matcher = CredentialMatcher(flags: flags, template: template)
            return .credential(try store.retrieve(from: name, matching: matcher))
        case .getPrincipal(let name):
            return .principal(try store.cache(named: name).principal)
        case .getCredUUIDList(let name):
            return .uuids(try store.cache(named: name).credentials.uuids)
        case .getCredByUUID(let name, let uuid):
            return .credential(try store.credential(in: name, uuid: uuid))
        case .removeCred(let name, let flags, let template):
            try store.removeCredentials(from: name, matching: CredentialMatcher(flags: flags, template: template))
        case .setFlags(let name, _):
            _ = try store.cache(named: name)
        case .moveCache(let from, let to):
            try store.move(from: from, to: to)
        case .getCacheUUIDList:
            return .uuids(store.cacheUUIDs)
        case .getCacheByUUID(let uuid):
            return .name(try store.cacheName(uuid: uuid))
        case .getDefaultCache:
            return .name(store.defaultName)
        case .setDefaultCache(let name):
            try store.setDefault(name)
        case .getKDCOffset(let name):
            return .kdcOffset(try store.cache(named: name).kdcOffset)
        case .setKDCOffset(let name, let offset):
            try store.cache(named: name).kdcOffset = offset
        case .getCredList(let name):
            // The stored values themselves: the reply refers to their secure bytes.
            let list = try store.cache(named: name).credentials
            var credentials: [KCMCredential] = []
            credentials.reserveCapacity(list.count)
            list.forEach { credentials.append($0.credential) }
            return .credentialList(credentials)
        case .replace(let name, let kdcOffset, let principal, let credentials):
            try store.replace(name, principal: principal, kdcOffset: kdcOffset, credentials: credentials)
        case .daemonStatus:
            return .daemonStatus(status(store))
        case .stop:
            // The session asks the daemon to stop once this reply is sent.
            return .stopping(pid: status(store).pid)
        case .unsupported, .watch, .renew, .renewalState:
            // Refused or answered by perform before it gets here.
            return .empty
        }
        return .empty
    }
}
