import ArgumentParser
import Foundation
import FunnelBase
import FunnelCollector
import FunnelPipeline

extension KeyScope: ExpressibleByArgument {}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Collect events over HTTP into a durable store and answer with reports (docs/collector.md).")

    @Option(name: .long, help: "funnel.yaml with counting rules and A/B settings, for GET /v1/report.")
    var config: String?

    @Option(name: .long, help: "Where events are kept: sqlite:PATH (created when missing) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (tables created when missing; the password may come from PGPASSWORD).")
    var store: String?

    @Option(name: .long, help: "Address to listen on (put TLS in front with a reverse proxy: docs/collector.md).")
    var host: String = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port, printed).")
    var port: Int = 8080

    @Option(name: .long, help: "Keys file written by `funnel keys create` (only the keys' SHA-256 digests).")
    var keys: String?

    @Option(name: .long, help: "Largest request body in bytes, as sent and once inflated (413 past it).")
    var maxBodyBytes: Int = defaultMaxBodyBytes

    @Option(name: .long, help: "Requests a second per key (429 with Retry-After past it, after a burst of twice as many).")
    var rateLimit: Double = 50

    @Option(name: .long, help: "Seconds a connection may send nothing before it is closed (slow or stalled clients).")
    var idleTimeout: Double = 30

    @Flag(name: .long, help: "Start on a temporary SQLite store with a new admin key, printed, to try it out.")
    var demo = false

    @OptionGroup var scale: ScaleOptions

    func validate() throws {
        if !demo && store == nil { throw ValidationError("--store is required (sqlite:PATH or postgres://USER@HOST:PORT/DATABASE), or pass --demo to try it on a temporary store") }
        if !demo && keys == nil { throw ValidationError("--keys is required: create a key with `funnel keys create --keys keys.yaml --scope admin`") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
        guard maxBodyBytes > 0, rateLimit > 0, idleTimeout > 0 else { throw ValidationError("--max-body-bytes, --rate-limit and --idle-timeout must be positive") }
    }

    func run() async throws {
        var ring = KeyRing()
        var location: StoreLocation
        if demo {
            let folder = NSTemporaryDirectory() + "funnel-demo-\(getpid())"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            location = .sqlite(path: folder + "/events.db")
            if let store { location = try StoreLocation(parsing: store) }
            let key = ring.create(scope: .admin)
            FileHandle.standardOutput.write(Data("demo store: \(folder)/events.db\n".utf8))
            FileHandle.standardOutput.write(Data("demo admin key (shown once): \(key)\n".utf8))
        } else {
            location = try StoreLocation(parsing: store!)
            ring = try KeyRing.load(keys!)
            if ring.keys.isEmpty { throw CLIError("--keys \(keys!): no keys; create one with `funnel keys create --keys \(keys!) --scope ingest`") }
        }
        var settings = CollectorSettings()
        settings.host = host
        settings.port = port
        settings.maxBodyBytes = maxBodyBytes
        settings.rateLimit = rateLimit
        settings.rateBurst = rateLimit * 2
        settings.idleTimeoutSeconds = idleTimeout
        settings.configPath = config
        settings.plan = scale.plan
        let collector = Collector(store: try location.open(), keys: ring, settings: settings)
        let shownHost = host
        try await runCollector(collector) { port in
            FileHandle.standardOutput.write(Data("funnel serve: listening on http://\(shownHost):\(port)\n".utf8))
        }
    }
}

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage the collector's API keys.", subcommands: [Create.self, List.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key: prints it once and stores only its SHA-256.")

        @Option(name: .long, help: "The keys file (created when missing).")
        var keys: String

        @Option(name: .long, help: "What the key may do: ingest (POST /v1/events), report (GET /v1/report) or admin (both).")
        var scope: KeyScope

        func run() throws {
            var ring = try KeyRing.load(keys)
            let key = ring.create(scope: scope)
            try ring.save(keys)
            print(key)
            FileHandle.standardError.write(Data("key \(ring.keys.last!.id) (scope \(scope.rawValue)) added to \(keys); it is shown once: keep it now\n".utf8))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys' ids, scopes and creation times (never the keys).")

        @Option(name: .long, help: "The keys file.")
        var keys: String

        func run() throws {
            for key in try KeyRing.load(keys).keys { print("\(key.id)\t\(key.scope.rawValue)\t\(key.created)") }
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a collector store's events as JSON Lines, in user order.")

    @Option(name: .long, help: "The store: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE.")
    var store: String

    @Option(name: .long, help: "The JSON Lines file to write (replaced atomically).")
    var out: String

    @Option(name: .long, help: "Also write the quarantined events here (received_at, reason, field, message, raw).")
    var quarantine: String?

    func run() throws {
        let opened = try StoreLocation(parsing: store).open()
        try exportEvents(opened, to: out)
        if let quarantine {
            var text = ""
            try opened.forEachQuarantined { at, reason, field, message, raw in
                let row: JSONValue = .object([("received_at", .int(Int(at))), ("reason", .string(reason)), ("field", field.map { .string($0) } ?? .null),
                                              ("message", .string(message)), ("raw", .string(String(decoding: raw, as: UTF8.self)))])
                text += row.serialized() + "\n"
            }
            guard FileManager.default.createFile(atPath: quarantine, contents: Data(text.utf8)) else {
                throw CLIError("--quarantine \(quarantine): cannot write the file")
            }
        }
        let counts = try opened.counts()
        FileHandle.standardError.write(Data("exported \(counts.events) events to \(out) (\(counts.quarantined) quarantined in the store)\n".utf8))
    }
}
