import ArgumentParser
import Foundation
import FunnelBase
import FunnelPipeline

/// Checks the statistics by simulation: false-positive rate on A/A data and interval coverage of
/// known lifts, beside intervals that wrongly treat impressions as independent.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Calibrate the statistics by simulation: A/A false-positive rate and coverage of known lifts.")

    @Option(help: "Simulations per scenario.")
    var simulations: Int = 500

    @Option(help: "Users per simulation.")
    var users: Int = 2000

    @Option(help: "Users in the large run that fixes the true lifts.")
    var truthUsers: Int = 200_000

    @Option(help: "First seed; simulation k uses seed + 7919·k.")
    var seed: UInt64 = 1000

    @Option(help: "Write the results as JSON to this file.")
    var output: String?

    func validate() throws {
        if simulations < 10 { throw ValidationError("--simulations must be at least 10") }
        if users < 100 { throw ValidationError("--users must be at least 100") }
    }

    func run() throws {
        let calibration = StatisticsCalibration(simulations: simulations, users: users, truthUsers: truthUsers, seed: seed)
        let result = try calibration.run()
        let lifts = result.trueLifts
        print(TextReportTable.render(result.table))
        print("true lifts from \(truthUsers) users' expected counts: ctr \(String(format: "%+.4f", lifts["ctr"] ?? .nan)), ctcvr \(String(format: "%+.4f", lifts["ctcvr"] ?? .nan))")
        if let output {
            try Data((result.document.serialized(pretty: true) + "\n").utf8).write(to: URL(fileURLWithPath: output))
        }
    }
}

/// Aligned table for command output.
enum TextReportTable {
    static func render(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows.first?.count ?? 0)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in r.enumerated().map { i, c in i == 0 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0) : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ") }.joined(separator: "\n")
    }
}
