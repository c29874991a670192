import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import FunnelBase
import FunnelCollector
import FunnelPipeline
import FunnelSimulator
import FunnelTestSupport
import Testing

let slowPlan = ProcessInfo.processInfo.environment["FUNNEL_SLOW_TESTS"] == "1"

/// The slow plan's durability check, on the real binary: concurrent clients post the simulator's
/// log in batches; the server is killed with SIGKILL in the middle; every event of every batch that
/// got a 2xx is in the store exactly once; after a restart the clients resend the batches that got
/// no answer (and some that did) under their Idempotency-Key, and the store's report equals the
/// report of the file.
@Suite(.enabled(if: slowPlan, "slow plan: set FUNNEL_SLOW_TESTS=1 (scripts/test does)"), .timeLimit(.minutes(10)))
struct SlowCollectorDurabilityTests {
    static var binary: String {
        let candidates = [".build/debug/funnel", ".build/release/funnel"].map { FileManager.default.currentDirectoryPath + "/" + $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// Starts `funnel serve` on a free port; returns the process and the port.
    static func start(store: String, keys: String) throws -> (Process, Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", "--store", store, "--keys", keys, "--port", "0", "--rate-limit", "100000"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        while !text.contains("listening on") {
            let data = out.fileHandleForReading.availableData
            if data.isEmpty { throw StoreError("funnel serve exited before listening: \(text)") }
            text += String(decoding: data, as: UTF8.self)
        }
        let port = Int(text.split(separator: ":").last!.split(separator: "\n").first!)!
        return (process, port)
    }

    /// The simulator's log as NDJSON batches of `size` lines, and its file.
    static func batches(_ scenario: Scenario, users: Int, seed: UInt64, size: Int, in folder: TemporaryFolder) throws -> (file: String, batches: [[UInt8]]) {
        var sim = Simulator(scenario: scenario, users: users, seed: seed)
        var bytes: [UInt8] = []
        _ = sim.run { bytes += $0 }
        let file = try folder.write("events.jsonl", String(decoding: bytes, as: UTF8.self))
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
        return (file, stride(from: 0, to: lines.count, by: size).map { Array(lines[$0..<min($0 + size, lines.count)].joined(separator: [0x0A])) })
    }

    /// Expects every valid event of every batch in `answered` to be stored; returns the stored
    /// (user_id, event_id) pairs and the number of stored rows.
    @discardableResult
    static func expectStored(_ answered: Set<Int>, of batches: [[UInt8]], in store: TestStore) throws -> (ids: Set<String>, rows: Int) {
        var stored = Set<String>()
        var rows = 0
        try store.open().forEachLine { line in
            rows += 1
            let event = try splitBody(Array(line)).events[0]
            stored.insert(event.userID + "\u{1F}" + event.eventID)
        }
        for b in answered {
            for event in try splitBody(batches[b]).events {
                #expect(stored.contains(event.userID + "\u{1F}" + event.eventID), "batch \(b): \(event.eventID)")
            }
        }
        return (stored, rows)
    }

    static func post(_ port: Int, key: String, batch: Int, body: [UInt8]) async -> Bool {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/v1/events")!)
        r.httpMethod = "POST"
        r.timeoutInterval = 20
        r.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization")
        r.setValue("batch-\(batch)", forHTTPHeaderField: "Idempotency-Key")
        r.setValue("", forHTTPHeaderField: "Expect")
        r.setValue("application/x-ndjson", forHTTPHeaderField: "Content-Type")
        r.httpBody = Data(body)
        guard let (_, response) = try? await URLSession.shared.data(for: r) else { return false }
        return (response as? HTTPURLResponse)?.statusCode == 200
    }

    /// Four clients post the batches, each taking every fourth, under their Idempotency-Keys; when
    /// `after` batches are acknowledged the server gets `signal`. Returns the acknowledged batches
    /// once every client is done and the server has exited.
    static func postFromFourClients(_ batches: [[UInt8]], port: Int, key: String, signal: Int32, to server: Process,
                                    after: Int) async -> Set<Int> {
        let acknowledged = Acknowledged()
        await withTaskGroup(of: Void.self) { group in
            for client in 0..<4 {
                group.addTask {
                    for b in stride(from: client, to: batches.count, by: 4) {
                        if await Self.post(port, key: key, batch: b, body: batches[b]) {
                            if acknowledged.add(b) == after { kill(server.processIdentifier, signal) }
                        }
                    }
                }
            }
        }
        server.waitUntilExit()
        return acknowledged.batches
    }

    @Test(arguments: StoreKind.all) func killedMidwayLosesNothingAcknowledged(_ kind: StoreKind) async throws {
        let place = try TestStore(kind)
        defer { place.remove() }
        let folder = place.folder
        let (file, batches) = try Self.batches(.clickbait, users: 400, seed: 77, size: 100, in: folder)
        var ring = KeyRing()
        let key = ring.create(scope: .admin)
        let keysPath = folder.path + "/keys.yaml"
        try ring.save(keysPath)

        let (server, port) = try Self.start(store: place.location, keys: keysPath)
        // The server dies when a third of the batches are acknowledged.
        let killAfter = batches.count / 3
        let answered = await Self.postFromFourClients(batches, port: port, key: key, signal: SIGKILL, to: server, after: killAfter)
        #expect(server.terminationReason == .uncaughtSignal)
        #expect(answered.count >= killAfter && answered.count < batches.count, "\(answered.count) of \(batches.count) answered")

        // Every valid event of an acknowledged batch is stored, once.
        let stored = try Self.expectStored(answered, of: batches, in: place)
        #expect(stored.rows == stored.ids.count)

        // Restarted, the clients resend what got no answer, and a few batches that did.
        let (again, port2) = try Self.start(store: place.location, keys: keysPath)
        defer { again.terminate(); again.waitUntilExit() }
        let resend = (0..<batches.count).filter { !answered.contains($0) } + Array(answered.prefix(5))
        for b in resend { #expect(await Self.post(port2, key: key, batch: b, body: batches[b]), "batch \(b)") }
        let fromFile = try ReportJob(source: EventSource(paths: [file])).run()
        let fromStore = try reportFromStore(place.open(), configPath: nil)
        #expect(fromStore.serialized(pretty: true) == fromFile.serialized(pretty: true))
    }
}

extension SlowCollectorDurabilityTests {
    /// SIGTERM while clients post: the server stops accepting, answers what it took in, exits 0,
    /// and every acknowledged batch is stored.
    @Test(arguments: StoreKind.all) func terminatedGracefullyKeepsWhatItAnswered(_ kind: StoreKind) async throws {
        let place = try TestStore(kind)
        defer { place.remove() }
        let folder = place.folder
        let (_, batches) = try Self.batches(.aa, users: 300, seed: 5, size: 50, in: folder)
        var ring = KeyRing()
        let key = ring.create(scope: .ingest)
        let keysPath = folder.path + "/keys.yaml"
        try ring.save(keysPath)
        let (server, port) = try Self.start(store: place.location, keys: keysPath)
        let stopAfter = batches.count / 4
        let answered = await Self.postFromFourClients(batches, port: port, key: key, signal: SIGTERM, to: server, after: stopAfter)
        #expect(server.terminationReason == .exit && server.terminationStatus == 0)
        #expect(answered.count >= stopAfter && answered.count < batches.count)
        try Self.expectStored(answered, of: batches, in: place)
    }
}

final class Acknowledged: @unchecked Sendable {
    let lock = NSLock()
    var batches: Set<Int> = []
    func add(_ b: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        batches.insert(b)
        return batches.count
    }
}
