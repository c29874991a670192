import FunnelAttribution
import FunnelConfig
import FunnelStats

/// CUPED-adjusted comparisons (`ab_testing.cuped: true`), overall only.
extension Analysis {
    /// What CUPED did for one metric and treatment.
    public struct CupedResult: Sendable {
        public var metric: MetricName
        public var variant: String
        public var theta: Double
        /// 1 − Var(adjusted difference)/Var(unadjusted difference).
        public var varianceReduction: Double
        public var usersWithPreData: Int
    }

    /// Per-user (outcome, denominator) of a metric; denominator 1 for per-user metrics.
    static func parts(_ metric: MetricName, _ s: UserStats) -> (Double, Double) { metric.parts(s) }

    /// The CUPED comparison of one metric between control and treatment users (stats, pre-period stats).
    static func cupedDifference(_ metric: MetricName, control c: [(UserStats, UserStats)], treatment t: [(UserStats, UserStats)],
                                alpha: Double) -> (Difference, Double, Double)? {
        let all = c + t
        // Pre-period covariate, linearised around the pooled pre-period ratio.
        let preY = all.reduce(0.0) { $0 + parts(metric, $1.1).0 }, preN = all.reduce(0.0) { $0 + parts(metric, $1.1).1 }
        guard preN > 0 else { return nil }
        let preR = preY / preN, preNbar = preN / Double(all.count)
        func x(_ u: (UserStats, UserStats)) -> Double { let (y, n) = parts(metric, u.1); return (y - preR * n) / preNbar }
        // Outcome, linearised around each group's own ratio.
        func group(_ users: [(UserStats, UserStats)]) -> (base: Double, y: [Double], x: [Double])? {
            let sy = users.reduce(0.0) { $0 + parts(metric, $1.0).0 }, sn = users.reduce(0.0) { $0 + parts(metric, $1.0).1 }
            guard sn > 0 else { return nil }
            let r = sy / sn, nbar = sn / Double(users.count)
            return (r, users.map { let (y, n) = parts(metric, $0.0); return (y - r * n) / nbar }, users.map(x))
        }
        guard let gc = group(c), let gt = group(t), let theta = CUPED.theta([(gc.y, gc.x), (gt.y, gt.x)]) else { return nil }
        let xAll = all.map(x).reduce(0, +) / Double(all.count)
        guard let ac = CUPED.adjust(base: gc.base, y: gc.y, x: gc.x, theta: theta, xAll: xAll),
              let at = CUPED.adjust(base: gt.base, y: gt.y, x: gt.x, theta: theta, xAll: xAll) else { return nil }
        let ec = Estimate(value: ac.value, ci: nil, variance: ac.variance), et = Estimate(value: at.value, ci: nil, variance: at.variance)
        let d = Compare.ratios(control: ec, treatment: et, alpha: alpha)
        // Unadjusted variance of the difference from the same linearisation (θ = 0).
        guard let pc = CUPED.adjust(base: gc.base, y: gc.y, x: gc.x, theta: 0, xAll: xAll),
              let pt = CUPED.adjust(base: gt.base, y: gt.y, x: gt.x, theta: 0, xAll: xAll), pc.variance + pt.variance > 0 else { return nil }
        let reduction = 1 - (ac.variance + at.variance) / (pc.variance + pt.variance)
        return (d, theta, reduction)
    }
}
