import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import FunnelBase
import FunnelCollector
import FunnelEvents
import FunnelPipeline
import FunnelSimulator
import FunnelTestSupport
import Testing

/// SHA-256 against the FIPS 180-2 examples (empty, "abc", the 448-bit message, a million 'a') and
/// one digest from Python's hashlib (three copies of the bytes 0…255).
@Test func sha256MatchesThePublishedDigests() {
    let cases: [([UInt8], String)] = [
        ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ([UInt8](repeating: 0x61, count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        (Array((0..<768).map { UInt8($0 % 256) }), "f3a25aa93aa2fbba28d79260535bbd6a5eb0fc1c24a8b0f04e12b484c1dfe363"),
    ]
    for (message, expected) in cases { #expect(SHA256.hex(SHA256.digest(message)) == expected, "\(message.count) bytes") }
    #expect(SHA256.constantTimeEqual([1, 2, 3], [1, 2, 3]))
    #expect(!SHA256.constantTimeEqual([1, 2, 3], [1, 2, 4]))
    #expect(!SHA256.constantTimeEqual([1, 2], [1, 2, 3]))
}

/// A key is stored only as its digest, authenticates as itself, and not when altered; the file
/// round-trips and refuses a damaged digest.
@Test func keysAreStoredAsDigests() throws {
    let folder = try TemporaryFolder()
    defer { folder.remove() }
    var ring = KeyRing()
    let ingest = ring.create(scope: .ingest)
    let admin = ring.create(scope: .admin)
    #expect(ingest.hasPrefix("fnl_") && ingest.count == 4 + 8 + 1 + 64)
    let path = folder.path + "/keys.yaml"
    try ring.save(path)
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(!text.contains(String(ingest.suffix(64))) && !text.contains(String(admin.suffix(64))))
    #expect(text.contains(SHA256.hex(SHA256.digest(Array(ingest.utf8)))))
    let loaded = try KeyRing.load(path)
    #expect(loaded.authenticate(ingest)?.scope == .ingest)
    #expect(loaded.authenticate(admin)?.scope == .admin)
    var altered = Array(ingest.utf8)
    altered[altered.count - 1] = altered.last == 0x30 ? 0x31 : 0x30
    #expect(loaded.authenticate(String(decoding: altered, as: UTF8.self)) == nil)
    #expect(loaded.authenticate("fnl_\(loaded.keys[0].id)") == nil)
    #expect(KeyScope.admin.allows(.ingest) && KeyScope.admin.allows(.report))
    #expect(!KeyScope.ingest.allows(.report) && !KeyScope.report.allows(.ingest))
    try text.replacingOccurrences(of: loaded.keys[0].sha256, with: "zz").write(toFile: path, atomically: true, encoding: .utf8)
    #expect(throws: StoreError.self) { try KeyRing.load(path) }
}

/// A token bucket of burst 3 and 2 tokens a second: three at once, then one each half second.
@Test func rateLimiterRefills() {
    let limiter = RateLimiter(rate: 2, burst: 3)
    #expect(limiter.take("k", now: 100) == nil)
    #expect(limiter.take("k", now: 100) == nil)
    #expect(limiter.take("k", now: 100) == nil)
    let wait = limiter.take("k", now: 100)
    #expect(wait != nil && abs(wait! - 0.5) < 1e-9)
    #expect(limiter.take("other", now: 100) == nil)
    #expect(limiter.take("k", now: 100.5) == nil)
    #expect(limiter.take("k", now: 100.5) != nil)
}

/// Bodies: NDJSON (blank lines counted in the index, CRLF accepted) and JSON arrays (elements over
/// several lines joined onto one), each event validated by the reader's parser.
@Test func bodiesSplitIntoEventsAndQuarantine() throws {
    let ndjson = """
    {"type":"impression","event_id":"i1","ts":1000,"user_id":"u1","item_id":"a","position":1}\r

    {"type":"click","event_id":"c1","user_id":"u1"}
    not json
    {"type":"click","event_id":"c2","ts":"2026-03-01T12:00:05Z","user_id":"u\\u0031","impression_id":"i1"}
    """
    let a = try splitBody(Array(ndjson.utf8))
    #expect(a.events.map(\.eventID) == ["i1", "c2"])
    #expect(a.events.map(\.userID) == ["u1", "u1"])
    #expect(a.events[0].ts == 1000)
    #expect(a.quarantined.map(\.index) == [2, 3])
    #expect(a.quarantined.map(\.reason) == [.missingField, .invalidJSON])
    #expect(a.quarantined[0].field == "ts")
    let array = """
    [
      {"type":"impression","event_id":"i1","ts":1000,
       "user_id":"u1","item_id":"a","position":1},
      3,
      {"type":"exposure","event_id":"x","ts":5,"user_id":"u1"}
    ]
    """
    let b = try splitBody(Array(array.utf8))
    #expect(b.events.count == 1 && !b.events[0].line.contains(0x0A))
    #expect(b.quarantined.map(\.index) == [1, 2])
    #expect(b.quarantined.map(\.reason) == [.invalidJSON, .missingField])
    #expect(try splitBody(Array("[]".utf8)).events.isEmpty)
    #expect(throws: BodyError.self) { try splitBody(Array("[{\"type\":1},".utf8)) }
    #expect(throws: BodyError.self) { try splitBody(Array("[1] 2".utf8)) }
}

/// The bytes of `path` compressed by the system's gzip (an independent compressor).
func gzipped(_ path: String) throws -> [UInt8] {
    let gzip = Process()
    gzip.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    gzip.arguments = ["gzip", "-kf", path]
    try gzip.run()
    gzip.waitUntilExit()
    return try [UInt8](Data(contentsOf: URL(fileURLWithPath: path + ".gz")))
}

/// Gzip bodies inflate; one that inflates past the limit is refused; garbage is a clear error.
@Test func gzipBodies() throws {
    let folder = try TemporaryFolder()
    defer { folder.remove() }
    let text = String(repeating: "{\"a\":1}\n", count: 10_000)
    let compressed = try gzipped(folder.write("b.ndjson", text))
    #expect(compressed.count < text.utf8.count / 10)
    #expect(try inflateBody(compressed, limit: 1 << 20) == Array(text.utf8))
    #expect(throws: BodyTooLarge.self) { try inflateBody(compressed, limit: 50_000) }
    #expect(throws: BodyError.self) { try inflateBody([1, 2, 3, 4], limit: 1 << 20) }
}

/// The store keeps one event per (user_id, event_id) however often it is sent, in one commit or
/// across several, and reads them back in user order.
@Test(arguments: StoreKind.all) func storeIsIdempotent(_ kind: StoreKind) throws {
    let place = try TestStore(kind)
    defer { place.remove() }
    let store = try place.open()
    func batch(_ ids: [(String, String)]) -> IngestBatch {
        var b = IngestBatch()
        b.events = ids.map { StoredEvent(userID: $0.0, eventID: $0.1, ts: 0, line: Array("{\"u\":\"\($0.0)\",\"e\":\"\($0.1)\"}".utf8)) }
        return b
    }
    let first = try store.commit([batch([("u2", "e1"), ("u1", "e1"), ("u1", "e1")]), batch([("u1", "e1"), ("u1", "e2")])], receivedAt: 1)
    #expect(first == [CommitOutcome(accepted: 2, duplicates: 1), CommitOutcome(accepted: 1, duplicates: 1)])
    let second = try store.commit([batch([("u2", "e1"), ("u3", "e9")])], receivedAt: 2)
    #expect(second == [CommitOutcome(accepted: 1, duplicates: 1)])
    var lines: [String] = []
    try store.forEachLine { lines.append(String(decoding: $0, as: UTF8.self)) }
    #expect(lines == [#"{"u":"u1","e":"e1"}"#, #"{"u":"u1","e":"e2"}"#, #"{"u":"u2","e":"e1"}"#, #"{"u":"u3","e":"e9"}"#])
    #expect(try store.counts().events == 4)
    // Reopened, the same events are there.
    #expect(try place.open().counts().events == 4)
    // Idempotency keys: a key committed before, and one sent twice within a commit, replay the
    // first answer and store nothing.
    var keyed = batch([("u4", "e1")])
    keyed.idempotencyKey = "k1"
    var twice = batch([("u5", "e1")])
    twice.idempotencyKey = "k2"
    let third = try store.commit([keyed, twice, twice], receivedAt: 3)
    #expect(third.map(\.replayed) == [false, false, true])
    #expect(third[2].answer == third[1].answer && !third[1].answer.isEmpty)
    let fourth = try store.commit([keyed], receivedAt: 4)
    #expect(fourth[0].replayed && fourth[0].answer == third[0].answer)
    let counts = try store.counts()
    #expect(counts.events == 6)
    // The readiness probe: the stored count on SQLite (its largest row id), none on PostgreSQL.
    #expect(try store.probe() == (kind == .sqlite ? 6 : nil))
    #expect(counts.upstream.duplicateEvents == 3)
}

/// Concurrent submissions share commits and each gets its own outcome.
@Test(arguments: StoreKind.all) func groupCommitSharesTransactions(_ kind: StoreKind) async throws {
    let place = try TestStore(kind)
    defer { place.remove() }
    let store = try place.open()
    let commits = Counter()
    let committer = GroupCommitter(store: store) { batches, _, _ in commits.add(batches) }
    let outcomes = try await withThrowingTaskGroup(of: CommitOutcome.self) { group in
        for k in 0..<64 {
            group.addTask {
                var b = IngestBatch()
                // Each request sends two new events and one that request k - 1 also sends.
                b.events = [k, k + 1000, k % 32 + 5000].map { StoredEvent(userID: "u", eventID: "e\($0)", ts: 0, line: Array("{}".utf8)) }
                return try await committer.submit(b)
            }
        }
        var all: [CommitOutcome] = []
        for try await o in group { all.append(o) }
        return all
    }
    let accepted = outcomes.map(\.accepted).reduce(0, +)
    let duplicates = outcomes.map(\.duplicates).reduce(0, +)
    #expect(accepted == 64 * 2 + 32)
    #expect(duplicates == 32)
    #expect(try store.counts().events == 160)
    #expect(commits.batches == 64)
    #expect(commits.commits < 64, "every request had its own commit: \(commits.commits)")
}

final class Counter: @unchecked Sendable {
    let lock = NSLock()
    var commits = 0
    var batches = 0
    func add(_ n: Int) { lock.lock(); commits += 1; batches += n; lock.unlock() }
}

/// The collector over HTTP, in process on a free port: keys and scopes, limits, gzip, idempotency,
/// and the report from the store equal to the report of its export (and, in the per-variant
/// counts, to the report of the simulator's own file).
@Suite(.serialized) struct CollectorHTTPTests {
    struct Reply {
        var status: Int
        var json: [String: Any]
        var headers: [AnyHashable: Any]
    }

    static func request(_ port: Int, _ method: String, _ path: String, key: String? = nil, body: [UInt8]? = nil,
                        headers: [String: String] = [:]) async throws -> Reply {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        r.httpMethod = method
        if let key { r.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        r.setValue("", forHTTPHeaderField: "Expect")   // no 100-continue round trip
        if body != nil { r.setValue("application/x-ndjson", forHTTPHeaderField: "Content-Type") }
        for (k, v) in headers { r.setValue(v, forHTTPHeaderField: k) }
        if let body { r.httpBody = Data(body) }
        let (data, response) = try await URLSession.shared.data(for: r)
        let http = response as! HTTPURLResponse
        let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        return Reply(status: http.statusCode, json: object, headers: http.allHeaderFields)
    }

    /// Runs `body` against a collector on a free port, then stops it.
    static func withCollector(_ store: any EventStore, _ keys: KeyRing, settings: CollectorSettings = CollectorSettings(),
                              _ body: @Sendable (Int) async throws -> Void) async throws {
        var settings = settings
        settings.port = 0
        let collector = Collector(store: store, keys: keys, settings: settings)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = Task { try await runCollector(collector) { port in continuation.yield(port) } }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { Issue.record("the server did not start"); return }
        do { try await body(port) } catch { server.cancel(); throw error }
        server.cancel()
        _ = await server.result
    }

    @Test func authenticationScopesAndLimits() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var ring = KeyRing()
        let ingest = ring.create(scope: .ingest), report = ring.create(scope: .report)
        var settings = CollectorSettings()
        settings.maxBodyBytes = 4096
        settings.rateLimit = 1
        settings.rateBurst = 3
        let keys = ring
        try await Self.withCollector(SQLiteStore(path: folder.path + "/s.db"), keys, settings: settings) { port in
            let event = Array(#"{"type":"impression","event_id":"i1","ts":1000,"user_id":"u1","item_id":"a","position":1}"#.utf8)
            #expect(try await Self.request(port, "POST", "/v1/events", body: event).status == 401)
            #expect(try await Self.request(port, "POST", "/v1/events", key: ingest + "0", body: event).status == 401)
            #expect(try await Self.request(port, "POST", "/v1/events", key: report, body: event).status == 403)
            let ok = try await Self.request(port, "POST", "/v1/events", key: ingest, body: event)
            #expect(ok.status == 200 && ok.json["accepted"] as? Int == 1)
            let big = [UInt8](repeating: 0x20, count: 5000) + event
            #expect(try await Self.request(port, "POST", "/v1/events", key: ingest, body: big).status == 413)
            #expect(try await Self.request(port, "POST", "/v1/events", key: ingest, body: event).json["duplicates"] as? Int == 1)
            // The burst of 3 is spent: the next request is refused with a Retry-After.
            let limited = try await Self.request(port, "POST", "/v1/events", key: ingest, body: event)
            #expect(limited.status == 429)
            #expect(limited.headers["Retry-After"] as? String == "1")
            #expect(try await Self.request(port, "GET", "/healthz").status == 200)
            #expect(try await Self.request(port, "GET", "/readyz").json["events"] as? Int == 1)
            // The metrics count what happened: one event stored, one duplicate, requests by status.
            var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/metrics")!)
            r.httpMethod = "GET"
            let (data, _) = try await URLSession.shared.data(for: r)
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.contains("funnel_events_accepted_total 1\n"))
            #expect(text.contains("funnel_events_duplicate_total 1\n"))
            for status in [200, 401, 403, 413, 429] {
                #expect(text.contains(#"funnel_http_request_duration_seconds_count{route="/v1/events",method="POST",status="\#(status)"}"#), "\(status)")
            }
        }
    }

    /// A client that sends half a request and stalls is cut off after the idle timeout, and the
    /// server goes on serving others meanwhile.
    @Test func stalledClientIsClosed() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var settings = CollectorSettings()
        settings.idleTimeoutSeconds = 1
        try await Self.withCollector(SQLiteStore(path: folder.path + "/s.db"), KeyRing(), settings: settings) { port in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            let partial = Array("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{".utf8)
            #expect(send(fd, partial, partial.count, 0) == partial.count)
            let meanwhile = try await Self.request(port, "GET", "/healthz").status
            #expect(meanwhile == 200)
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let started = Date()
            var buffer = [UInt8](repeating: 0, count: 4096)
            var got = recv(fd, &buffer, buffer.count, 0)
            while got > 0 { got = recv(fd, &buffer, buffer.count, 0) }
            let waited = Date().timeIntervalSince(started)
            #expect(got == 0, "the connection was not closed (recv \(got))")
            #expect(waited > 0.5 && waited < 4.5, "closed after \(waited) s")
            let after = try await Self.request(port, "GET", "/healthz").status
            #expect(after == 200)
        }
    }

    @Test func gzipBombIsRefused() async throws {
        let folder = try TemporaryFolder()
        defer { folder.remove() }
        var ring = KeyRing()
        let key = ring.create(scope: .ingest)
        var settings = CollectorSettings()
        settings.maxBodyBytes = 64 << 10
        let bomb = try gzipped(folder.write("zeros", String(repeating: " ", count: 1 << 20)))
        let keys = ring
        try await Self.withCollector(SQLiteStore(path: folder.path + "/s.db"), keys, settings: settings) { port in
            let reply = try await Self.request(port, "POST", "/v1/events", key: key, body: bomb, headers: ["Content-Encoding": "gzip"])
            #expect(reply.status == 413)
        }
    }

    /// The simulator's log (with its duplicate deliveries and junk lines) posted in batches of
    /// random sizes, four at a time, some gzip-compressed and some sent twice under their
    /// Idempotency-Key: the report of the store equals the report of the file, byte for byte; the
    /// report of the store's export equals it but for the reading counters (the export holds only
    /// the stored events).
    @Test(arguments: StoreKind.all) func storeReportEqualsTheReportOfThePostedFile(_ kind: StoreKind) async throws {
        let place = try TestStore(kind)
        defer { place.remove() }
        let folder = place.folder
        var sim = Simulator(scenario: .clickbait, users: 250, seed: 41)
        var bytes: [UInt8] = []
        _ = sim.run { bytes += $0 }
        let original = try folder.write("events.jsonl", String(decoding: bytes, as: UTF8.self))
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        var ring = KeyRing()
        let key = ring.create(scope: .admin)
        let store = try place.open()
        let keys = ring
        var random = SplitMix64(seed: 9)
        var requests: [[[UInt8]]] = []
        var at = 0
        while at < lines.count {
            let n = 1 + Int(random.next() % 400)
            requests.append(Array(lines[at..<min(at + n, lines.count)]))
            at += n
        }
        let batches = requests
        try await Self.withCollector(store, keys) { port in
            for group in stride(from: 0, to: batches.count, by: 4) {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for k in group..<min(group + 4, batches.count) {
                        tasks.addTask {
                            var body = Array(batches[k].joined(separator: [0x0A]))
                            var headers = ["Idempotency-Key": "batch-\(k)"]
                            if k % 3 == 0 {
                                body = try gzipped(folder.write("r\(k).ndjson", String(decoding: body, as: UTF8.self)))
                                headers["Content-Encoding"] = "gzip"
                            }
                            let first = try await Self.request(port, "POST", "/v1/events", key: key, body: body, headers: headers)
                            #expect(first.status == 200)
                            if k % 5 == 0 {
                                let again = try await Self.request(port, "POST", "/v1/events", key: key, body: body, headers: headers)
                                #expect(again.status == 200 && again.headers["Idempotent-Replayed"] as? String == "true")
                                #expect(again.json["accepted"] as? Int == first.json["accepted"] as? Int)
                            }
                        }
                    }
                    try await tasks.waitForAll()
                }
            }
            let fromFile = try ReportJob(source: EventSource(paths: [original])).run()
            let fromStore = try reportFromStore(store, configPath: nil)
            #expect(fromStore.serialized(pretty: true) == fromFile.serialized(pretty: true))
            let over = try await Self.request(port, "GET", "/v1/report", key: key)
            #expect(over.status == 200)
            let overHTTP = try JSONSerialization.data(withJSONObject: over.json, options: [.sortedKeys])
            let expected = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(fromFile.serialized().utf8)), options: [.sortedKeys])
            #expect(overHTTP == expected)
            let export = folder.path + "/export.jsonl"
            try exportEvents(store, to: export)
            let fromExport = try ReportJob(source: EventSource(paths: [export])).run()
            guard case .object(let storeMembers) = fromStore, case .object(let exportMembers) = fromExport else { Issue.record("not objects"); return }
            #expect(storeMembers.map(\.0) == exportMembers.map(\.0))
            for ((name, a), (_, b)) in zip(storeMembers, exportMembers) where name != "data_quality" && name != "diagnosis" {
                #expect(a.serialized() == b.serialized(), "\(name)")
            }
            #expect(fromExport["data_quality"]?["duplicate_events"]?.serialized() == "0")
        }
    }
}

/// `--store` addresses: SQLite paths, PostgreSQL addresses with their parts, and clear refusals
/// that never print the password.
@Test func storeLocationsParse() throws {
    #expect(try StoreLocation(parsing: "sqlite:/tmp/e.db") == .sqlite(path: "/tmp/e.db"))
    #expect(try StoreLocation(parsing: "e.db") == .sqlite(path: "e.db"))
    guard case .postgres(let a) = try StoreLocation(parsing: "postgres://ana:s%40cret@db.local:6543/events") else {
        Issue.record("not a PostgreSQL address"); return
    }
    #expect(a.host == "db.local" && a.port == 6543 && a.user == "ana" && a.password == "s@cret" && a.database == "events")
    #expect(a.description == "postgres://ana@db.local:6543/events")
    guard case .postgres(let b) = try StoreLocation(parsing: "postgresql://ana@127.0.0.1/events?sslmode=disable") else {
        Issue.record("not a PostgreSQL address"); return
    }
    #expect(b.port == 5432)
    for bad in ["postgres://ana:pw@127.0.0.1:5432", "postgres://ana:pw@127.0.0.1/e?sslmode=require", "postgres://ana:pw@127.0.0.1/e?timeout=3", "sqlite:"] {
        do {
            _ = try StoreLocation(parsing: bad)
            Issue.record("\(bad) was accepted")
        } catch {
            #expect(!error.description.contains(":pw@"), "\(error)")
        }
    }
}

/// A PostgreSQL server that is not there: a clear error naming the address, not a crash or a hang.
@Test func unreachablePostgresIsAClearError() throws {
    do {
        _ = try StoreLocation(parsing: "postgres://funnel:pw@127.0.0.1:1/funnel").open()
        Issue.record("opened a store on port 1")
    } catch {
        #expect(error.description.contains("cannot open the PostgreSQL store postgres://funnel@127.0.0.1:1/funnel"), "\(error)")
        #expect(!error.description.contains("pw"))
    }
}

/// A quarantined line whose message quotes a NUL from the request (an event type "a\u0000b") is
/// stored like any other: it must not fail the commit it shares with other requests.
@Test(arguments: StoreKind.all) func quarantineMessagesWithNULAreStored(_ kind: StoreKind) throws {
    let place = try TestStore(kind)
    defer { place.remove() }
    let store = try place.open()
    let body = Array(#"{"type":"a\u0000b","event_id":"e1","ts":1000,"user_id":"u1"}"#.utf8)
        + [0x0A] + Array(#"{"type":"impression","event_id":"i1","ts":1000,"user_id":"u1","item_id":"a","position":1}"#.utf8)
    let batch = try splitBody(body)
    #expect(batch.quarantined.count == 1 && batch.events.count == 1)
    #expect(batch.quarantined[0].message.utf8.contains(0))
    let outcome = try store.commit([batch], receivedAt: 1)
    #expect(outcome == [CommitOutcome(accepted: 1, duplicates: 0)])
    var rows: [(String, [UInt8])] = []
    try store.forEachQuarantined { _, reason, _, _, raw in rows.append((reason, raw)) }
    #expect(rows.count == 1 && rows.first?.0 == "unknown_type")
    #expect(rows.first?.1 == Array(body.prefix(while: { $0 != 0x0A })))
}
