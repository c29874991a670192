import Foundation
import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelOPE
import FunnelSimulator

/// Checks off-policy evaluation and position-bias estimation by simulation: the position-bias
/// scenarios log a stochastic ranking policy with its propensities; the evaluation policy's true
/// value and the true examination probabilities are known. Every simulation must run; one that
/// fails fails the calibration.
public struct OPECalibration: Sendable {
    public var scenario: Scenario
    public var simulations: Int
    public var users: Int
    /// Bootstrap draws per interval.
    public var bootstrap: Int
    /// Simulation k uses seed + 7919·k.
    public var seed: UInt64

    public init(scenario: Scenario = .positionBias, simulations: Int = 400, users: Int = 5000, bootstrap: Int = 200, seed: UInt64 = 5000) {
        self.scenario = scenario
        self.simulations = simulations
        self.users = users
        self.bootstrap = bootstrap
        self.seed = seed
    }

    /// The results: the JSON document, a one-line summary and the rows of the two printed tables.
    public struct Result: Sendable {
        public var document: JSONValue
        public var summary: String
        public var estimatorTable: [[String]]
        public var positionTable: [[String]]
    }

    static let estimators: [OffPolicy.Estimator] = [.ipw, .snipw, .dr, .sndr, .dm, .switchDR, .dros]
    /// Unbiased (ipw, dr) or consistent with vanishing bias (snipw, sndr): held to 93–97 % coverage.
    static let unbiased: Set<OffPolicy.Estimator> = [.ipw, .snipw, .dr, .sndr]

    struct Outcome: Sendable {
        var truth = 0.0
        var rounds = 0
        var collapsed = 0
        var matched = true
        var estimate: [String: Double] = [:]
        /// Bootstrap interval per estimator (the unbiased ones).
        var interval: [String: (Double, Double)] = [:]
        /// Position-bias estimates (index 0 = position 1) and whether the randomized interval covers.
        var randomized: [Double] = []
        var randomizedCover: [Bool] = []
        var em: [Double] = []
    }

    static func simulateOnce(scenario: Scenario, users: Int, seed: UInt64, bootstrap: Int) throws(PipelineError) -> Outcome {
        var sim = Simulator(scenario: scenario, users: users, seed: seed)
        sim.traps = false
        sim.keepPolicies = true
        var bytes: [UInt8] = []
        let truth = sim.run { bytes += $0 }
        let log: EventLog
        do throws(InputError) { log = try EventReader.read(bytes: bytes) } catch {
            throw PipelineError("calibrate-ope: the simulated log with seed \(seed) could not be read: \(error.description)")
        }
        let config = FunnelConfig()
        let rounds = Attributor.rounds(log, config: config, onlyLogged: true)
        guard !rounds.isEmpty else { throw PipelineError("calibrate-ope: the simulated log with seed \(seed) has no logged round") }
        var o = Outcome()
        o.truth = truth.evaluationValueSum / Double(truth.policyImpressions)
        o.rounds = rounds.count
        o.collapsed = rounds.filter(\.collapsed).count
        o.matched = rounds.count == truth.policyImpressions
        let items = (0..<log.items.count).map { log.items[Int32($0)] }
        let data = LoggedBandit(items: items, actions: rounds.map(\.item), positions: rounds.map { $0.position - 1 },
                                rewards: rounds.map { $0.clicked ? 1 : 0 }, propensities: rounds.map(\.propensity),
                                requestIDs: rounds.map { log.requests[$0.request] })
        var perRequest: [String: [Int: Double]] = [:]
        for r in sim.policyRequests {
            var row: [Int: Double] = [:]
            for (k, item) in r.evaluation.enumerated() {
                guard let a = log.items.lookup("i\(item)") else { continue }
                row[k * items.count + Int(a)] = 1
            }
            perRequest[r.request] = row
        }
        let policy = EvaluationPolicy(table: [], perRequest: perRequest, itemCount: items.count)
        var inputs = OffPolicy.Inputs(weights: OffPolicy.weights(data, policy), rewards: data.rewards, qLogged: nil, qExpected: nil)
        let q = RewardModel().predict(data, policy: policy)
        inputs.qLogged = q.logged
        inputs.qExpected = q.expected
        inputs.clusters = rounds.map(\.user)
        for e in estimators {
            guard let v = OffPolicy.estimate(e, inputs) else { continue }
            o.estimate[e.rawValue] = v
            if unbiased.contains(e), let ci = OffPolicy.bootstrap(e, inputs, settings: .init(), draws: bootstrap, alpha: 0.05, seed: seed) {
                o.interval[e.rawValue] = ci
            }
        }
        // Position bias on every round.
        let (records, _, _) = PositionBiasReport.records(log, config: config)
        if let r = try? PositionBias.estimate(records, method: .randomized, maxPosition: 8) {
            o.randomized = r.propensities
            o.randomizedCover = r.propensities.indices.map { k in
                guard let ci = r.intervals[k] else { return false }
                return ci.0 <= truth.examination[k] && truth.examination[k] <= ci.1
            }
        }
        if let e = try? PositionBias.estimate(records, method: .em, maxPosition: 8, bootstrap: 0) { o.em = e.propensities }
        return o
    }

    public func run() throws(PipelineError) -> Result {
        let users = self.users, seed = self.seed, bootstrap = self.bootstrap, scenario = self.scenario
        let outcomes = try runSimulations(simulations) { (k) throws(PipelineError) in
            try OPECalibration.simulateOnce(scenario: scenario, users: users, seed: seed + UInt64(k) * 7919, bootstrap: bootstrap)
        }
        let n = Double(outcomes.count)
        // The intervals resample users, so they estimate the policy's value over the population of
        // users and requests: its value is the mean of the logs' values (each log's value is the
        // expected clicks given its own users and requests). Coverage of each log's own value is
        // reported too; it runs above nominal when users differ much, as the bootstrap then counts
        // the variation of the users themselves, which the log's own value holds fixed.
        let population = outcomes.reduce(0) { $0 + $1.truth } / n
        var rows: [[String]] = [["estimator", "95 % coverage", "coverage of the log's value", "mean error", "sd of error", "variance ÷ IPW's"]]
        var estimatorJSON: [(String, JSONValue)] = []
        func errors(_ name: String) -> [Double] { outcomes.compactMap { o in o.estimate[name].map { $0 - o.truth } } }
        let ipwErrors = errors("ipw")
        let ipwVariance = variance(ipwErrors)
        for e in OPECalibration.estimators {
            let errs = errors(e.rawValue)
            let intervals = outcomes.compactMap { o in o.interval[e.rawValue].map { (ci: $0, truth: o.truth) } }
            func share(_ hit: ((Double, Double), Double) -> Bool) -> Double {
                intervals.isEmpty ? .nan : Double(intervals.filter { hit($0.ci, $0.truth) }.count) / Double(intervals.count)
            }
            let coverage = share { ci, _ in ci.0 <= population && population <= ci.1 }
            let logCoverage = share { ci, truth in ci.0 <= truth && truth <= ci.1 }
            // The interval's width beside the spread it should cover: a 95 % interval of a normal
            // estimate is 3.92 standard deviations wide.
            let width = intervals.isEmpty ? Double.nan : intervals.reduce(0) { $0 + ($1.ci.1 - $1.ci.0) } / Double(intervals.count)
            let aboutPopulation = outcomes.compactMap { o in o.estimate[e.rawValue].map { $0 - population } }
            let sdPopulation = (aboutPopulation.reduce(0) { $0 + $1 * $1 } / Double(max(aboutPopulation.count, 1))).squareRoot()
            let mean = errs.reduce(0, +) / Double(max(errs.count, 1)), v = variance(errs)
            rows.append([e.rawValue + (OPECalibration.unbiased.contains(e) ? "" : " (biased)"), String(format: "%.3f", coverage),
                         String(format: "%.3f", logCoverage), String(format: "%+.6f", mean), String(format: "%.6f", v.squareRoot()), String(format: "%.3f", v / ipwVariance)])
            estimatorJSON.append((e.rawValue, .object([
                ("coverage", .double(coverage)), ("coverage_of_log_value", .double(logCoverage)),
                ("mean_interval_width", .double(width)), ("sd_about_population_value", .double(sdPopulation)), ("mean_error", .double(mean)), ("variance", .double(v)),
                ("variance_ratio_to_ipw", .double(v / ipwVariance)), ("held_to_nominal_coverage", .bool(OPECalibration.unbiased.contains(e))),
            ])))
        }
        let meanRounds = outcomes.reduce(0) { $0 + $1.rounds } / outcomes.count
        let meanCollapsed = outcomes.reduce(0) { $0 + $1.collapsed } / outcomes.count
        let summary = ("off-policy evaluation: \(outcomes.count) simulated logs of the \(scenario.rawValue) scenario, \(users) users each (about \(meanRounds) rounds, \(meanCollapsed) of them re-showings the report counts once); evaluation policy's true value about \(String(format: "%.5f", population))")

        // Position bias: error against the simulator's examination probabilities.
        let truthExam = Simulator.examination
        var prow: [[String]] = [["position", "truth", "randomized mean", "randomized rel. RMSE", "randomized CI coverage", "em mean", "em rel. RMSE"]]
        var positionsJSON: [(String, JSONValue)] = []
        for k in 1..<truthExam.count {
            let t = truthExam[k]
            let r = outcomes.compactMap { $0.randomized.count > k && $0.randomized[k].isFinite ? $0.randomized[k] : nil }
            let m = outcomes.compactMap { $0.em.count > k && $0.em[k].isFinite ? $0.em[k] : nil }
            let cov = outcomes.compactMap { $0.randomizedCover.count > k ? $0.randomizedCover[k] : nil }
            func rmse(_ v: [Double]) -> Double { (v.reduce(0) { $0 + pow($1 / t - 1, 2) } / Double(max(v.count, 1))).squareRoot() }
            func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(v.count, 1)) }
            let coverage = Double(cov.filter { $0 }.count) / Double(max(cov.count, 1))
            prow.append([String(k + 1), String(format: "%.3f", t), String(format: "%.4f", mean(r)), String(format: "%.3f", rmse(r)),
                         String(format: "%.3f", coverage), String(format: "%.4f", mean(m)), String(format: "%.3f", rmse(m))])
            positionsJSON.append((String(k + 1), .object([
                ("truth", .double(t)), ("randomized_mean", .double(mean(r))), ("randomized_relative_rmse", .double(rmse(r))),
                ("randomized_ci_coverage", .double(coverage)), ("em_mean", .double(mean(m))), ("em_relative_rmse", .double(rmse(m))),
            ])))
        }
        let doc: JSONValue = .object([
            ("scenario", .string(scenario.rawValue)),
            ("simulations", .int(outcomes.count)), ("users_per_simulation", .int(users)), ("mean_logged_rounds", .int(meanRounds)),
            ("mean_rounds_collapsed_by_dedup", .int(meanCollapsed)),
            ("rounds_match_truth", .bool(outcomes.allSatisfy(\.matched))), ("mean_true_value", .double(population)),
            ("sd_of_log_values", .double(variance(outcomes.map(\.truth)).squareRoot())),
            ("estimators", .object(estimatorJSON)), ("position_bias", .object(positionsJSON)),
        ])
        return Result(document: doc, summary: summary, estimatorTable: rows, positionTable: prow)
    }

    func variance(_ v: [Double]) -> Double {
        guard v.count > 1 else { return .nan }
        let m = v.reduce(0, +) / Double(v.count)
        return v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)
    }
}
