import ArgumentParser
import Foundation
import FunnelBase
import FunnelPipeline

/// Checks the statistics by simulation: false-positive rate on A/A data and interval coverage of
/// known lifts, beside intervals that wrongly treat impressions as independent.
struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Calibrate the statistics by simulation: A/A false-positive rate and coverage of known lifts; with --sequential, daily peeking at fixed-horizon and always-valid tests.")

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

    @Flag(help: "Calibrate sequential inference instead: --simulations A/A experiments and as many with a known lift, looked at every day for --days days, fixed horizon against confidence-sequence and msprt.")
    var sequential = false

    @Option(help: "--sequential: days of looks.")
    var days: Int = 28

    @Option(help: "--sequential: new users per arm per day.")
    var usersPerDay: Int = 200

    @Option(help: "--sequential: the metric, user_conversion_rate (a proportion) or ctr (a ratio of per-user sums).")
    var metric: String = "user_conversion_rate"

    @Option(help: "--sequential: the control's conversion or click probability.")
    var rate: Double = 0.1

    @Option(help: "--sequential: the relative lift of the experiments with an effect.")
    var lift: Double = 0.1

    @Option(help: "--sequential: the confidence sequence's tuning N* (total users at which it is tightest).")
    var tuning: Double = 5000

    func validate() throws {
        if simulations < 10 { throw ValidationError("--simulations must be at least 10") }
        if users < 100 { throw ValidationError("--users must be at least 100") }
        if sequential {
            if days < 1 || usersPerDay < 10 { throw ValidationError("--days must be ≥ 1 and --users-per-day ≥ 10") }
            if SequentialCalibration.Metric(rawValue: metric) == nil { throw ValidationError("--metric must be user_conversion_rate or ctr") }
            if !(rate > 0 && rate * (1 + lift) < 1) || !(lift > -1) { throw ValidationError("--rate and --rate × (1 + --lift) must be in (0, 1)") }
            if !(tuning > 0) { throw ValidationError("--tuning must be > 0") }
        }
    }

    func run() throws {
        if sequential {
            let calibration = SequentialCalibration(experiments: simulations, days: days, usersPerDay: usersPerDay,
                                                    metric: SequentialCalibration.Metric(rawValue: metric)!, rate: rate, lift: lift, tuning: tuning, seed: seed)
            let result = try calibration.run()
            print(TextReportTable.render(result.table))
            print("\(simulations) A/A experiments and \(simulations) with a lift of \(String(format: "%+.1f %%", lift * 100)) (true difference \(String(format: "%+.5f", result.trueDifference))), \(usersPerDay) new users per arm per day, a look every day for \(days) days")
            if let output { try Data((result.document.serialized(pretty: true) + "\n").utf8).write(to: URL(fileURLWithPath: output)) }
            return
        }
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
