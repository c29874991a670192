import ArgumentParser
import Foundation
import FunnelBase
import FunnelPipeline
import FunnelReport
import FunnelSimulator

extension Scenario: ExpressibleByArgument {}

/// What `funnel simulate --scenario` takes: the event-log scenarios, and `selection-bias`, which
/// writes a two-label impression table for the conversion models instead of an event log.
enum SimulateScenario: String, ExpressibleByArgument, CaseIterable {
    case clickbait, aa
    case positionBias = "position-bias"
    case positionBiasRecurring = "position-bias-recurring"
    case selectionBias = "selection-bias"

    /// The event-log scenario, or nil for the selection-bias table.
    var eventScenario: Scenario? { Scenario(rawValue: rawValue) }
}

/// Writes the selection-bias world's impression table to `out` and, when `truth` is given, each
/// impression's true probabilities to `truth`; returns the summary.
func simulateSelectionBias(users: Int, seed: UInt64, out: String, truth: String?) throws -> SelectionBiasSummary {
    func open(_ path: String, _ flag: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError("\(flag) \(path): cannot create the file; check the directory exists and is writable")
        }
        return h
    }
    let rows = try open(out, "--out")
    defer { try? rows.close() }
    let truthHandle = try truth.map { try open($0, "--truth") }
    defer { try? truthHandle?.close() }
    let world = SelectionBiasWorld()
    return try world.write(users: users, seed: seed, { try rows.write(contentsOf: $0) },
                           truth: truthHandle.map { h in { try h.write(contentsOf: $0) } })
}

/// Simulates a log to a file; returns the truth. With `policies` (position-bias scenario), writes
/// the logging and the evaluation policy there as per-request policy files.
func simulate(scenario: Scenario, users: Int, seed: UInt64, out: String, policies: String? = nil,
              listLength: Int = 8, mixedTimestamps: Bool = false) throws -> Truth {
    guard FileManager.default.createFile(atPath: out, contents: nil), let handle = FileHandle(forWritingAtPath: out) else {
        throw CLIError("--out \(out): cannot create the file; check the directory exists and is writable")
    }
    defer { try? handle.close() }
    var sim = Simulator(scenario: scenario, users: users, seed: seed)
    sim.keepPolicies = policies != nil
    sim.listLength = listLength
    sim.mixedTimestamps = mixedTimestamps
    let truth = try sim.run { bytes in try handle.write(contentsOf: bytes) }
    if let policies {
        try writePolicies(sim.policyRequests, to: policies)
    }
    return truth
}

/// `logging_policy.csv` (every item of a request at every position: 1 − ε + ε/n at its ranked
/// position, ε/n elsewhere) and `evaluation_policy.csv` (each request's items by attractiveness,
/// probability 1), both `request_id,item_id,position,probability`.
func writePolicies(_ requests: [(request: String, ranked: [Int], evaluation: [Int])], to dir: String) throws {
    do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
        throw CLIError("--policies \(dir): cannot create the directory")
    }
    let e = Simulator.exploration
    func write(_ name: String, _ rows: (inout String, (request: String, ranked: [Int], evaluation: [Int])) -> Void) throws {
        let path = (dir as NSString).appendingPathComponent(name)
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError("--policies \(dir): cannot write \(name)")
        }
        defer { try? h.close() }
        var text = "request_id,item_id,position,probability\n"
        for r in requests {
            rows(&text, r)
            if text.utf8.count > 1 << 20 { try h.write(contentsOf: Data(text.utf8)); text = "" }
        }
        try h.write(contentsOf: Data(text.utf8))
    }
    try write("logging_policy.csv") { text, r in
        let n = Double(r.ranked.count)
        for (rank, item) in r.ranked.enumerated() {
            for k in r.ranked.indices {
                text += "\(r.request),i\(item),\(k + 1),\((k == rank ? 1 - e : 0) + e / n)\n"
            }
        }
    }
    try write("evaluation_policy.csv") { text, r in
        for (k, item) in r.evaluation.enumerated() { text += "\(r.request),i\(item),\(k + 1),1\n" }
    }
}

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate an event log with known ground truth and every trap the counting rules handle.")

    @Option(help: "Scenario: clickbait (CTR up, conversions down), aa (no difference), position-bias (a stochastic logging policy with propensities), position-bias-recurring (the same with items re-shown to a user within the hour), or selection-bias (not an event log: a CSV of impressions with click and purchase labels for the conversion models; --truth then writes each impression's true click and conversion probabilities, row for row).")
    var scenario: SimulateScenario = .clickbait

    @Option(help: "Number of users.")
    var users: Int = 50_000

    @Option(help: "Random seed: the same seed gives the same bytes.")
    var seed: UInt64 = 1

    @Option(help: "Where to write the JSON Lines event log (selection-bias: the CSV of impressions).")
    var out: String

    @Option(help: "Where to write the truth file (JSON): the counts funnel report must recover with the default configuration. selection-bias: a CSV, one row per impression in the order of --out: p_click, p_cvr (the probability it converts if clicked) and convert_if_clicked (the conversion drawn for it, clicked or not).")
    var truth: String?

    @Option(help: "position-bias scenarios: a directory for logging_policy.csv and evaluation_policy.csv (per-request policies for funnel ope); their true values are in the truth file.")
    var policies: String?

    @Option(help: "Items per ranked list, 1 to 8: fewer makes fewer events per user (2 gives about 6, the shape of a log with many light users).")
    var listLength: Int = 8

    @Flag(help: "Write about half of the timestamps as epoch milliseconds (JSON numbers) instead of RFC 3339 strings.")
    var mixedTimestamps = false

    func validate() throws {
        if users < 1 { throw ValidationError("--users must be at least 1") }
        if !(1...8).contains(listLength) { throw ValidationError("--list-length must be 1 to 8 (the positions the simulator's examination model covers)") }
        if policies != nil && !(scenario.eventScenario?.logsPropensities ?? false) {
            throw ValidationError("--policies needs --scenario position-bias or position-bias-recurring (the scenarios whose logs carry propensities)")
        }
    }

    func run() throws {
        guard let scenario = scenario.eventScenario else {
            let summary = try simulateSelectionBias(users: users, seed: seed, out: out, truth: truth)
            print(summary.json(), terminator: "")
            printError("wrote \(summary.impressions) impressions (\(summary.clicks) clicks, \(summary.purchases) purchases) for \(users) users to \(out)")
            return
        }
        let t = try simulate(scenario: scenario, users: users, seed: seed, out: out, policies: policies,
                             listLength: listLength, mixedTimestamps: mixedTimestamps)
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
        let doc = try ReportJob(source: EventSource(paths: [events], format: .jsonl, quarantinePath: quarantine)).run()
        print(TextReport.render(doc, color: isatty(1) != 0), terminator: "")
        let json = (dir as NSString).appendingPathComponent("report.json")
        try Data((doc.serialized(pretty: true) + "\n").utf8).write(to: URL(fileURLWithPath: json))
        let html = (dir as NSString).appendingPathComponent("report.html")
        try Data(HTMLReport.render(doc).utf8).write(to: URL(fileURLWithPath: html))
        print("\nHTML report: \(html)\nJSON report: \(json)\nquarantined lines: \(quarantine)")
    }
}
