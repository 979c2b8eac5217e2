import ArgumentParser
import CCacheClient
import KCM
import Krb5Caches

extension CCacheCtl {
    struct Switch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "switch",
            abstract: "Make a cache the default one (like kswitch).",
            discussion: "CACHE is a cache name (KCM:1000:1 or 1000:1) or a principal (alice or alice@REALM).")

        @Argument(help: "The cache or principal.")
        var cache: String

        func run() throws {
            let context = try openContext()
            try reporting {
                let name = try resolveCache(cache, in: context)
                try context.setDefaultCache(name)
                print("default cache is now KCM:\(name)")
            }
        }
    }

    struct Destroy: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "destroy",
            abstract: "Destroy a cache (the default one if none is named), or every cache with --all.")

        @Argument(help: "The cache or principal (default: the default cache).")
        var cache: String?

        @Flag(name: .long, help: "Destroy every cache of this session.")
        var all = false

        func validate() throws {
            if all && cache != nil { throw ValidationError("give either a cache or --all, not both") }
        }

        func run() throws {
            let context = try openContext(autoStart: false)
            try reporting {
                if all {
                    let names = try context.cacheNames()
                    for name in names { try? context.cache(named: name).destroy() }
                    print("destroyed \(names.count) cache\(names.count == 1 ? "" : "s")")
                    return
                }
                let name = try cache.map { try resolveCache($0, in: context) } ?? context.defaultCacheName()
                try context.cache(named: name).destroy()
                print("destroyed KCM:\(name)")
            }
        }
    }

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Copy the tickets of another cache (FILE:, DIR:, KEYRING:, MEMORY:) into this session.",
            discussion: """
                The tickets go into the cache of the same principal if there is one, else into the default \
                cache if it is empty, else into a new cache; that cache becomes the default. With \
                --remove-source the source cache is destroyed once the copy is stored.
                """)

        @Argument(help: "The source cache, e.g. FILE:/tmp/krb5cc_1000.")
        var source: String

        @Option(name: .long, help: "Store into this KCM cache instead.")
        var cache: String?

        @Flag(name: .long, help: "Destroy the source cache after a successful import.")
        var removeSource = false

        func validate() throws {
            if source.hasPrefix("KCM:") { throw ValidationError("the source is already a KCM cache") }
        }

        func run() throws {
            let context = try openContext()
            try reporting {
                let library = try Krb5Library()
                let (principal, credentials) = try library.read(cache: source)
                let target = try cache.map(cacheName) ?? chooseTarget(for: principal, in: context)
                try context.cache(named: target).replace(principal: principal, credentials: credentials)
                try context.setDefaultCache(target)
                if removeSource { try library.destroy(cache: source) }
                print(
                    "imported \(credentials.count) credential\(credentials.count == 1 ? "" : "s") for \(principal) "
                        + "into KCM:\(target)\(removeSource ? " and removed \(source)" : "")")
            }
        }

        func chooseTarget(for principal: KCMPrincipal, in context: CCacheContext) throws -> KCMCacheName {
            for name in try context.cacheNames() where try context.cache(named: name).principal() == principal {
                return name
            }
            let primary = try context.defaultCacheName()
            if try !context.cache(named: primary).exists() { return primary }
            return try context.newUniqueName()
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Copy a cache's tickets out to another cache type (FILE:, DIR:, KEYRING:, MEMORY:).",
            discussion: "The target is replaced. Mind where it lives: a FILE: cache puts tickets on disk.")

        @Argument(help: "The KCM cache or principal to export ('default' for the default cache).")
        var cache: String

        @Argument(help: "The target cache, e.g. FILE:/tmp/krb5cc_export.")
        var target: String

        func run() throws {
            let context = try openContext(autoStart: false)
            try reporting {
                let name = try cache == "default" ? context.defaultCacheName() : resolveCache(cache, in: context)
                let handle = context.cache(named: name)
                let principal = try handle.principal()
                let credentials = try handle.credentials()
                try Krb5Library().write(cache: target, principal: principal, credentials: credentials)
                print(
                    "exported \(credentials.count) credential\(credentials.count == 1 ? "" : "s") from KCM:\(name) to \(target)"
                )
            }
        }
    }
}
