import Foundation

/// A point estimate with its two-sided interval and the variance of the estimate (nil when undefined).
public struct Estimate: Sendable, Equatable {
    public var value: Double?
    public var ci: (Double, Double)?
    public var variance: Double?

    public init(value: Double?, ci: (Double, Double)?, variance: Double?) {
        self.value = value; self.ci = ci; self.variance = variance
    }

    public static func == (a: Estimate, b: Estimate) -> Bool {
        a.value == b.value && a.variance == b.variance && a.ci?.0 == b.ci?.0 && a.ci?.1 == b.ci?.1
    }

    public static let undefined = Estimate(value: nil, ci: nil, variance: nil)
}

/// Estimators over per-user values (the user is the randomization unit).
public enum Estimators {
    /// Ratio of per-user sums R = Σx/Σy with the delta-method variance
    /// Var(R) = var(x − R·y, ddof = 1) / (n·ȳ²) (Deng, Knoblich, Lu 2018) and a normal interval.
    public static func ratio(x: [Double], y: [Double], alpha: Double) -> Estimate {
        let n = x.count
        let sx = x.reduce(0, +), sy = y.reduce(0, +)
        guard n > 0, sy != 0 else { return .undefined }
        let r = sx / sy
        guard n >= 2 else { return Estimate(value: r, ci: nil, variance: nil) }
        var mean = 0.0
        for i in 0..<n { mean += x[i] - r * y[i] }
        mean /= Double(n)
        var ss = 0.0
        for i in 0..<n { let d = x[i] - r * y[i] - mean; ss += d * d }
        let ybar = sy / Double(n)
        let variance = ss / Double(n - 1) / (Double(n) * ybar * ybar)
        guard variance > 0 else { return Estimate(value: r, ci: nil, variance: 0) }
        let z = Distributions.normalQuantile(1 - alpha / 2)
        let half = z * variance.squareRoot()
        return Estimate(value: r, ci: (r - half, r + half), variance: variance)
    }

    /// Wilson score interval for a proportion k/n; the variance reported is p(1−p)/n.
    public static func proportion(successes k: Int, trials n: Int, alpha: Double) -> Estimate {
        guard n > 0 else { return .undefined }
        let p = Double(k) / Double(n)
        let z = Distributions.normalQuantile(1 - alpha / 2)
        let z2 = z * z, nd = Double(n)
        let center = (p + z2 / (2 * nd)) / (1 + z2 / nd)
        let half = z / (1 + z2 / nd) * (p * (1 - p) / nd + z2 / (4 * nd * nd)).squareRoot()
        return Estimate(value: p, ci: (center - half, center + half), variance: p * (1 - p) / nd)
    }

    /// Mean with a Student t interval (ddof = 1); the variance reported is s²/n.
    public static func mean(_ v: [Double], alpha: Double) -> Estimate {
        let n = v.count
        guard n > 0 else { return .undefined }
        let m = v.reduce(0, +) / Double(n)
        guard n >= 2 else { return Estimate(value: m, ci: nil, variance: nil) }
        var ss = 0.0
        for x in v { ss += (x - m) * (x - m) }
        let s2 = ss / Double(n - 1)
        let variance = s2 / Double(n)
        guard variance > 0 else { return Estimate(value: m, ci: nil, variance: 0) }
        let t = Distributions.studentTQuantile(1 - alpha / 2, df: Double(n - 1))
        let half = t * variance.squareRoot()
        return Estimate(value: m, ci: (m - half, m + half), variance: variance)
    }

    /// Chi-square goodness-of-fit p-value of `observed` against `weights` normalised to the total
    /// (scipy.stats.chisquare); nil when fewer than two groups or no observations. A group observed
    /// where its weight is 0 is impossible under the expected split: p = 0.
    public static func chiSquareGoodnessOfFit(observed: [Double], weights: [Double]) -> Double? {
        guard observed.count >= 2, observed.count == weights.count else { return nil }
        let total = observed.reduce(0, +), wsum = weights.reduce(0, +)
        guard total > 0, wsum > 0 else { return nil }
        var stat = 0.0
        for i in observed.indices {
            let expected = total * weights[i] / wsum
            if expected == 0 {
                if observed[i] > 0 { return 0 }
                continue
            }
            stat += (observed[i] - expected) * (observed[i] - expected) / expected
        }
        return Distributions.chiSquareSF(stat, df: Double(observed.count - 1))
    }
}
