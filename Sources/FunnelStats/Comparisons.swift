import Foundation

/// A treatment-versus-control comparison of one metric (DESIGN.md §4, §7).
public struct Difference: Sendable {
    public var absoluteDiff: Double?
    public var relativeLift: Double?
    public var ci: (Double, Double)?
    public var relativeCI: (Double, Double)?
    public var pValue: Double?

    public static let undefined = Difference(absoluteDiff: nil, relativeLift: nil, ci: nil, relativeCI: nil, pValue: nil)
}

/// Two-sample comparisons; `c` is control, `t` treatment.
public enum Compare {
    /// Relative lift m_t/m_c − 1 with the delta-method interval
    /// lift ± z·√(V_t/m_c² + m_t²·V_c/m_c⁴), V the variance of each group's estimate.
    static func relative(_ c: Estimate, _ t: Estimate, z: Double) -> (Double?, (Double, Double)?) {
        guard let mc = c.value, let mt = t.value, mc != 0 else { return (nil, nil) }
        let lift = mt / mc - 1
        guard let vc = c.variance, let vt = t.variance else { return (lift, nil) }
        let v = vt / (mc * mc) + mt * mt * vc / (mc * mc * mc * mc)
        guard v > 0 else { return (lift, nil) }
        let half = z * v.squareRoot()
        return (lift, (lift - half, lift + half))
    }

    /// Ratio metrics (delta method): difference R_t − R_c with variance V_t + V_c, normal interval and z-test.
    public static func ratios(control c: Estimate, treatment t: Estimate, alpha: Double) -> Difference {
        guard let rc = c.value, let rt = t.value else { return .undefined }
        let z = Distributions.normalQuantile(1 - alpha / 2)
        let diff = rt - rc
        let (lift, rci) = relative(c, t, z: z)
        guard let vc = c.variance, let vt = t.variance, vc + vt > 0 else {
            return Difference(absoluteDiff: diff, relativeLift: lift, ci: nil, relativeCI: rci, pValue: nil)
        }
        let se = (vc + vt).squareRoot()
        return Difference(absoluteDiff: diff, relativeLift: lift, ci: (diff - z * se, diff + z * se), relativeCI: rci,
                          pValue: Distributions.normalTwoSidedP(diff / se))
    }

    /// Proportions: pooled two-proportion z-test (statsmodels `proportions_ztest`) for the p-value and
    /// the unpooled Wald interval for the difference.
    public static func proportions(kc: Int, nc: Int, kt: Int, nt: Int, alpha: Double) -> Difference {
        guard nc > 0, nt > 0 else { return .undefined }
        let pc = Double(kc) / Double(nc), pt = Double(kt) / Double(nt)
        let z = Distributions.normalQuantile(1 - alpha / 2)
        let diff = pt - pc
        let c = Estimate(value: pc, ci: nil, variance: pc * (1 - pc) / Double(nc))
        let t = Estimate(value: pt, ci: nil, variance: pt * (1 - pt) / Double(nt))
        let (lift, rci) = relative(c, t, z: z)
        let wald = (c.variance! + t.variance!).squareRoot()
        let ci: (Double, Double)? = wald > 0 ? (diff - z * wald, diff + z * wald) : nil
        let pool = Double(kc + kt) / Double(nc + nt)
        let se = (pool * (1 - pool) * (1 / Double(nc) + 1 / Double(nt))).squareRoot()
        let p: Double? = se > 0 ? Distributions.normalTwoSidedP(diff / se) : nil
        return Difference(absoluteDiff: diff, relativeLift: lift, ci: ci, relativeCI: rci, pValue: p)
    }

    /// Means: Welch's t-test (scipy `ttest_ind(equal_var=False)`) and the Welch–Satterthwaite interval.
    public static func means(control a: [Double], treatment b: [Double], alpha: Double) -> Difference {
        means(control: Estimators.mean(a, alpha: alpha), count: a.count, treatment: Estimators.mean(b, alpha: alpha), count: b.count, alpha: alpha)
    }

    /// Welch's test from each group's mean estimate (variance s²/n) and its number of units.
    public static func means(control c: Estimate, count na: Int, treatment t: Estimate, count nb: Int, alpha: Double) -> Difference {
        guard let mc = c.value, let mt = t.value else { return .undefined }
        let diff = mt - mc
        let (lift, rci) = relative(c, t, z: Distributions.normalQuantile(1 - alpha / 2))
        guard let vc = c.variance, let vt = t.variance, na >= 2, nb >= 2, vc + vt > 0 else {
            return Difference(absoluteDiff: diff, relativeLift: lift, ci: nil, relativeCI: rci, pValue: nil)
        }
        let se = (vc + vt).squareRoot()
        let df = (vc + vt) * (vc + vt) / (vc * vc / Double(na - 1) + vt * vt / Double(nb - 1))
        let tq = Distributions.studentTQuantile(1 - alpha / 2, df: df)
        return Difference(absoluteDiff: diff, relativeLift: lift, ci: (diff - tq * se, diff + tq * se), relativeCI: rci,
                          pValue: Distributions.studentTTwoSidedP(diff / se, df: df))
    }
}

/// Multiple-testing corrections (statsmodels `multipletests`: `bonferroni`, `holm`, `fdr_bh`).
public enum MultipleTesting {
    public enum Method: String, Sendable { case holm, bonferroni, benjaminiHochberg = "benjamini_hochberg", none }

    /// Adjusted p-values in the order given.
    public static func adjust(_ p: [Double], method: Method) -> [Double] {
        let m = p.count
        guard m > 0 else { return [] }
        let order = p.indices.sorted { p[$0] < p[$1] || (p[$0] == p[$1] && $0 < $1) }
        var adjusted = [Double](repeating: 0, count: m)
        switch method {
        case .none:
            return p
        case .bonferroni:
            return p.map { min(1, $0 * Double(m)) }
        case .holm:
            var running = 0.0
            for (rank, i) in order.enumerated() {
                running = max(running, min(1, Double(m - rank) * p[i]))
                adjusted[i] = running
            }
        case .benjaminiHochberg:
            var running = 1.0
            for rank in stride(from: m - 1, through: 0, by: -1) {
                let i = order[rank]
                running = min(running, min(1, Double(m) / Double(rank + 1) * p[i]))
                adjusted[i] = running
            }
        }
        return adjusted
    }
}

extension Estimators {
    /// Chi-square test of independence for an r×c table of counts (rows or columns that are all
    /// zero are dropped); returns (statistic, degrees of freedom, p-value).
    public static func chiSquareIndependence(_ table: [[Double]]) -> (stat: Double, df: Int, p: Double)? {
        let rows = table.filter { $0.reduce(0, +) > 0 }
        guard rows.count >= 2, let width = rows.first?.count else { return nil }
        let keep = (0..<width).filter { j in rows.reduce(0) { $0 + $1[j] } > 0 }
        guard keep.count >= 2 else { return nil }
        let t = rows.map { r in keep.map { r[$0] } }
        let total = t.reduce(0) { $0 + $1.reduce(0, +) }
        let rowSums = t.map { $0.reduce(0, +) }
        let colSums = keep.indices.map { j in t.reduce(0) { $0 + $1[j] } }
        var stat = 0.0
        for i in t.indices {
            for j in colSums.indices {
                let e = rowSums[i] * colSums[j] / total
                stat += (t[i][j] - e) * (t[i][j] - e) / e
            }
        }
        let df = (t.count - 1) * (colSums.count - 1)
        return (stat, df, Distributions.chiSquareSF(stat, df: Double(df)))
    }
}
