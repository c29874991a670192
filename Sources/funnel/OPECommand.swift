import ArgumentParser
import Foundation
import FunnelBase
import FunnelOPE
import FunnelPipeline

extension LogFormat: ExpressibleByArgument {}

struct OPE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ope",
        abstract: "Estimate what an evaluation ranking policy would earn, from logs of another policy (off-policy evaluation).")

    @Option(help: "Logged data: Funnel events whose impressions carry `propensity` (--log-format funnel), or an Open Bandit Dataset CSV (--log-format obd).")
    var logs: String

    @Option(help: "Log format: funnel (event files; reward = a counted click on the impression) or obd (the Open Bandit Dataset CSV layout).")
    var logFormat: LogFormat = .funnel

    @Option(help: "funnel.yaml for the counting rules applied to Funnel event logs.")
    var config: String?

    @Option(help: "Evaluation policy CSV: item_id,position,probability[,request_id] (positions 1-based); or 'uniform'.")
    var policy: String

    @Option(help: "Comma-separated estimators: dm, ipw, snipw, dr, sndr, switch-dr, dros.")
    var estimators: EstimatorList = EstimatorList(OffPolicy.Estimator.allCases)

    @Option(help: "Reward column of the logs.")
    var reward: String = "click"

    @Option(help: "Bootstrap draws for the intervals (0: none).")
    var bootstrap: Int = 200

    @Option(help: "Seed of the bootstrap.")
    var seed: UInt64 = 1

    @Option(help: "Two-sided interval level is 1 − alpha.")
    var alpha: Double = 0.05

    @Option(help: "Switch-DR threshold τ on the importance weight.")
    var switchTau: Double = 100

    @Option(help: "DRos shrinkage λ.")
    var drosLambda: Double = 100

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    func validate() throws {
        if !(alpha > 0 && alpha < 1) { throw ValidationError("--alpha must be in (0, 1)") }
        if bootstrap < 0 { throw ValidationError("--bootstrap must be ≥ 0") }
    }

    func run() throws {
        var job = OffPolicyJob(logs: logs, policy: policy)
        job.logFormat = logFormat
        job.configPath = config
        job.estimators = estimators.estimators
        job.reward = reward
        job.bootstrap = bootstrap
        job.seed = seed
        job.alpha = alpha
        job.switchTau = switchTau
        job.drosLambda = drosLambda
        let result = try job.run()
        if let note = quarantineNote(result.quarantined, logs) { printError(note) }
        if format == .json {
            print(result.document.serialized(pretty: true))
            return
        }
        print("\(result.rounds) logged rounds, \(result.items) items, \(result.positions) positions; logged policy's mean \(reward): \(String(format: "%.6f", result.loggedValue))")
        if let collapsed = result.collapsed {
            print("every served impression is a round: \(collapsed) of the \(result.rounds) re-show an item that the report's impression dedup counts once")
        }
        print("")
        var rows: [[String]] = [["estimator", "value", "\(Int((1 - alpha) * 100)) % bootstrap interval"]]
        for e in result.estimates {
            rows.append([e.estimator.rawValue, e.value.map { String(format: "%.6f", $0) } ?? "—",
                         e.interval.map { String(format: "[%.6f, %.6f]", $0.0, $0.1) } ?? "—"])
        }
        print(TextReportTable.render(rows))
        let diag = result.diagnostics
        print("\neffective sample size \(String(format: "%.1f", diag.ess)), max weight \(String(format: "%.2f", diag.maxWeight)), mean weight \(String(format: "%.4f", diag.meanWeight)), unsupported \(String(format: "%.1f", diag.unsupportedShare * 100)) %")
        for w in diag.warnings { print("warning: \(w)") }
    }
}

/// `--estimators ipw,snipw`: the estimators, each known.
struct EstimatorList: ExpressibleByArgument {
    var estimators: [OffPolicy.Estimator]

    init(_ estimators: [OffPolicy.Estimator]) { self.estimators = estimators }

    init?(argument: String) {
        var list: [OffPolicy.Estimator] = []
        for name in argument.split(separator: ",") {
            guard let e = OffPolicy.Estimator(rawValue: name.trimmingCharacters(in: .whitespaces)) else { return nil }
            list.append(e)
        }
        guard !list.isEmpty else { return nil }
        estimators = list
    }

    var defaultValueDescription: String { estimators.map(\.rawValue).joined(separator: ",") }
    static var allValueStrings: [String] { OffPolicy.Estimator.allCases.map(\.rawValue) }
}
