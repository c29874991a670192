import FunnelBase
import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelStats

/// One comparison of the report (DESIGN.md §5 `comparisons`).
public struct MetricComparison: Sendable {
    public var metric: MetricName
    public var variant: String
    /// nil overall, else `"dimension=value"`.
    public var segment: String?
    public var difference: Difference
    public var adjustedP: Double?
    public var significant: Bool
    /// Always-valid inference (`ab_testing.sequential`), nil when it is off.
    public var sequential: SequentialComparison? = nil

    /// Whether the comparison counts as significant for the verdict: by its always-valid p-value
    /// when sequential inference is on, else by the fixed-horizon one.
    public var decisive: Bool { sequential?.significant ?? significant }
    /// The adjusted p-value the verdict quotes.
    public var decisiveP: Double? { sequential.map { $0.adjustedP } ?? adjustedP }
}

/// A comparison's always-valid interval (absolute and relative) and p-value, with the p-value
/// corrected in the same family as the fixed-horizon ones.
public struct SequentialComparison: Sendable {
    public var method: SequentialMethod
    public var ci: (Double, Double)?
    public var relativeCI: (Double, Double)?
    public var pValue: Double?
    public var adjustedP: Double?
    public var significant: Bool
}

/// What the analysis recommends (DESIGN.md §7, "Verdict").
public enum Verdict: String, Sendable, CaseIterable {
    case ship
    case doNotShip = "do_not_ship"
    case inconclusive
}

/// The statistics of an experiment, computed from its summary alone: per-variant estimates,
/// comparisons with corrections, SRM and the verdict.
public struct Analysis: Sendable {
    public let summary: ExperimentSummary
    public let config: FunnelConfig
    /// Variant names in report order: the control first, then by name.
    public let variants: [String]
    /// Moments of each variant's users (experiment period, then pre-exposure window).
    public let perVariant: [Moments]
    /// Per variant, per position: counted impressions and clicks.
    public let positions: [[Int32: PositionCounts]]
    /// Per variant, per item id: counted impressions, clicks and purchases.
    public let items: [[String: ItemCounts]]
    public let estimates: [[(MetricName, Estimate)]]
    /// (dimension, value) → moments of its users per variant, sorted by dimension and value.
    public let segments: [(dimension: String, value: String, groups: [Moments])]
    public private(set) var comparisons: [MetricComparison] = []
    public let srm: (p: Double?, flag: Bool)
    public let segmentSRM: [(dimension: String, value: String, p: Double?, flag: Bool)]
    public private(set) var verdict: Verdict = .inconclusive
    public private(set) var verdictReasons: [String] = []
    /// CUPED per metric and treatment (empty unless `ab_testing.cuped` is on).
    public private(set) var cuped: [CupedResult] = []

    public var controlIndex: Int? { variants.firstIndex(of: config.control) }
    public var alpha: Double { config.significanceLevel }
    public var dataQuality: DataQuality { summary.dataQuality }

    public init(summary: ExperimentSummary, config: FunnelConfig) {
        self.summary = summary
        self.config = config
        let variants = summary.orderedVariants(control: config.control)
        self.variants = variants
        let parts = variants.map { summary.variants[$0]! }
        perVariant = parts.map(\.users)
        positions = parts.map(\.positions)
        items = parts.map(\.items)
        estimates = perVariant.map { Metrics.estimates($0, alpha: config.significanceLevel) }
        segments = summary.segments.keys.sorted().map { key in
            let groups = summary.segments[key]!
            return (key.dimension, key.value, variants.map { groups[$0] ?? Moments(dimension: Quantity.count) })
        }
        srm = Analysis.srm(counts: perVariant.map { Double($0.count) }, variants: variants, config: config)
        segmentSRM = segments.map { s in
            let r = Analysis.srm(counts: s.groups.map { Double($0.count) }, variants: variants, config: config)
            return (s.dimension, s.value, r.p, r.flag)
        }
        comparisons = compareAll()
        decide()
    }

    /// Chi-square goodness of fit of user counts against `expected_split` (equal split over the
    /// observed variants when null). With a split, its variants without users count as 0 and an
    /// observed variant it does not name has weight 0 (so p = 0).
    static func srm(counts: [Double], variants: [String], config: FunnelConfig) -> (p: Double?, flag: Bool) {
        var observed = counts, weights = counts.map { _ in 1.0 }
        if let split = config.expectedSplit {
            weights = variants.map { split[$0] ?? 0 }
            for (name, w) in split.sorted(by: { $0.key < $1.key }) where !variants.contains(name) {
                observed.append(0)
                weights.append(w)
            }
        }
        let p = Estimators.chiSquareGoodnessOfFit(observed: observed, weights: weights)
        return (p, p.map { $0 < config.srmPThreshold } ?? false)
    }

    /// The comparison of one metric between two groups of users.
    public static func difference(_ metric: MetricName, control c: Moments, treatment t: Moments, alpha: Double) -> Difference {
        Metrics.difference(metric, control: c, treatment: t, alpha: alpha)
    }

    mutating func compareAll() -> [MetricComparison] {
        guard let control = controlIndex else { return [] }
        let treatments = variants.indices.filter { $0 != control }
        var overall: [MetricComparison] = []
        for metric in MetricName.allCases {
            var family: [MetricComparison] = []
            for t in treatments {
                var d = Analysis.difference(metric, control: perVariant[control], treatment: perVariant[t], alpha: alpha)
                var isAdjusted = false
                if config.cuped, let (adjusted, theta, reduction) = Analysis.cupedDifference(metric, control: perVariant[control], treatment: perVariant[t], alpha: alpha) {
                    d = adjusted
                    isAdjusted = true
                    let users = summary.variants[variants[control]]!.usersWithPreData + summary.variants[variants[t]]!.usersWithPreData
                    cuped.append(CupedResult(metric: metric, variant: variants[t], theta: theta, varianceReduction: reduction, usersWithPreData: users))
                }
                family.append(MetricComparison(metric: metric, variant: variants[t], segment: nil, difference: d, adjustedP: nil, significant: false,
                                               sequential: Analysis.sequentialComparison(metric, d, control: perVariant[control], treatment: perVariant[t],
                                                                                         config: config, adjusted: isAdjusted)))
            }
            overall += correct(family)
        }
        var bySegment: [MetricComparison] = []
        for s in segments {
            for metric in MetricName.allCases {
                for t in treatments where s.groups[control].count > 0 && s.groups[t].count > 0 {
                    let d = Analysis.difference(metric, control: s.groups[control], treatment: s.groups[t], alpha: alpha)
                    bySegment.append(MetricComparison(metric: metric, variant: variants[t], segment: "\(s.dimension)=\(s.value)",
                                                      difference: d, adjustedP: nil, significant: false,
                                                      sequential: Analysis.sequentialComparison(metric, d, control: s.groups[control], treatment: s.groups[t],
                                                                                                config: config)))
                }
            }
        }
        return overall + correct(bySegment)
    }

    /// Applies the configured correction to one family, to the fixed-horizon p-values and, apart,
    /// to the always-valid ones; null p-values stay out of it.
    func correct(_ family: [MetricComparison]) -> [MetricComparison] {
        let method = MultipleTesting.Method(rawValue: config.correction.rawValue) ?? .holm
        /// The corrected values of the defined p-values of `ps`, in place (nil stays nil).
        func adjusted(_ ps: [Double?]) -> [Double?] {
            let defined = ps.indices.filter { ps[$0] != nil }
            var out = [Double?](repeating: nil, count: ps.count)
            for (k, p) in MultipleTesting.adjust(defined.map { ps[$0]! }, method: method).enumerated() { out[defined[k]] = p }
            return out
        }
        let fixed = adjusted(family.map(\.difference.pValue)), always = adjusted(family.map { $0.sequential?.pValue })
        var out = family
        for i in out.indices {
            if let p = fixed[i] { out[i].adjustedP = p; out[i].significant = p <= alpha }
            if let p = always[i] { out[i].sequential!.adjustedP = p; out[i].sequential!.significant = p <= alpha }
        }
        return out
    }

    /// The always-valid interval and p-value of a comparison `d` between two groups, or nil when
    /// sequential inference is off. The estimate is `d`'s; its standard error is √(V_t + V_c)
    /// from the groups' estimates (the delta method's for a ratio metric, s²/n for a per-user mean,
    /// p(1 − p)/n for a proportion), or, for a CUPED-adjusted `d` (`adjusted`), from its normal
    /// interval; the relative lift's from its delta-method interval. N is the users of both groups.
    /// The mSPRT's mixing variance follows Statsig: τ² = z²_{α/2}·(σ²_t + σ²_c)/(N_t + N_c) with
    /// σ²_g = N_g·V_g, scaled for the lift by the ratio of the lift's variance to the difference's.
    public static func sequentialComparison(_ metric: MetricName, _ d: Difference, control c: Moments, treatment t: Moments,
                                            config: FunnelConfig, adjusted: Bool = false) -> SequentialComparison? {
        guard config.sequential != .none else { return nil }
        let alpha = config.significanceLevel
        let z = Distributions.normalQuantile(1 - alpha / 2)
        let n = Double(c.count + t.count)
        func normalSE(_ ci: (Double, Double)?) -> Double? { ci.map { ($0.1 - $0.0) / (2 * z) } }
        let vc = Metrics.estimate(metric, c, alpha: alpha).variance, vt = Metrics.estimate(metric, t, alpha: alpha).variance
        var sAbsolute = normalSE(d.ci)
        if !adjusted, let vc, let vt, vc + vt > 0 { sAbsolute = (vc + vt).squareRoot() }
        // τ² per unit of the estimate's variance.
        var mixing: Double? = nil
        if config.sequential == .msprt, let vc, let vt, vc + vt > 0,
           let tau2 = Sequential.statsigMixingVariance(varianceTreatment: vt * Double(t.count), usersTreatment: Double(t.count),
                                                       varianceControl: vc * Double(c.count), usersControl: Double(c.count), alpha: alpha) {
            mixing = tau2 / (vc + vt)
        }
        func always(_ estimate: Double?, _ s: Double?) -> Sequential.Result? {
            guard let estimate, let s else { return nil }
            switch config.sequential {
            case .none: return nil
            case .confidenceSequence: return Sequential.confidenceSequence(estimate: estimate, standardError: s, n: n, alpha: alpha, nStar: config.sequentialTuning)
            case .msprt: return mixing.flatMap { Sequential.msprt(estimate: estimate, standardError: s, tau2: $0 * s * s, alpha: alpha) }
            }
        }
        let absolute = always(d.absoluteDiff, sAbsolute), relative = always(d.relativeLift, normalSE(d.relativeCI))
        return SequentialComparison(method: config.sequential, ci: absolute.map { ($0.lower, $0.upper) }, relativeCI: relative.map { ($0.lower, $0.upper) },
                                    pValue: absolute?.pValue, adjustedP: nil, significant: false)
    }

    /// Verdict (DESIGN.md §7): `inconclusive` on SRM or leakage above 5 % of exposed users;
    /// else `do_not_ship` when the primary metric or a guardrail is significantly worse in any
    /// treatment; else `ship` when the primary is significantly better; else `inconclusive`.
    mutating func decide() {
        let pName = config.sequential == .none ? "p" : "always-valid p (\(config.sequential.rawValue))"
        let dq = summary.dataQuality
        let leakShare = dq.exposedUsers > 0 ? Double(dq.leakedUsers) / Double(dq.exposedUsers) : 0
        if srm.flag {
            verdict = .inconclusive
            verdictReasons = ["sample-ratio mismatch (p = \(fmt(srm.p)) < \(config.srmPThreshold)): the split is broken, so no comparison can be trusted"]
            return
        }
        if leakShare > 0.05 {
            verdict = .inconclusive
            verdictReasons = ["\(percent(leakShare)) of exposed users saw more than one variant (over 5 %)"]
            return
        }
        let overall = comparisons.filter { $0.segment == nil }
        let watched = [config.primaryMetric] + config.guardrailMetrics
        let worse = overall.filter { watched.contains($0.metric) && $0.decisive && ($0.difference.absoluteDiff ?? 0) < 0 }
        if !worse.isEmpty {
            verdict = .doNotShip
            verdictReasons = worse.map { c in
                let role = c.metric == config.primaryMetric ? "primary metric" : "guardrail"
                return "\(role) \(c.metric.rawValue) is significantly worse in \(c.variant) (\(signedPercent(c.difference.relativeLift)), adjusted \(pName) = \(fmt(c.decisiveP)))"
            }
            return
        }
        let better = overall.filter { $0.metric == config.primaryMetric && $0.decisive && ($0.difference.absoluteDiff ?? 0) > 0 }
        if !better.isEmpty {
            verdict = .ship
            verdictReasons = better.map { "primary metric \($0.metric.rawValue) is significantly better in \($0.variant) (\(signedPercent($0.difference.relativeLift)), adjusted \(pName) = \(fmt($0.decisiveP)))" }
            return
        }
        verdict = .inconclusive
        verdictReasons = ["no significant change in the primary metric \(config.primaryMetric.rawValue) and no guardrail significantly worse"]
    }
}

func fmt(_ v: Double?) -> String {
    guard let v else { return "n/a" }
    if v != 0 && abs(v) < 1e-3 { return String(format: "%.2e", v) }
    return String(format: "%.4g", v)
}

func percent(_ v: Double) -> String { String(format: "%.1f %%", v * 100) }

func signedPercent(_ v: Double?) -> String {
    guard let v else { return "n/a" }
    return String(format: "%+.1f %%", v * 100)
}
