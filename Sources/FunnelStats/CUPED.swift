/// CUPED (Deng, Xu, Kohavi, Walker 2013): a per-user covariate X from before the experiment removes
/// the part of the outcome's variance it predicts, Y* = Y − θ(X − X̄), with θ = cov(X, Y)/var(X)
/// pooled within groups. Unbiased because X is independent of the assignment.
///
/// Ratio metrics are handled through their per-user linearisation (Deng, Knoblich, Lu 2018):
/// y_i = (Y_i − R·N_i)/N̄ and x_i = (Y'_i − R'·N'_i)/N̄' for the pre-period ratio R'; the adjusted
/// ratio is R − θ(x̄_group − x̄_all) with variance var(y − θx)/n.
public enum CUPED {
    /// A group's adjusted estimate: the point value, its variance, and the unadjusted variance.
    public struct Adjusted: Sendable {
        public var value: Double
        public var variance: Double
        public init(value: Double, variance: Double) { self.value = value; self.variance = variance }
    }

    /// θ pooled within groups: Σ_g Σ_i (x−x̄_g)(y−ȳ_g) / Σ_g Σ_i (x−x̄_g)²; nil when x has no variance.
    public static func theta(_ groups: [(y: [Double], x: [Double])]) -> Double? {
        var sxy = 0.0, sxx = 0.0
        for g in groups where !g.y.isEmpty {
            let my = g.y.reduce(0, +) / Double(g.y.count), mx = g.x.reduce(0, +) / Double(g.x.count)
            for i in g.y.indices {
                sxy += (g.x[i] - mx) * (g.y[i] - my)
                sxx += (g.x[i] - mx) * (g.x[i] - mx)
            }
        }
        return sxx > 0 ? sxy / sxx : nil
    }

    /// Adjusted estimate of a group: `base` − θ(x̄ − `xAll`), variance var(y − θx, ddof 1)/n.
    public static func adjust(base: Double, y: [Double], x: [Double], theta: Double, xAll: Double) -> Adjusted? {
        let n = y.count
        guard n >= 2 else { return nil }
        let r = y.indices.map { y[$0] - theta * x[$0] }
        let m = r.reduce(0, +) / Double(n)
        let v = r.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1) / Double(n)
        let xMean = x.reduce(0, +) / Double(n)
        return Adjusted(value: base - theta * (xMean - xAll), variance: v)
    }
}
