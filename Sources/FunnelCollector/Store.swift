import Foundation
import FunnelBase
import FunnelEvents
import GRDB
import GRDBSQLite

/// What one request's events came to once committed.
public struct CommitOutcome: Sendable, Equatable {
    /// Events stored by this commit.
    public var accepted = 0
    /// Events whose (user_id, event_id) the store already held, or that an earlier event of the
    /// same commit carried: counted, not stored again.
    public var duplicates = 0
    /// The request's answer (JSON); for a replayed idempotency key, the first answer.
    public var answer: [UInt8] = []
    /// The idempotency key had been committed before: nothing was done.
    public var replayed = false
    public init(accepted: Int = 0, duplicates: Int = 0) {
        self.accepted = accepted
        self.duplicates = duplicates
    }

    public static func == (a: CommitOutcome, b: CommitOutcome) -> Bool {
        a.accepted == b.accepted && a.duplicates == b.duplicates && a.replayed == b.replayed
    }
}

/// Totals of a store, for `/readyz` and the CLI.
public struct StoreCounts: Sendable, Equatable {
    public var events: Int
    public var quarantined: Int
    /// Bytes of the store (its pages): about the bytes of the stored event lines, read without
    /// scanning them.
    public var bytes: Int
    /// What ingestion saw besides the stored events: duplicate events received and quarantined
    /// events by reason (requests replayed under an idempotency key not counted again).
    public var upstream: ReadCounters

    /// The totals from what a store's tables hold: stored events, its bytes, quarantined lines by
    /// reason (as stored) and duplicate events received.
    init(events: Int, bytes: Int, quarantinedByReason: [(String, Int)], duplicates: Int) {
        var upstream = ReadCounters()
        for (reason, n) in quarantinedByReason {
            if let known = QuarantineReason(rawValue: reason) { upstream.quarantined[known] = n }
        }
        upstream.duplicateEvents = duplicates
        upstream.eventsRead = duplicates + upstream.quarantinedTotal
        self.events = events
        self.quarantined = upstream.quarantinedTotal
        self.bytes = bytes
        self.upstream = upstream
    }
}

/// Where the collector keeps events: durable, idempotent by (user_id, event_id), read back in
/// user order.
public protocol EventStore: Sendable {
    /// Commits the batches in one transaction, durably, before returning; one outcome per batch.
    func commit(_ batches: [IngestBatch], receivedAt: Int64) throws -> [CommitOutcome]
    /// Calls `body` with every stored event's line, in user order (user_id, then arrival).
    func forEachLine(_ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws
    /// Calls `body` with every quarantined event: received_at, reason, field, message, raw.
    func forEachQuarantined(_ body: (Int64, String, String?, String, [UInt8]) throws -> Void) throws
    func counts() throws -> StoreCounts
    /// A cheap check that the store answers (`/readyz`, which probes may call every few seconds):
    /// the number of stored events when the store knows it without counting them, else nil.
    func probe() throws -> Int?
}

/// Why a store could not be opened or used: names the store and what to do.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A store location from `--store`: `sqlite:PATH` (or a bare path), or
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
public enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresAddress)

    public init(parsing text: String) throws(StoreError) {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(try PostgresAddress(parsing: text))
            return
        }
        let path = text.hasPrefix("sqlite:") ? String(text.dropFirst("sqlite:".count)) : text
        guard !path.isEmpty else { throw StoreError("--store \(text): give a file, as in sqlite:events.db, or a PostgreSQL address, as in postgres://funnel@127.0.0.1:5432/funnel") }
        self = .sqlite(path: path)
    }

    /// Opens (creating the tables when missing) the store.
    public func open() throws(StoreError) -> any EventStore {
        switch self {
        case .sqlite(let path): return try SQLiteStore(path: path)
        case .postgres(let address): return try PostgresStore(address: address)
        }
    }
}

/// SQLite copies bound values at once (`SQLITE_TRANSIENT`).
let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// The embedded store: one SQLite file in WAL mode with `synchronous=FULL`, so a commit is on disk
/// (the write-ahead log synced) when `commit` returns.
public final class SQLiteStore: EventStore {
    let pool: DatabasePool
    public let path: String
    let checkpointer: WALCheckpointer

    public init(path: String) throws(StoreError) {
        self.path = path
        var configuration = Configuration()
        // Readers and the checkpointer never hold the write lock, but a second process on the same
        // file (`funnel export` while the server runs) may: wait for it rather than fail.
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            // 16 KiB pages: a commit writes each page it dirtied to the log once, and with larger
            // pages the same events dirty fewer pages (bench/collector: about 25 % more events a
            // second than 4 KiB at 128 connections). Applies to a new file only.
            try db.execute(sql: "PRAGMA page_size = \(ProcessInfo.processInfo.environment["FUNNEL_SQLITE_PAGE_SIZE"] ?? "16384")")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Pages of the (user_id, event_id) index are touched at random by arriving events: keep
            // them in memory (256 MiB of cache, reads through a memory map) rather than re-read.
            try db.execute(sql: "PRAGMA cache_size = -262144")
            try db.execute(sql: "PRAGMA mmap_size = 1073741824")
            // The write-ahead log is copied into the database by a thread of its own
            // (`WALCheckpointer`), not by the commit thread, which every waiting request depends
            // on. The commit that takes the log past 16,384 pages (256 MiB) still checkpoints, so
            // the log starts over: by then the background passes have copied nearly all of it,
            // and only the last quarter-second's pages remain to copy.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 16384")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.write { db in
                try db.execute(sql: """
                    CREATE TABLE IF NOT EXISTS events (
                        seq INTEGER PRIMARY KEY,
                        user_id TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        ts INTEGER NOT NULL,
                        received_at INTEGER NOT NULL,
                        line BLOB NOT NULL,
                        UNIQUE (user_id, event_id)
                    );
                    CREATE TABLE IF NOT EXISTS requests (
                        idempotency_key TEXT PRIMARY KEY,
                        answer BLOB NOT NULL,
                        received_at INTEGER NOT NULL
                    );
                    CREATE TABLE IF NOT EXISTS counters (
                        name TEXT PRIMARY KEY,
                        value INTEGER NOT NULL
                    );
                    CREATE TABLE IF NOT EXISTS quarantine (
                        id INTEGER PRIMARY KEY,
                        received_at INTEGER NOT NULL,
                        reason TEXT NOT NULL,
                        field TEXT,
                        message TEXT NOT NULL,
                        raw BLOB NOT NULL
                    );
                    """)
            }
        } catch {
            throw StoreError("cannot open the SQLite store \(path): \(error); check the path and its folder's permissions")
        }
        checkpointer = WALCheckpointer(path: path)
    }

    deinit { checkpointer.stop() }

    public func commit(_ batches: [IngestBatch], receivedAt: Int64) throws -> [CommitOutcome] {
        try pool.write { db in
            let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO events (user_id, event_id, ts, received_at, line) VALUES (?, ?, ?, ?, ?)")
            let quarantine = try db.cachedStatement(sql: "INSERT INTO quarantine (received_at, reason, field, message, raw) VALUES (?, ?, ?, ?, ?)")
            let replay = try db.cachedStatement(sql: "SELECT answer FROM requests WHERE idempotency_key = ?")
            let remember = try db.cachedStatement(sql: "INSERT INTO requests (idempotency_key, answer, received_at) VALUES (?, ?, ?)")
            var outcomes: [CommitOutcome] = []
            var duplicates = 0
            for batch in batches {
                var outcome = CommitOutcome()
                if let key = batch.idempotencyKey, let answer = try Data.fetchOne(replay, arguments: [key]) {
                    outcome.replayed = true
                    outcome.answer = [UInt8](answer)
                    outcomes.append(outcome)
                    continue
                }
                // Bound through SQLite's own calls: the commit thread is the collector's bottleneck,
                // and per-row argument arrays cost as much as SQLite's insert itself.
                let handle = insert.sqliteStatement
                for e in batch.events {
                    sqlite3_reset(handle)
                    sqlite3_clear_bindings(handle)
                    _ = e.userID.withCString { sqlite3_bind_text(handle, 1, $0, -1, transient) }
                    _ = e.eventID.withCString { sqlite3_bind_text(handle, 2, $0, -1, transient) }
                    sqlite3_bind_int64(handle, 3, e.ts)
                    sqlite3_bind_int64(handle, 4, receivedAt)
                    _ = e.line.withUnsafeBytes { sqlite3_bind_blob(handle, 5, $0.baseAddress, Int32($0.count), transient) }
                    let code = sqlite3_step(handle)
                    guard code == SQLITE_DONE else {
                        throw StoreError("cannot store an event in \(path): \(String(cString: sqlite3_errmsg(db.sqliteConnection)))")
                    }
                    if sqlite3_changes(db.sqliteConnection) == 1 { outcome.accepted += 1 } else { outcome.duplicates += 1 }
                }
                sqlite3_reset(handle)
                for q in batch.quarantined {
                    try quarantine.execute(arguments: [receivedAt, q.reason.rawValue, q.field, q.message, Data(q.raw)])
                }
                duplicates += outcome.duplicates
                outcome.answer = batch.answer(outcome)
                if let key = batch.idempotencyKey { try remember.execute(arguments: [key, Data(outcome.answer), receivedAt]) }
                outcomes.append(outcome)
            }
            if duplicates > 0 {
                try db.execute(sql: "INSERT INTO counters (name, value) VALUES ('duplicates', ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                               arguments: [duplicates])
            }
            return outcomes
        }
    }

    public func forEachLine(_ body: (UnsafeBufferPointer<UInt8>) throws -> Void) throws {
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT line FROM events ORDER BY user_id, seq")
            while let row = try rows.next() {
                try row.withUnsafeData(atIndex: 0) { data in
                    guard let data else { return }
                    try data.withUnsafeBytes { raw in try body(raw.bindMemory(to: UInt8.self)) }
                }
            }
        }
    }

    public func forEachQuarantined(_ body: (Int64, String, String?, String, [UInt8]) throws -> Void) throws {
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: "SELECT received_at, reason, field, message, raw FROM quarantine ORDER BY id")
            while let row = try rows.next() {
                let raw: Data = row[4]
                try body(row[0], row[1], row[2], row[3], [UInt8](raw))
            }
        }
    }

    /// Rows are never deleted and an ignored insert takes no row id, so the largest `seq` is the
    /// number of stored events, read from the end of the table's B-tree.
    public func probe() throws -> Int? {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT max(seq) FROM events") ?? 0 }
    }

    public func counts() throws -> StoreCounts {
        try pool.read { db in
            let events = try Int.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0
            let bytes = try Int.fetchOne(db, sql: "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()") ?? 0
            let reasons = try Row.fetchAll(db, sql: "SELECT reason, count(*) FROM quarantine GROUP BY reason").map { ($0[0] as String, $0[1] as Int) }
            let duplicates = try Int.fetchOne(db, sql: "SELECT value FROM counters WHERE name = 'duplicates'") ?? 0
            return StoreCounts(events: events, bytes: bytes, quarantinedByReason: reasons, duplicates: duplicates)
        }
    }
}

/// Copies the write-ahead log into the database file in the background, on a connection of its
/// own, four times a second: a passive checkpoint, which never blocks the committing thread or the
/// readers. A passive pass cannot start the log over while commits keep arriving (the log always
/// has newer frames by the time it finishes); the commit thread's own checkpoint at 256 MiB of log
/// does that, and finds almost nothing left to copy.
final class WALCheckpointer: @unchecked Sendable {
    let path: String
    let lock = NSCondition()
    var stopping = false
    var stopped = false

    init(path: String) {
        self.path = path
        let thread = Thread { [self] in run() }
        thread.name = "funnel.checkpoint"
        thread.start()
    }

    func run() {
        var handle: OpaquePointer?
        let opened = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK
        if opened {
            sqlite3_busy_timeout(handle, 0)
            sqlite3_exec(handle, "PRAGMA synchronous = FULL", nil, nil, nil)
        }
        lock.lock()
        while !stopping {
            _ = lock.wait(until: Date().addingTimeInterval(0.25))
            if stopping || !opened { continue }
            lock.unlock()
            // SQLITE_BUSY (the commit thread's own checkpoint under way) just means: next time.
            _ = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            lock.lock()
        }
        sqlite3_close_v2(handle)
        stopped = true
        lock.broadcast()
        lock.unlock()
    }

    /// Ends the thread and waits for it to close its connection.
    func stop() {
        lock.lock()
        stopping = true
        lock.signal()
        while !stopped { lock.wait() }
        lock.unlock()
    }
}
