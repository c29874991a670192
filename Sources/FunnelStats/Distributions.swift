import Foundation

/// Distribution functions used by the tests and intervals, in double precision.
public enum Distributions {
    /// Standard normal CDF Φ(x) = erfc(−x/√2)/2.
    public static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }

    /// Two-sided p-value of a standard normal statistic, 2·(1 − Φ(|z|)), computed without cancellation.
    public static func normalTwoSidedP(_ z: Double) -> Double { erfc(abs(z) / 2.0.squareRoot()) }

    /// Standard normal quantile Φ⁻¹(p): Acklam's rational approximation refined by two Halley steps
    /// on erfc, accurate to about 1e-15 relative.
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "normalQuantile needs 0 < p < 1")
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q+c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q+1)
        } else if p <= 1 - low {
            let q = p - 0.5, r = q * q
            x = (((((a[0]*r+a[1])*r+a[2])*r+a[3])*r+a[4])*r+a[5])*q / (((((b[0]*r+b[1])*r+b[2])*r+b[3])*r+b[4])*r+1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0]*q+c[1])*q+c[2])*q+c[3])*q+c[4])*q+c[5]) / ((((d[0]*q+d[1])*q+d[2])*q+d[3])*q+1)
        }
        for _ in 0..<2 {
            let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
            let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
            x = x - u / (1 + x * u / 2)
        }
        return x
    }

    /// Regularized upper incomplete gamma Q(a, x) (series for x < a + 1, else Lentz continued fraction).
    public static func gammaQ(_ a: Double, _ x: Double) -> Double {
        if x <= 0 { return 1 }
        let lnPrefix = -x + a * log(x) - lgamma(a)
        if x < a + 1 {
            var sum = 1.0 / a, term = sum, ap = a
            for _ in 0..<10_000 {
                ap += 1; term *= x / ap; sum += term
                if abs(term) < abs(sum) * 1e-17 { break }
            }
            return 1 - sum * exp(lnPrefix)
        }
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1..<10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b; if abs(d) < tiny { d = tiny }
            c = b + an / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-17 { break }
        }
        return exp(lnPrefix) * h
    }

    /// Survival function of the chi-square distribution with `df` degrees of freedom.
    public static func chiSquareSF(_ x: Double, df: Double) -> Double { gammaQ(df / 2, x / 2) }

    /// Regularized incomplete beta I_x(a, b) by Lentz's continued fraction.
    public static func incompleteBeta(_ a: Double, _ b: Double, _ x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let lnFront = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x)
        if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(b, a, 1 - x) }
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1..<10_000 {
            let md = Double(m)
            var num = md * (b - md) * x / ((a + 2 * md - 1) * (a + 2 * md))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            num = -(a + md) * (a + b + md) * x / ((a + 2 * md) * (a + 2 * md + 1))
            d = 1 + num * d; if abs(d) < tiny { d = tiny }
            c = 1 + num / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return exp(lnFront) * h / a
    }

    /// Two-sided p-value of Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2).
    public static func studentTTwoSidedP(_ t: Double, df: Double) -> Double {
        incompleteBeta(df / 2, 0.5, df / (df + t * t))
    }

    /// Quantile of Student's t (p in (0, 1)) by bisection on the CDF to machine precision.
    public static func studentTQuantile(_ p: Double, df: Double) -> Double {
        if p == 0.5 { return 0 }
        let upper = p > 0.5
        let tail = upper ? 1 - p : p  // one-sided tail probability
        var lo = 0.0, hi = 1.0
        while studentTTwoSidedP(hi, df: df) / 2 > tail { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if studentTTwoSidedP(mid, df: df) / 2 > tail { lo = mid } else { hi = mid }
            if hi - lo <= 1e-15 * hi { break }
        }
        let t = (lo + hi) / 2
        return upper ? t : -t
    }
}
