import ArgumentParser
import Foundation
import FunnelBase
import FunnelAttribution
import FunnelEvents
import FunnelPipeline
import FunnelOPE
import FunnelReport

struct OPE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ope",
        abstract: "Estimate what an evaluation ranking policy would earn, from logs of another policy (off-policy evaluation).")

    @Option(help: "Logged data: Funnel events whose impressions carry `propensity` (--log-format funnel), or an Open Bandit Dataset CSV (--log-format obd).")
    var logs: String

    @Option(help: "Log format: funnel (event files; reward = a counted click on the impression) or obd (the Open Bandit Dataset CSV layout).")
    var logFormat: String = "funnel"

    @Option(help: "funnel.yaml for the counting rules applied to Funnel event logs.")
    var config: String?

    @Option(help: "Evaluation policy CSV: item_id,position,probability[,request_id] (positions 1-based); or 'uniform'.")
    var policy: String

    @Option(help: "Comma-separated estimators: dm, ipw, snipw, dr, sndr, switch-dr, dros.")
    var estimators: String = "dm,ipw,snipw,dr,sndr,switch-dr,dros"

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
    var format: String = "text"

    func validate() throws {
        if logFormat != "obd" && logFormat != "funnel" {
            throw ValidationError("--log-format must be funnel or obd (got '\(logFormat)')")
        }
        for name in estimators.split(separator: ",") where OffPolicy.Estimator(rawValue: String(name)) == nil {
            throw ValidationError("--estimators: unknown estimator '\(name)'; choose from \(OffPolicy.Estimator.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if !(alpha > 0 && alpha < 1) { throw ValidationError("--alpha must be in (0, 1)") }
        if format != "text" && format != "json" { throw ValidationError("--format must be text or json") }
        if bootstrap < 0 { throw ValidationError("--bootstrap must be ≥ 0") }
    }

    /// Funnel events → logged rounds (DESIGN.md §7, "Rounds"): every served impression left after
    /// duplicates, bots and viewability that carries `propensity`, never collapsed by impression
    /// dedup; the reward is a click naming that very impression inside the click window. Also
    /// returns each round's user and how many rounds the counting rules would have collapsed.
    static func readFunnelLogs(_ path: String, config: String?) throws -> (data: LoggedBandit, users: [Int32], collapsed: Int) {
        let cfg = try loadConfig(config)
        let log = try readEvents(EventSource(paths: [path], format: .auto, quarantinePath: nil))
        warnQuarantined(log, path)
        let rounds = Attributor.rounds(log, config: cfg, onlyLogged: true)
        guard !rounds.isEmpty else {
            throw CLIError("\(path): no viewable impression of a non-bot user carries a `propensity`; off-policy evaluation needs the logging policy's probability on each impression")
        }
        let hasRequests = rounds.allSatisfy { $0.request >= 0 }
        if let bad = rounds.first(where: { !($0.propensity > 0 && $0.propensity <= 1) }) {
            throw CLIError("\(path): an impression of user '\(log.users[bad.user])' carries propensity \(bad.propensity); it must be in (0, 1]")
        }
        let data = LoggedBandit(
            items: (0..<log.items.count).map { log.items[Int32($0)] },
            actions: rounds.map(\.item), positions: rounds.map { $0.position - 1 },
            rewards: rounds.map { $0.clicked ? 1 : 0 }, propensities: rounds.map(\.propensity),
            requestIDs: hasRequests ? rounds.map { log.requests[$0.request] } : nil)
        return (data, rounds.map(\.user), rounds.filter(\.collapsed).count)
    }

    func run() throws {
        let data: LoggedBandit
        let evaluation: EvaluationPolicy
        var clusters: [Int32]? = nil
        var collapsed: Int? = nil
        if logFormat == "funnel" {
            (data, clusters, collapsed) = try OPE.readFunnelLogs(logs, config: config)
        } else {
            let needsModel = estimators.split(separator: ",").contains { OffPolicy.Estimator(rawValue: String($0))?.needsModel == true }
            do { data = try LoggedBandit.readOBD(path: logs, reward: reward, withFeatures: needsModel) } catch { throw CLIError(error.description) }
        }
        do {
            evaluation = policy == "uniform" ? .uniform(for: data) : try EvaluationPolicy.read(path: policy, for: data)
        } catch {
            throw CLIError(error.description)
        }
        let chosen = estimators.split(separator: ",").compactMap { OffPolicy.Estimator(rawValue: String($0)) }
        var inputs = OffPolicy.Inputs(weights: OffPolicy.weights(data, evaluation), rewards: data.rewards, qLogged: nil, qExpected: nil)
        // A user's impressions are correlated: the bootstrap resamples users (Funnel logs).
        inputs.clusters = clusters
        if chosen.contains(where: \.needsModel) {
            let q = RewardModel().predict(data, policy: evaluation)
            inputs.qLogged = q.logged
            inputs.qExpected = q.expected
        }
        var settings = OffPolicy.Settings()
        settings.switchTau = switchTau
        settings.drosLambda = drosLambda
        var diag = OffPolicy.diagnostics(inputs)
        if let perRequest = evaluation.perRequest, let ids = data.requestIDs {
            let missing = ids.filter { perRequest[$0] == nil }.count
            if missing > 0 {
                diag.warnings.append("\(missing) of \(data.count) logged rounds belong to requests the per-request policy file does not list: the policy's probability there is taken as 0")
            }
        } else if evaluation.perRequest != nil {
            diag.warnings.append("the policy file is per request but the logged impressions carry no request_id: every probability is taken as 0")
        }
        var estimates: [(String, JSONValue)] = []
        var rows: [[String]] = [["estimator", "value", "\(Int((1 - alpha) * 100)) % bootstrap interval"]]
        for e in chosen {
            let value = OffPolicy.estimate(e, inputs, settings: settings)
            let ci = bootstrap > 0 ? OffPolicy.bootstrap(e, inputs, settings: settings, draws: bootstrap, alpha: alpha, seed: seed) : nil
            estimates.append((e.rawValue, .object([("value", .number(value)), ("ci", .interval(ci))])))
            rows.append([e.rawValue, value.map { String(format: "%.6f", $0) } ?? "—", ci.map { String(format: "[%.6f, %.6f]", $0.0, $0.1) } ?? "—"])
        }
        let logged = data.rewards.reduce(0, +) / Double(max(data.count, 1))
        let doc: JSONValue = .object([
            ("logs", .string(logs)), ("rounds", .int(data.count)), ("items", .int(data.items.count)), ("positions", .int(data.positionCount)),
            ("logged_policy_value", .double(logged)),
            ("estimates", .object(estimates)),
            ("diagnostics", .object([
                ("rounds_collapsed_by_dedup", collapsed.map { .int($0) } ?? .null),
                ("ess", .double(diag.ess)), ("max_weight", .double(diag.maxWeight)), ("mean_weight", .double(diag.meanWeight)),
                ("unsupported_share", .double(diag.unsupportedShare)), ("top5_share_of_ipw", .number(diag.topFiveShare)),
                ("warnings", .array(diag.warnings.map(JSONValue.string))),
            ])),
            ("settings", .object([("bootstrap", .int(bootstrap)), ("seed", .int(Int(seed))), ("alpha", .double(alpha)),
                                  ("switch_tau", .double(switchTau)), ("dros_lambda", .double(drosLambda)),
                                  ("reward_model", .string("L2 logistic regression on context, item, position (and affinity), 3-fold cross-fitted"))])),
        ])
        if format == "json" {
            print(doc.serialized(pretty: true))
        } else {
            print("\(data.count) logged rounds, \(data.items.count) items, \(data.positionCount) positions; logged policy's mean \(reward): \(String(format: "%.6f", logged))")
            if let collapsed {
                print("every served impression is a round: \(collapsed) of the \(data.count) re-show an item that the report's impression dedup counts once")
            }
            print("")
            print(TextReportTable.render(rows))
            print("\neffective sample size \(String(format: "%.1f", diag.ess)), max weight \(String(format: "%.2f", diag.maxWeight)), mean weight \(String(format: "%.4f", diag.meanWeight)), unsupported \(String(format: "%.1f", diag.unsupportedShare * 100)) %")
            for w in diag.warnings { print("warning: \(w)") }
        }
    }
}

/// A warning on standard error when lines were quarantined (an impression with a propensity outside
/// (0, 1], for instance, is quarantined as invalid_value and is then no logged round).
func warnQuarantined(_ log: EventLog, _ path: String) {
    let total = log.counters.quarantinedTotal
    guard total > 0 else { return }
    let reasons = log.counters.quarantined.filter { $0.value > 0 }.sorted { $0.key.rawValue < $1.key.rawValue }
        .map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
    printError("warning: \(path): \(total) lines were quarantined (\(reasons)) and are not counted; `funnel validate --events \(path)` shows them")
}
