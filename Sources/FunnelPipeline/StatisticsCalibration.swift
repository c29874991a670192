import Foundation
import FunnelBase
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelReport
import FunnelSimulator
import FunnelStats

/// Checks the statistics by simulation: the false-positive rate on A/A data and the coverage of
/// known lifts, beside intervals that wrongly treat impressions as independent. Every simulation
/// must run; one that fails fails the calibration (no result is reported over fewer runs).
public struct StatisticsCalibration: Sendable {
    public var simulations: Int
    public var users: Int
    /// Users in the large run whose expected counts fix the true lifts.
    public var truthUsers: Int
    /// Simulation k uses seed + 7919·k.
    public var seed: UInt64

    public init(simulations: Int = 500, users: Int = 2000, truthUsers: Int = 200_000, seed: UInt64 = 1000) {
        self.simulations = simulations
        self.users = users
        self.truthUsers = truthUsers
        self.seed = seed
    }

    /// The results: the JSON document and the rows of the printed table.
    public struct Result: Sendable {
        public var document: JSONValue
        public var table: [[String]]
        public var trueLifts: [String: Double]
    }

    struct Outcome: Sendable {
        var primarySignificant = false
        var cupedPrimarySignificant = false
        var cover: [String: Bool] = [:]
        var reduction: [String: Double] = [:]
    }

    /// One simulated experiment, counted and analysed.
    static func analyse(_ scenario: Scenario, users: Int, seed: UInt64, cuped: Bool = false) throws(PipelineError) -> (Analysis, Truth) {
        var sim = Simulator(scenario: scenario, users: users, seed: seed)
        sim.traps = false
        var bytes: [UInt8] = []
        let truth = sim.run { bytes += $0 }
        var config = FunnelConfig()
        config.cuped = cuped
        do {
            let log = try EventReader.read(bytes: bytes)
            return (Analysis(summary: try Attributor.summarize(log, config: config, sensitivity: false), config: config), truth)
        } catch {
            throw PipelineError("calibration: the simulation of the \(scenario.rawValue) scenario with seed \(seed) failed: \(error)")
        }
    }

    /// True lifts of ctr and ctcvr from expected clicks and purchases in a large run.
    static func trueLifts(_ truth: Truth) -> [String: Double] {
        guard let c = truth.expected["control"], let t = truth.expected["treatment"] else { return [:] }
        let ctrC = c.clicks / Double(c.impressions), ctrT = t.clicks / Double(t.impressions)
        let cvC = c.purchases / Double(c.impressions), cvT = t.purchases / Double(t.impressions)
        return ["ctr": ctrT / ctrC - 1, "ctcvr": cvT / cvC - 1]
    }

    /// Relative interval that treats impressions as independent Bernoulli trials (wrong on purpose).
    static func naiveRelativeCI(_ kc: Int, _ nc: Int, _ kt: Int, _ nt: Int) -> (Double, Double)? {
        guard nc > 0, nt > 0, kc > 0 else { return nil }
        let pc = Double(kc) / Double(nc), pt = Double(kt) / Double(nt)
        let vc = pc * (1 - pc) / Double(nc), vt = pt * (1 - pt) / Double(nt)
        let lift = pt / pc - 1
        let half = 1.959963984540054 * (vt / (pc * pc) + pt * pt * vc / (pc * pc * pc * pc)).squareRoot()
        return (lift - half, lift + half)
    }

    public func run() throws(PipelineError) -> Result {
        var results: [(String, JSONValue)] = [("simulations", .int(simulations)), ("users_per_simulation", .int(users))]
        // A/A: share of significant primary comparisons.
        let aa = try runMany(.aa, truth: ["ctr": 0, "ctcvr": 0])
        let fpr = Double(aa.filter(\.primarySignificant).count) / Double(aa.count)
        // Known effect: the clickbait treatment, true lifts from a large run's expected counts.
        let big = try StatisticsCalibration.analyse(.clickbait, users: truthUsers, seed: 1)
        let lifts = StatisticsCalibration.trueLifts(big.1)
        let effect = try runMany(.clickbait, truth: lifts)
        func coverage(_ outcomes: [Outcome], _ key: String) -> Double {
            let defined = outcomes.compactMap { $0.cover[key] }
            return defined.isEmpty ? 0 : Double(defined.filter { $0 }.count) / Double(defined.count)
        }
        let cupedFPR = Double(aa.filter(\.cupedPrimarySignificant).count) / Double(aa.count)
        func meanReduction(_ outcomes: [Outcome], _ key: String) -> Double {
            let v = outcomes.compactMap { $0.reduction[key] }
            return v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count)
        }
        var rows: [[String]] = [["check", "A/A", "clickbait (known lift)"]]
        rows.append(["primary (purchases_per_user) significant at α = 0.05", String(format: "%.3f", fpr), "—"])
        rows.append(["primary significant at α = 0.05, with CUPED", String(format: "%.3f", cupedFPR), "—"])
        for key in ["ctr", "ctcvr"] {
            rows.append(["\(key) lift: 95 % interval covers truth (per-user delta method)",
                         String(format: "%.3f", coverage(aa, key)), String(format: "%.3f", coverage(effect, key))])
            rows.append(["\(key) lift: 95 % interval covers truth (impressions as independent)",
                         String(format: "%.3f", coverage(aa, "naive_" + key)), String(format: "%.3f", coverage(effect, "naive_" + key))])
        }
        for key in ["ctr", "ctcvr"] {
            rows.append(["\(key) lift: 95 % interval covers truth (CUPED)",
                         String(format: "%.3f", coverage(aa, "cuped_" + key)), String(format: "%.3f", coverage(effect, "cuped_" + key))])
        }
        for key in ["ctr", "ctcvr", "purchases_per_user", "revenue_per_user"] {
            rows.append(["CUPED: mean variance reduction of the \(key) difference",
                         String(format: "%.3f", meanReduction(aa, key)), String(format: "%.3f", meanReduction(effect, key))])
        }
        results += [
            ("aa_primary_false_positive_rate", .double(fpr)),
            ("true_lifts", .object(lifts.sorted { $0.key < $1.key }.map { ($0.key, .double($0.value)) })),
            ("aa_primary_false_positive_rate_cuped", .double(cupedFPR)),
            ("cuped_variance_reduction", .object(["ctr", "ctcvr", "purchases_per_user", "revenue_per_user"].map { key in
                (key, .object([("aa", .double(meanReduction(aa, key))), ("clickbait", .double(meanReduction(effect, key)))]))
            })),
            ("coverage", .object(["ctr", "ctcvr", "naive_ctr", "naive_ctcvr", "cuped_ctr", "cuped_ctcvr"].map { key in
                (key, .object([("aa", .double(coverage(aa, key))), ("clickbait", .double(coverage(effect, key)))]))
            })),
        ]
        return Result(document: .object(results), table: rows, trueLifts: lifts)
    }

    func runMany(_ scenario: Scenario, truth: [String: Double]) throws(PipelineError) -> [Outcome] {
        let users = self.users, seed = self.seed
        return try runSimulations(simulations) { (k) throws(PipelineError) -> Outcome in
            let a = try StatisticsCalibration.analyse(scenario, users: users, seed: seed + UInt64(k) * 7919, cuped: true).0
            var o = Outcome()
            var plainConfig = a.config
            plainConfig.cuped = false
            let plain = Analysis(summary: a.summary, config: plainConfig)
            for c in a.comparisons where c.segment == nil && c.variant == "treatment" {
                if c.metric == .purchasesPerUser { o.cupedPrimarySignificant = c.significant }
                for key in ["ctr", "ctcvr"] where c.metric.rawValue == key {
                    if let ci = c.difference.relativeCI, let t = truth[key] { o.cover["cuped_" + key] = ci.0 <= t && t <= ci.1 }
                }
            }
            for r in a.cuped { o.reduction[r.metric.rawValue] = r.varianceReduction }
            for c in plain.comparisons where c.segment == nil && c.variant == "treatment" {
                if c.metric == .purchasesPerUser { o.primarySignificant = c.significant }
                for key in ["ctr", "ctcvr"] where c.metric.rawValue == key {
                    if let ci = c.difference.relativeCI, let t = truth[key] { o.cover[key] = ci.0 <= t && t <= ci.1 }
                }
            }
            if let control = a.controlIndex, let treatment = a.variants.firstIndex(of: "treatment") {
                let counts = a.perVariant.map(GroupCounts.init)
                let c = counts[control], t = counts[treatment]
                if let ci = StatisticsCalibration.naiveRelativeCI(c.clicks, c.impressions, t.clicks, t.impressions), let tr = truth["ctr"] {
                    o.cover["naive_ctr"] = ci.0 <= tr && tr <= ci.1
                }
                if let ci = StatisticsCalibration.naiveRelativeCI(c.purchases, c.impressions, t.purchases, t.impressions), let tr = truth["ctcvr"] {
                    o.cover["naive_ctcvr"] = ci.0 <= tr && tr <= ci.1
                }
            }
            return o
        }
    }
}
