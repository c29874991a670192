import ArgumentParser
import Foundation
import FunnelConfig
import FunnelEvents
import FunnelReport
import FunnelSimulator

extension Scenario: ExpressibleByArgument {}

/// Simulates a log to a file; returns the truth.
func simulate(scenario: Scenario, users: Int, seed: UInt64, out: String) throws -> Truth {
    guard FileManager.default.createFile(atPath: out, contents: nil), let handle = FileHandle(forWritingAtPath: out) else {
        throw CLIError("--out \(out): cannot create the file; check the directory exists and is writable")
    }
    defer { try? handle.close() }
    var sim = Simulator(scenario: scenario, users: users, seed: seed)
    return try sim.run { bytes in try handle.write(contentsOf: bytes) }
}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate an event log with known ground truth and every trap the counting rules handle.")

    @Option(help: "Scenario: clickbait (CTR up, conversions down), aa (no difference) or position-bias.")
    var scenario: Scenario = .clickbait

    @Option(help: "Number of users.")
    var users: Int = 50_000

    @Option(help: "Random seed: the same seed gives the same bytes.")
    var seed: UInt64 = 1

    @Option(help: "Where to write the JSON Lines event log.")
    var out: String

    @Option(help: "Where to write the truth file (JSON): the counts funnel report must recover with the default configuration.")
    var truth: String?

    func validate() throws {
        if users < 1 { throw ValidationError("--users must be at least 1") }
    }

    func run() throws {
        let t = try simulate(scenario: scenario, users: users, seed: seed, out: out)
        if let truth {
            guard FileManager.default.createFile(atPath: truth, contents: Data(t.json().utf8)) else {
                throw CLIError("--truth \(truth): cannot write the file")
            }
        }
        printError("wrote \(t.lines) lines for \(users) users to \(out)")
    }
}

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate the clickbait scenario (50,000 users) into a temporary folder and print its report.")

    @Option(help: "Number of users.")
    var users: Int = 50_000

    @Option(help: "Random seed.")
    var seed: UInt64 = 7

    func run() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-demo-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let events = (dir as NSString).appendingPathComponent("events.jsonl")
        let t = try simulate(scenario: .clickbait, users: users, seed: seed, out: events)
        try Data(t.json().utf8).write(to: URL(fileURLWithPath: (dir as NSString).appendingPathComponent("truth.json")))
        printError("simulated \(t.lines) events for \(users) users (clickbait scenario, seed \(seed)) in \(events)")
        let quarantine = (dir as NSString).appendingPathComponent("quarantine.jsonl")
        let log = try readEvents(paths: [events], format: .jsonl, quarantine: quarantine)
        let doc = try buildReport(log: log, config: FunnelConfig())
        print(TextReport.render(doc, color: isatty(1) != 0), terminator: "")
        let json = (dir as NSString).appendingPathComponent("report.json")
        try Data((doc.serialized(pretty: true) + "\n").utf8).write(to: URL(fileURLWithPath: json))
        let html = (dir as NSString).appendingPathComponent("report.html")
        try Data(HTMLReport.render(doc).utf8).write(to: URL(fileURLWithPath: html))
        print("\nHTML report: \(html)\nJSON report: \(json)\nquarantined lines: \(quarantine)")
    }
}
