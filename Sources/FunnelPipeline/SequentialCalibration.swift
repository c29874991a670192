import Foundation
import FunnelBase
import FunnelAnalysis
import FunnelAttribution
import FunnelConfig
import FunnelStats

/// Checks sequential inference by simulation: experiments whose users arrive day by day, looked at
/// every day. Per look, the comparison is the report's own: the metric's difference from the
/// cumulative per-user moments (`Metrics.difference`) and its always-valid interval and p-value
/// (`Analysis.sequentialComparison`). Reported per method (fixed horizon, confidence sequence,
/// mSPRT): on A/A experiments the share ever declared significant over the looks and the coverage
/// of the true difference (0) at every look and at all looks at once; on experiments with a known
/// lift the share detected by the last day and the days to detection.
public struct SequentialCalibration: Sendable {
    public enum Metric: String, CaseIterable, Sendable {
        /// Users who buy, a proportion: base rate `rate`.
        case userConversionRate = "user_conversion_rate"
        /// Clicks over impressions, a ratio of per-user sums (delta method): each user has 1 + Poisson(4)
        /// impressions, each clicked with probability `rate`.
        case ctr
    }

    public var experiments: Int
    public var days: Int
    /// New users per arm per day.
    public var usersPerDay: Int
    public var metric: Metric
    /// The control's rate (conversion or click probability).
    public var rate: Double
    /// The relative lift of the experiments with a known effect (the A/A ones have none).
    public var lift: Double
    public var alpha: Double
    /// The confidence sequence's N*.
    public var tuning: Double
    /// Experiment k uses seed + 7919·k.
    public var seed: UInt64

    public init(experiments: Int = 1000, days: Int = 28, usersPerDay: Int = 200, metric: Metric = .userConversionRate, rate: Double = 0.1,
                lift: Double = 0.1, alpha: Double = 0.05, tuning: Double = Sequential.defaultTuning, seed: UInt64 = 2000) {
        self.experiments = experiments
        self.days = days
        self.usersPerDay = usersPerDay
        self.metric = metric
        self.rate = rate
        self.lift = lift
        self.alpha = alpha
        self.tuning = tuning
        self.seed = seed
    }

    public static let methods: [SequentialMethod] = [.none, .confidenceSequence, .msprt]

    /// One method's results.
    public struct MethodResult: Sendable {
        public var method: SequentialMethod
        /// A/A: share of experiments significant at some look.
        public var everSignificant: Double
        /// A/A: share of experiments significant at the last look.
        public var significantAtEnd: Double
        /// A/A: the smallest, over the looks, share of experiments whose interval covers 0.
        public var worstLookCoverage: Double
        /// A/A: share of experiments whose interval covers 0 at every look.
        public var allLooksCoverage: Double
        /// Known lift: share of experiments detected (significant in the lift's direction) by the last day.
        public var power: Double
        /// Known lift: share significant in the lift's direction at the last look alone (a single test at the planned end).
        public var powerAtEnd: Double
        /// Known lift: the median day of first detection among the detected, nil when none was.
        public var medianDetectionDay: Double?
        /// Known lift: share of experiments whose interval covers the true difference at every look.
        public var effectAllLooksCoverage: Double
    }

    public struct Result: Sendable {
        public var methods: [MethodResult]
        /// The true difference of the metric in the experiments with a lift.
        public var trueDifference: Double
        public var document: JSONValue
        public var table: [[String]]
    }

    /// Per look and method: whether it is significant, whether its interval covers the truth,
    /// and whether the estimate is above 0.
    struct Path: Sendable { var looks: [[(significant: Bool, covers: Bool, positive: Bool)]] }

    /// One experiment: its users day by day, a comparison per look.
    func simulate(_ k: Int, treatmentRate: Double, truth: Double) throws(PipelineError) -> Path {
        var rng = SplitMix64(seed: seed &+ 7919 &* UInt64(k))
        var control = Moments(dimension: 2 * Quantity.count), treatment = Moments(dimension: 2 * Quantity.count)
        var x = [Double](repeating: 0, count: 2 * Quantity.count)
        let name: MetricName = metric == .ctr ? .ctr : .userConversionRate
        var path = Path(looks: [])
        for _ in 0..<days {
            for arm in 0..<2 {
                let p = arm == 0 ? rate : treatmentRate
                for _ in 0..<usersPerDay {
                    for j in x.indices { x[j] = 0 }
                    switch metric {
                    case .userConversionRate:
                        x[Quantity.converting.rawValue] = rng.unit() < p ? 1 : 0
                    case .ctr:
                        let impressions = 1 + poisson(4, &rng)
                        var clicks = 0
                        for _ in 0..<impressions where rng.unit() < p { clicks += 1 }
                        x[Quantity.impressions.rawValue] = Double(impressions)
                        x[Quantity.clicks.rawValue] = Double(clicks)
                    }
                    do {
                        try x.withUnsafeBufferPointer { (b) throws(MomentsRangeError) in
                            if arm == 0 { try control.add(b) } else { try treatment.add(b) }
                        }
                    } catch {
                        throw PipelineError("sequential calibration: a simulated user's values are out of range (\(error))")
                    }
                }
            }
            var config = FunnelConfig()
            config.significanceLevel = alpha
            config.sequentialTuning = tuning
            let d = Metrics.difference(name, control: control, treatment: treatment, alpha: alpha)
            var look: [(Bool, Bool, Bool)] = []
            for method in Self.methods {
                config.sequential = method
                var lower: Double? = d.ci?.0, upper: Double? = d.ci?.1, p = d.pValue
                if method != .none, let s = Analysis.sequentialComparison(name, d, control: control, treatment: treatment, config: config) {
                    lower = s.ci?.0; upper = s.ci?.1; p = s.pValue
                }
                let significant = (p ?? 1) <= alpha
                let covers = (lower.map { $0 <= truth } ?? true) && (upper.map { truth <= $0 } ?? true)
                look.append((significant, covers, (d.absoluteDiff ?? 0) > 0))
            }
            path.looks.append(look)
        }
        return path
    }

    /// Poisson(λ) by inversion (small λ).
    func poisson(_ lambda: Double, _ rng: inout SplitMix64) -> Int {
        var k = 0, p = exp(-lambda), cumulative = p
        let u = rng.unit()
        while u > cumulative && k < 100 { k += 1; p *= lambda / Double(k); cumulative += p }
        return k
    }

    public func run() throws(PipelineError) -> Result {
        let treatmentRate = rate * (1 + lift)
        // For ctr the per-impression click probability is the ratio's limit, so the true difference is the rates'.
        let trueDifference = treatmentRate - rate
        let slots = ResultSlots<Result2>(count: 2 * experiments)
        let total = 2 * experiments
        DispatchQueue.concurrentPerform(iterations: 2) { part in
            var k = part
            while k < total {
                let aa = k < experiments
                do throws(PipelineError) {
                    slots.set(k, .success(try simulate(aa ? k : k - experiments + 1_000_003, treatmentRate: aa ? rate : treatmentRate,
                                                       truth: aa ? 0 : trueDifference)))
                } catch {
                    slots.set(k, .failure(error))
                }
                k += 2
            }
        }
        var paths: [Path] = []
        for r in slots.values() {
            switch r {
            case .success(let p): paths.append(p)
            case .failure(let e): throw e
            }
        }
        let aa = Array(paths[..<experiments]), effect = Array(paths[experiments...])
        var methods: [MethodResult] = []
        for (m, method) in Self.methods.enumerated() {
            let ever = aa.filter { $0.looks.contains { $0[m].significant } }.count
            let atEnd = aa.filter { $0.looks.last![m].significant }.count
            let worst = (0..<days).map { d in aa.filter { $0.looks[d][m].covers }.count }.min() ?? 0
            let all = aa.filter { $0.looks.allSatisfy { $0[m].covers } }.count
            // Detection: the first look significant with the difference's sign (the lift is positive).
            var detection: [Int] = []
            for p in effect {
                if let d = p.looks.firstIndex(where: { $0[m].significant && $0[m].positive }) { detection.append(d + 1) }
            }
            detection.sort()
            let median: Double? = detection.isEmpty ? nil
                : detection.count % 2 == 1 ? Double(detection[detection.count / 2]) : Double(detection[detection.count / 2 - 1] + detection[detection.count / 2]) / 2
            let effectAll = effect.filter { $0.looks.allSatisfy { $0[m].covers } }.count
            let atEndDetected = effect.filter { $0.looks.last![m].significant && $0.looks.last![m].positive }.count
            let n = Double(experiments)
            methods.append(MethodResult(method: method, everSignificant: Double(ever) / n, significantAtEnd: Double(atEnd) / n,
                                        worstLookCoverage: Double(worst) / n, allLooksCoverage: Double(all) / n,
                                        power: Double(detection.count) / n, powerAtEnd: Double(atEndDetected) / n, medianDetectionDay: median, effectAllLooksCoverage: Double(effectAll) / n))
        }
        func name(_ m: SequentialMethod) -> String { m == .none ? "fixed horizon" : m.rawValue }
        var table: [[String]] = [["method", "A/A ever significant", "A/A significant at end", "coverage, worst look", "coverage, all looks",
                                  "lift detected by day \(days)", "median day of detection", "lift significant on day \(days)", "lift coverage, all looks"]]
        func pct(_ v: Double) -> String { String(format: "%.1f %%", v * 100) }
        for r in methods {
            table.append([name(r.method), pct(r.everSignificant), pct(r.significantAtEnd), pct(r.worstLookCoverage), pct(r.allLooksCoverage),
                          pct(r.power), r.medianDetectionDay.map { String(format: "%.1f", $0) } ?? "—", pct(r.powerAtEnd), pct(r.effectAllLooksCoverage)])
        }
        let doc: JSONValue = .object([
            ("experiments", .int(experiments)), ("days", .int(days)), ("users_per_day_per_arm", .int(usersPerDay)),
            ("metric", .string(metric.rawValue)), ("rate", .double(rate)), ("lift", .double(lift)), ("alpha", .double(alpha)),
            ("tuning", .double(tuning)), ("seed", .int(Int(seed))), ("true_difference", .double(trueDifference)),
            ("methods", .array(methods.map { r in
                .object([("method", .string(r.method.rawValue)), ("aa_ever_significant", .double(r.everSignificant)),
                         ("aa_significant_at_end", .double(r.significantAtEnd)), ("aa_worst_look_coverage", .double(r.worstLookCoverage)),
                         ("aa_all_looks_coverage", .double(r.allLooksCoverage)), ("power", .double(r.power)), ("power_at_end", .double(r.powerAtEnd)),
                         ("median_detection_day", .number(r.medianDetectionDay)), ("effect_all_looks_coverage", .double(r.effectAllLooksCoverage))])
            })),
        ])
        return Result(methods: methods, trueDifference: trueDifference, document: doc, table: table)
    }

    typealias Result2 = Swift.Result<Path, PipelineError>
}
