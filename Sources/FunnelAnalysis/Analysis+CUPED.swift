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

    /// The CUPED comparison of one metric between the control and treatment groups, from the
    /// moments of their experiment-period and pre-exposure quantities. Every sum below is the
    /// per-user formula of `CUPED` written through the moments (exact up to rounding).
    static func cupedDifference(_ metric: MetricName, control c: Moments, treatment t: Moments,
                                alpha: Double) -> (Difference, Double, Double)? {
        let (num, den) = metric.coordinates
        let k = Quantity.count
        // Y and N of the metric as combinations of a user's quantities; N = 1 for per-user metrics.
        func part(_ i: Int?, offset: Int) -> Combination { i.map { Combination.quantity($0 + offset) } ?? Combination([], constant: 1) }
        let y = part(num, offset: 0), n = part(den, offset: 0), preY = part(num, offset: k), preN = part(den, offset: k)
        var all = c
        all.merge(t)
        // Pre-period covariate, linearised around the pooled pre-period ratio.
        let sPreY = all.total(preY).value, sPreN = all.total(preN).value
        guard sPreN > 0, all.count > 0 else { return nil }
        let preR = sPreY / sPreN, preNbar = sPreN / Double(all.count)
        let x = preY.minus(preN.scaled(preR)).scaled(1 / preNbar)
        // Outcome, linearised around each group's own ratio.
        func group(_ m: Moments) -> (base: Double, y: Combination)? {
            let sy = m.total(y).value, sn = m.total(n).value
            guard sn > 0, m.count > 0 else { return nil }
            let r = sy / sn, nbar = sn / Double(m.count)
            return (r, y.minus(n.scaled(r)).scaled(1 / nbar))
        }
        guard let gc = group(c), let gt = group(t) else { return nil }
        // θ pooled within groups.
        let sxy = c.centredCross(x, gc.y) + t.centredCross(x, gt.y)
        let sxx = c.centredSquares(x) + t.centredSquares(x)
        guard sxx > 0 else { return nil }
        let theta = sxy / sxx
        let xAll = all.mean(x)!
        func adjust(_ m: Moments, _ g: (base: Double, y: Combination), theta: Double) -> CUPED.Adjusted? {
            guard m.count >= 2 else { return nil }
            let v = m.centredSquares(g.y.minus(x.scaled(theta))) / Double(m.count - 1) / Double(m.count)
            return CUPED.Adjusted(value: g.base - theta * (m.mean(x)! - xAll), variance: v)
        }
        guard let ac = adjust(c, gc, theta: theta), let at = adjust(t, gt, theta: theta) else { return nil }
        let ec = Estimate(value: ac.value, ci: nil, variance: ac.variance), et = Estimate(value: at.value, ci: nil, variance: at.variance)
        let d = Compare.ratios(control: ec, treatment: et, alpha: alpha)
        // Unadjusted variance of the difference from the same linearisation (θ = 0).
        guard let pc = adjust(c, gc, theta: 0), let pt = adjust(t, gt, theta: 0), pc.variance + pt.variance > 0 else { return nil }
        let reduction = 1 - (ac.variance + at.variance) / (pc.variance + pt.variance)
        return (d, theta, reduction)
    }
}
