import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelOPE

/// The layout of logged bandit feedback.
public enum LogFormat: String, CaseIterable, Sendable {
    /// Funnel event files: every served impression carrying `propensity` is a round; its reward is a
    /// counted click on that impression.
    case funnel
    /// The Open Bandit Dataset CSV layout.
    case obd
}

/// Off-policy evaluation: what an evaluation policy would earn, from logs of another policy.
public struct OffPolicyJob: Sendable {
    public var logs: String
    public var logFormat: LogFormat = .funnel
    /// funnel.yaml for the counting rules applied to Funnel event logs.
    public var configPath: String?
    /// Evaluation policy CSV (item_id,position,probability[,request_id]) or `uniform`.
    public var policy: String
    public var estimators: [OffPolicy.Estimator] = OffPolicy.Estimator.allCases
    /// Reward column of Open Bandit logs.
    public var reward = "click"
    public var bootstrap = 200
    public var seed: UInt64 = 1
    public var alpha = 0.05
    public var switchTau = 100.0
    public var drosLambda = 100.0

    public init(logs: String, policy: String) {
        self.logs = logs
        self.policy = policy
    }

    /// The estimates with their intervals, the weights' diagnostics and the JSON document.
    public struct Result: Sendable {
        public var document: JSONValue
        public var rounds: Int
        public var items: Int
        public var positions: Int
        public var loggedValue: Double
        /// Funnel logs: rounds that re-show an item the report's impression dedup counts once.
        public var collapsed: Int?
        public var estimates: [(estimator: OffPolicy.Estimator, value: Double?, interval: (Double, Double)?)]
        public var diagnostics: OffPolicy.Diagnostics
        /// Lines of the logs that were quarantined, by reason (Funnel logs).
        public var quarantined: [(reason: String, count: Int)]
    }

    /// Funnel events → logged rounds (DESIGN.md §7, "Rounds"): every served impression left after
    /// duplicates, bots and viewability that carries `propensity`, never collapsed by impression
    /// dedup; the reward is a click naming that very impression inside the click window. Also
    /// returns each round's user, how many rounds the counting rules would have collapsed, and the
    /// log's quarantine counts.
    public static func readFunnelLogs(_ path: String, config: FunnelConfig) throws(PipelineError)
        -> (data: LoggedBandit, users: [Int32], collapsed: Int, quarantined: [(reason: String, count: Int)]) {
        let log = try readEvents(EventSource(paths: [path]))
        let rounds = Attributor.rounds(log, config: config, onlyLogged: true)
        guard !rounds.isEmpty else {
            throw PipelineError("\(path): no viewable impression of a non-bot user carries a `propensity`; off-policy evaluation needs the logging policy's probability on each impression")
        }
        let hasRequests = rounds.allSatisfy { $0.request >= 0 }
        if let bad = rounds.first(where: { !($0.propensity > 0 && $0.propensity <= 1) }) {
            throw PipelineError("\(path): an impression of user '\(log.users[bad.user])' carries propensity \(bad.propensity); it must be in (0, 1]")
        }
        let data = LoggedBandit(
            items: (0..<log.items.count).map { log.items[Int32($0)] },
            actions: rounds.map(\.item), positions: rounds.map { $0.position - 1 },
            rewards: rounds.map { $0.clicked ? 1 : 0 }, propensities: rounds.map(\.propensity),
            requestIDs: hasRequests ? rounds.map { log.requests[$0.request] } : nil)
        return (data, rounds.map(\.user), rounds.filter(\.collapsed).count, quarantineCounts(log))
    }

    public func run() throws(PipelineError) -> Result {
        let data: LoggedBandit
        let evaluation: EvaluationPolicy
        var clusters: [Int32]? = nil
        var collapsed: Int? = nil
        var quarantined: [(reason: String, count: Int)] = []
        switch logFormat {
        case .funnel:
            (data, clusters, collapsed, quarantined) = try OffPolicyJob.readFunnelLogs(logs, config: try loadConfig(configPath))
        case .obd:
            let needsModel = estimators.contains(where: \.needsModel)
            do { data = try LoggedBandit.readOBD(path: logs, reward: reward, withFeatures: needsModel) } catch { throw .offPolicy(error) }
        }
        do {
            evaluation = policy == "uniform" ? .uniform(for: data) : try EvaluationPolicy.read(path: policy, for: data)
        } catch {
            throw .offPolicy(error)
        }
        var inputs = OffPolicy.Inputs(weights: OffPolicy.weights(data, evaluation), rewards: data.rewards, qLogged: nil, qExpected: nil)
        // A user's impressions are correlated: the bootstrap resamples users (Funnel logs).
        inputs.clusters = clusters
        if estimators.contains(where: \.needsModel) {
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
        var estimates: [(estimator: OffPolicy.Estimator, value: Double?, interval: (Double, Double)?)] = []
        var estimatesJSON: [(String, JSONValue)] = []
        for e in estimators {
            let value = OffPolicy.estimate(e, inputs, settings: settings)
            let ci = bootstrap > 0 ? OffPolicy.bootstrap(e, inputs, settings: settings, draws: bootstrap, alpha: alpha, seed: seed) : nil
            estimates.append((e, value, ci))
            estimatesJSON.append((e.rawValue, .object([("value", .number(value)), ("ci", .interval(ci))])))
        }
        let logged = data.rewards.reduce(0, +) / Double(max(data.count, 1))
        let doc: JSONValue = .object([
            ("logs", .string(logs)), ("rounds", .int(data.count)), ("items", .int(data.items.count)), ("positions", .int(data.positionCount)),
            ("logged_policy_value", .double(logged)),
            ("estimates", .object(estimatesJSON)),
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
        return Result(document: doc, rounds: data.count, items: data.items.count, positions: data.positionCount, loggedValue: logged,
                      collapsed: collapsed, estimates: estimates, diagnostics: diag, quarantined: quarantined)
    }
}

/// A log's quarantined lines by reason (reasons with none left out), in the reasons' order.
public func quarantineCounts(_ log: EventLog) -> [(reason: String, count: Int)] {
    QuarantineReason.allCases.compactMap { r in
        let n = log.counters.quarantined[r] ?? 0
        return n > 0 ? (r.rawValue, n) : nil
    }
}
