import Foundation
import FunnelBase
import FunnelEvents
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// Where a PostgreSQL store lives, from `--store postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
/// The password may come from `PGPASSWORD` instead of the address. Connections are plain TCP:
/// keep the server on loopback or a private network (docs/collector.md).
public struct PostgresAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    public init(parsing text: String) throws(StoreError) {
        guard let parts = URLComponents(string: text), parts.scheme == "postgres" || parts.scheme == "postgresql" else {
            throw StoreError("--store \(PostgresAddress.redacted(text)): write a PostgreSQL store as postgres://USER@HOST:PORT/DATABASE")
        }
        guard let host = parts.host, !host.isEmpty else {
            throw StoreError("--store \(PostgresAddress.redacted(text)): name the server's host, as in postgres://funnel@127.0.0.1:5432/funnel")
        }
        let database = String(parts.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw StoreError("--store \(PostgresAddress.redacted(text)): name the database after the host, as in postgres://funnel@127.0.0.1:5432/funnel")
        }
        for item in parts.queryItems ?? [] {
            switch (item.name, item.value ?? "") {
            case ("sslmode", "disable"), ("sslmode", "prefer"), ("sslmode", "allow"): break
            case ("sslmode", let mode):
                throw StoreError("--store: sslmode=\(mode) is not supported; Funnel connects to PostgreSQL without TLS, so keep it on loopback or a private network (docs/collector.md)")
            default:
                throw StoreError("--store: unknown option \(item.name) in the PostgreSQL address; only sslmode=disable is understood")
            }
        }
        self.host = host
        port = parts.port ?? 5432
        user = parts.user.flatMap { $0.removingPercentEncoding } ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        password = parts.password.flatMap { $0.removingPercentEncoding } ?? ProcessInfo.processInfo.environment["PGPASSWORD"]
        self.database = database
    }

    /// The address without its password, for messages and logs.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    static func redacted(_ text: String) -> String {
        guard var parts = URLComponents(string: text), parts.password != nil else { return text }
        parts.password = "…"
        return parts.string ?? "the PostgreSQL address"
    }

    var configuration: PostgresConnection.Configuration {
        var c = PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
        c.options.connectTimeout = .seconds(10)
        return c
    }
}

/// The store for teams that run PostgreSQL: the same tables as the SQLite store. A commit returns
/// once PostgreSQL has flushed its write-ahead log (`synchronous_commit = on`, set on the writing
/// connection whatever the server's default). Every query goes through one writing connection
/// (commits come from the group committer's single thread) or a connection of its own (reading the
/// events back through a cursor, a fetch at a time, so a report never holds the store).
///
/// Calls block on the driver's futures, so they must not run on one of its event-loop threads: the
/// collector calls them from its commit thread, the report's pipe thread and dispatch queues.
public final class PostgresStore: EventStore, @unchecked Sendable {
    public let address: PostgresAddress
    let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    let logger: Logger
    let lock = NSLock()
    /// The writing connection (guarded by `lock`), opened again after it drops.
    var writer: PostgresConnection?
    var nextID = 1

    public init(address: PostgresAddress) throws(StoreError) {
        self.address = address
        var logger = Logger(label: "funnel.store.postgres")
        logger.logLevel = .warning
        self.logger = logger
        do {
            try withWriter { c in
                for statement in [
                    """
                    CREATE TABLE IF NOT EXISTS events (
                        seq BIGSERIAL PRIMARY KEY,
                        user_id BYTEA NOT NULL,
                        event_id BYTEA NOT NULL,
                        ts BIGINT NOT NULL,
                        received_at BIGINT NOT NULL,
                        line BYTEA NOT NULL,
                        UNIQUE (user_id, event_id)
                    )
                    """,
                    "CREATE TABLE IF NOT EXISTS requests (idempotency_key TEXT PRIMARY KEY, answer BYTEA NOT NULL, received_at BIGINT NOT NULL)",
                    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
                    """
                    CREATE TABLE IF NOT EXISTS quarantine (
                        id BIGSERIAL PRIMARY KEY,
                        received_at BIGINT NOT NULL,
                        reason TEXT NOT NULL,
                        field TEXT,
                        message TEXT NOT NULL,
                        raw BYTEA NOT NULL
                    )
                    """,
                ] {
                    _ = try c.query(PostgresQuery(unsafeSQL: statement), logger: logger).wait()
                }
            }
        } catch {
            throw StoreError("cannot open the PostgreSQL store \(address.description): \(Self.explain(error)); check that the server runs, the database exists and the user may create tables in it")
        }
    }

    deinit {
        if let writer { Self.close(writer) }
    }

    /// Closes a connection without waiting, keeping it alive until it is closed (the driver wants
    /// every connection closed before it is released).
    static func close(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// A string PostgreSQL's `text` can hold: a message may quote a value from the request, and a
    /// NUL in it would fail the whole group's commit (every request in it answered 503, and the
    /// poisoned one again on each resend). NUL becomes U+FFFD; the raw line keeps the bytes.
    static func text(_ s: String) -> String {
        s.utf8.contains(0) ? s.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : s
    }

    /// A driver error as one line: PostgreSQL's own message when there is one.
    static func explain(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            return "\(e.code)"
        }
        return "\(error)"
    }

    /// Opens a connection (the caller closes it).
    func connect() throws -> PostgresConnection {
        lock.lock()
        let id = nextID
        nextID += 1
        lock.unlock()
        return try connect(id: id)
    }

    func connect(id: Int) throws -> PostgresConnection {
        try PostgresConnection.connect(on: group.next(), configuration: address.configuration, id: id, logger: logger).wait()
    }

    /// Runs `body` on the writing connection, opening it (again) when it is missing or dropped.
    func withWriter<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if writer == nil || writer!.isClosed {
            if let old = writer { Self.close(old) }
            writer = nil
            let id = nextID
            nextID += 1
            let c = try connect(id: id)
            _ = try c.query("SET synchronous_commit = on", logger: logger).wait()
            writer = c
        }
        return try body(writer!)
    }

    /// An event's key within one commit.
    struct Key: Hashable {
        var user: String
        var event: String
    }

    public func commit(_ batches: [IngestBatch], receivedAt: Int64) throws -> [CommitOutcome] {
        do {
            return try withWriter { c in
                _ = try c.query("BEGIN", logger: logger).wait()
                do {
                    let outcomes = try commit(batches, receivedAt: receivedAt, on: c)
                    _ = try c.query("COMMIT", logger: logger).wait()
                    return outcomes
                } catch {
                    _ = try? c.query("ROLLBACK", logger: logger).wait()
                    throw error
                }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot store events in \(address.description): \(Self.explain(error))")
        }
    }

    /// The statements of one commit, inside its transaction: replayed keys looked up, the new
    /// events inserted in one statement (each key once; PostgreSQL returns those it did not hold),
    /// then the quarantined lines, the requests' answers and the duplicate counter.
    func commit(_ batches: [IngestBatch], receivedAt: Int64, on c: PostgresConnection) throws -> [CommitOutcome] {
        let keys = batches.compactMap(\.idempotencyKey)
        var answered: [String: [UInt8]] = [:]
        if !keys.isEmpty {
            for row in try c.query("SELECT idempotency_key, answer FROM requests WHERE idempotency_key = ANY(\(keys))", logger: logger).wait().rows {
                let (key, answer) = try row.decode((String, ByteBuffer).self)
                answered[key] = Array(answer.readableBytesView)
            }
        }
        // A batch is a replay when its key was committed before or came earlier in this commit.
        var replayed = Set<Int>()
        var firstOf: [String: Int] = [:]
        for (b, batch) in batches.enumerated() {
            guard let key = batch.idempotencyKey else { continue }
            if answered[key] != nil || firstOf[key] != nil { replayed.insert(b) } else { firstOf[key] = b }
        }
        // Every event of the batches that are not replays, each key once (its first arrival).
        var users: [ByteBuffer] = [], ids: [ByteBuffer] = [], times: [Int64] = [], lines: [ByteBuffer] = []
        var seen = Set<Key>()
        for (b, batch) in batches.enumerated() where !replayed.contains(b) {
            for e in batch.events where seen.insert(Key(user: e.userID, event: e.eventID)).inserted {
                users.append(ByteBuffer(string: e.userID))
                ids.append(ByteBuffer(string: e.eventID))
                times.append(e.ts)
                lines.append(ByteBuffer(bytes: e.line))
            }
        }
        var stored = Set<Key>()
        if !users.isEmpty {
            let inserted = try c.query("""
                INSERT INTO events (user_id, event_id, ts, received_at, line)
                SELECT u, e, t, \(receivedAt), l FROM unnest(\(users)::bytea[], \(ids)::bytea[], \(times)::int8[], \(lines)::bytea[]) AS x(u, e, t, l)
                ON CONFLICT (user_id, event_id) DO NOTHING
                RETURNING user_id, event_id
                """, logger: logger).wait()
            for row in inserted.rows {
                let (u, e) = try row.decode((ByteBuffer, ByteBuffer).self)
                stored.insert(Key(user: String(buffer: u), event: String(buffer: e)))
            }
        }
        var outcomes: [CommitOutcome] = []
        var duplicates = 0
        var reasons: [String] = [], fields: [String] = [], messages: [String] = [], raws: [ByteBuffer] = []
        var requestKeys: [String] = [], answers: [ByteBuffer] = []
        for (b, batch) in batches.enumerated() {
            var outcome = CommitOutcome()
            if replayed.contains(b) {
                outcome.replayed = true
                outcomes.append(outcome)   // its answer is set below, once every first answer is known
                continue
            }
            for e in batch.events {
                // An event counts as stored once: the first of its key in this commit that
                // PostgreSQL did not already hold.
                if stored.remove(Key(user: e.userID, event: e.eventID)) != nil { outcome.accepted += 1 } else { outcome.duplicates += 1 }
            }
            for q in batch.quarantined {
                reasons.append(q.reason.rawValue)
                fields.append(Self.text(q.field ?? ""))
                messages.append(Self.text(q.message))
                raws.append(ByteBuffer(bytes: q.raw))
            }
            duplicates += outcome.duplicates
            outcome.answer = batch.answer(outcome)
            if let key = batch.idempotencyKey {
                requestKeys.append(key)
                answers.append(ByteBuffer(bytes: outcome.answer))
                answered[key] = outcome.answer
            }
            outcomes.append(outcome)
        }
        // A replay answers what its key's first request answered (before, or earlier in this commit).
        for b in replayed { outcomes[b].answer = answered[batches[b].idempotencyKey!] ?? [] }
        if !reasons.isEmpty {
            _ = try c.query("""
                INSERT INTO quarantine (received_at, reason, field, message, raw)
                SELECT \(receivedAt), r, NULLIF(f, ''), m, w FROM unnest(\(reasons)::text[], \(fields)::text[], \(messages)::text[], \(raws)::bytea[]) AS x(r, f, m, w)
                """, logger: logger).wait()
        }
        if !requestKeys.isEmpty {
            _ = try c.query("""
                INSERT INTO requests (idempotency_key, answer, received_at)
                SELECT k, a, \(receivedAt) FROM unnest(\(requestKeys)::text[], \(answers)::bytea[]) AS x(k, a)
                ON CONFLICT (idempotency_key) DO NOTHING
                """, logger: logger).wait()
        }
        if duplicates > 0 {
            _ = try c.query("""
                INSERT INTO counters (name, value) VALUES ('duplicates', \(Int64(duplicates)))
                ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value
                """, logger: logger).wait()
        }
        return outcomes
    }

    /// Runs `sql` through a cursor on a connection of its own, `batch` rows a fetch, calling `body`
    /// with each row.
    func forEachRow(_ sql: String, batch: Int = 5000, _ body: (PostgresRow) throws -> Void) throws {
        let c: PostgresConnection
        do { c = try connect() } catch {
            throw StoreError("cannot read the PostgreSQL store \(address.description): \(Self.explain(error))")
        }
        defer { _ = try? c.close().wait() }
        do {
            _ = try c.query("BEGIN READ ONLY", logger: logger).wait()
            _ = try c.query(PostgresQuery(unsafeSQL: "DECLARE rows NO SCROLL CURSOR FOR \(sql)"), logger: logger).wait()
            while true {
                let rows = try c.query(PostgresQuery(unsafeSQL: "FETCH \(batch) FROM rows"), logger: logger).wait().rows
                for row in rows { try body(row) }
                if rows.count < batch { break }
            }
            _ = try c.query("COMMIT", logger: logger).wait()
        } catch let error as PSQLError {
            throw StoreError("cannot read the PostgreSQL store \(address.description): \(Self.explain(error))")
        }
    }

    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        try forEachRow("SELECT line FROM events ORDER BY user_id, seq") { row in
            let line = try row.decode(ByteBuffer.self)
            try line.withUnsafeReadableBytes { raw in try body(raw.bindMemory(to: UInt8.self)) }
        }
    }

    public func forEachQuarantined(_ body: (Int64, String, String?, String, [UInt8]) throws -> Void) throws {
        try forEachRow("SELECT received_at, reason, field, message, raw FROM quarantine ORDER BY id") { row in
            let (at, reason, field, message, raw) = try row.decode((Int64, String, String?, String, ByteBuffer).self)
            try body(at, reason, field, message, Array(raw.readableBytesView))
        }
    }

    /// A round trip on the writing connection; the event count is not known without counting
    /// (`seq` has gaps where a conflicting insert drew a value), so it is not given.
    public func probe() throws -> Int? {
        do {
            return try withWriter { c in
                _ = try c.query("SELECT 1", logger: logger).wait()
                return nil
            }
        } catch {
            throw StoreError("cannot reach the PostgreSQL store \(address.description): \(Self.explain(error))")
        }
    }

    public func counts() throws -> StoreCounts {
        do {
            return try withWriter { c in
                let totals = try c.query("""
                    SELECT (SELECT count(*) FROM events), pg_total_relation_size('events'),
                           COALESCE((SELECT value FROM counters WHERE name = 'duplicates'), 0)
                    """, logger: logger).wait().rows
                let (events, bytes, duplicates) = try totals[0].decode((Int64, Int64, Int64).self)
                let reasons = try c.query("SELECT reason, count(*) FROM quarantine GROUP BY reason", logger: logger).wait().rows.map { row in
                    let (reason, n) = try row.decode((String, Int64).self)
                    return (reason, Int(n))
                }
                return StoreCounts(events: Int(events), bytes: Int(bytes), quarantinedByReason: reasons, duplicates: Int(duplicates))
            }
        } catch {
            throw StoreError("cannot read the PostgreSQL store \(address.description): \(Self.explain(error))")
        }
    }
}
