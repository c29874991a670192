import ArgumentParser
import Foundation
import FunnelBase
import FunnelPipeline
import FunnelSimulator

/// Checks off-policy evaluation and position-bias estimation by simulation: the position-bias
/// scenario logs a stochastic ranking policy with its propensities; the evaluation policy's true
/// value and the true examination probabilities are known.
struct CalibrateOPE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate-ope",
        abstract: "Calibrate off-policy estimates and position-bias propensities by simulation against known truth.")

    @Option(help: "Scenario: position-bias (every item shown once per user) or position-bias-recurring (items re-shown within the hour at other positions).")
    var scenario: Scenario = .positionBias

    @Option(help: "Simulations (seeds).")
    var simulations: Int = 400

    @Option(help: "Users per simulation (about 21 kept impressions each).")
    var users: Int = 5000

    @Option(help: "Bootstrap draws per interval.")
    var bootstrap: Int = 200

    @Option(help: "First seed; simulation k uses seed + 7919·k.")
    var seed: UInt64 = 5000

    @Option(help: "Write the results as JSON to this file.")
    var output: String?

    func validate() throws {
        if simulations < 10 { throw ValidationError("--simulations must be at least 10") }
        if users < 100 { throw ValidationError("--users must be at least 100") }
        if bootstrap < 50 { throw ValidationError("--bootstrap must be at least 50") }
        if !scenario.logsPropensities { throw ValidationError("--scenario must be position-bias or position-bias-recurring (got '\(scenario.rawValue)')") }
    }

    func run() throws {
        let calibration = OPECalibration(scenario: scenario, simulations: simulations, users: users, bootstrap: bootstrap, seed: seed)
        let result = try calibration.run()
        print(result.summary + "\n")
        print(TextReportTable.render(result.estimatorTable))
        print("\nposition bias per simulated log (relative to position 1):\n")
        print(TextReportTable.render(result.positionTable))
        if let output {
            try Data((result.document.serialized(pretty: true) + "\n").utf8).write(to: URL(fileURLWithPath: output))
        }
    }
}
