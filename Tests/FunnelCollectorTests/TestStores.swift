import Foundation
import FunnelCollector
import FunnelTestSupport
import Testing

/// The PostgreSQL server the store tests also run on: `FUNNEL_TEST_POSTGRES`, an address whose
/// user may create databases (scripts/test's collector stage starts one with scripts/postgres and
/// sets it). Without it, the tests run on SQLite only.
let postgresServer = ProcessInfo.processInfo.environment["FUNNEL_TEST_POSTGRES"]

/// The kinds of store a store test runs on.
enum StoreKind: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
    /// SQLite, and PostgreSQL when a server is given; `FUNNEL_TEST_STORES=postgres` keeps only
    /// PostgreSQL (scripts/test's collector stage, after the unit and slow stages ran SQLite).
    static let all: [StoreKind] = {
        guard postgresServer != nil else { return [.sqlite] }
        return ProcessInfo.processInfo.environment["FUNNEL_TEST_STORES"] == "postgres" ? [.postgres] : [.sqlite, .postgres]
    }()
}

/// A new, empty store of one kind for one test: an SQLite file in a temporary folder, or a
/// database of its own on the PostgreSQL server (dropped by `remove`).
final class TestStore: Sendable {
    let kind: StoreKind
    let folder: TemporaryFolder
    /// What `--store` takes to open it.
    let location: String
    let database: String?

    init(_ kind: StoreKind) throws {
        self.kind = kind
        folder = try TemporaryFolder()
        switch kind {
        case .sqlite:
            location = "sqlite:" + folder.path + "/events.db"
            database = nil
        case .postgres:
            let name = "funnel_test_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
            try Self.psql("CREATE DATABASE \(name)")
            var parts = URLComponents(string: postgresServer!)!
            parts.path = "/" + name
            location = parts.string!
            database = name
        }
    }

    func open() throws -> any EventStore { try StoreLocation(parsing: location).open() }

    func remove() {
        if let database { try? Self.psql("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
        folder.remove()
    }

    /// Runs one statement on the server's own database with psql.
    static func psql(_ statement: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", postgresServer!, "-c", statement]
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw StoreError("psql \(statement): \(String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
        }
    }
}
