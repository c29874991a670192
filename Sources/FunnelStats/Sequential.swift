import Foundation

/// Always-valid inference for an asymptotically normal estimate θ̂ with standard error s: an
/// interval that covers the truth at every look at once with probability ≥ 1 − α, and a p-value
/// that stays valid however often it is looked at. docs/statistics.md gives the formulas and
/// their sources; `tools/fixtures/make_sequential_fixtures.py` implements them independently.
public enum Sequential {
    public enum Method: String, CaseIterable, Sendable, Codable {
        /// Fixed-horizon tests only.
        case none
        /// The asymptotic confidence sequence of Waudby-Smith et al. (2021), as GrowthBook computes it.
        case confidenceSequence = "confidence-sequence"
        /// The mixture sequential probability ratio test (Johari et al. 2017) with a normal mixing
        /// distribution whose variance is set from the data as Statsig documents.
        case msprt
    }

    /// An always-valid interval and p-value.
    public struct Result: Sendable, Equatable {
        public var lower: Double
        public var upper: Double
        public var pValue: Double
    }

    /// GrowthBook's default tuning parameter N*, the total sample size at which the interval is tightest.
    public static let defaultTuning = 5000.0

    /// The asymptotic confidence sequence at total sample size `n` (both arms), tuned for `nStar`:
    /// ρ = √((−2 ln α + ln(−2 ln α + 1)) / N*), half-width = s·√N·√(2(Nρ² + 1)/(N²ρ²)·ln(√(Nρ² + 1)/α)).
    /// Its p-value, min(1, 1/E) with ln E = ρ²(θ̂²N/s²)/(2(Nρ² + 1)) − ln √(Nρ² + 1) (ρ at the configured
    /// α), is the smallest level at which the interval with that ρ excludes 0. nil without a
    /// positive standard error or sample.
    public static func confidenceSequence(estimate: Double, standardError s: Double, n: Double, alpha: Double,
                                          nStar: Double = defaultTuning) -> Result? {
        guard s > 0, s.isFinite, n > 0, nStar > 0, alpha > 0, alpha < 1, estimate.isFinite else { return nil }
        let l = -2 * log(alpha)
        let rho2 = (l + log(l + 1)) / nStar
        let nr2 = n * rho2
        let half = s * n.squareRoot() * (2 * (nr2 + 1) / (n * n * rho2) * log((nr2 + 1).squareRoot() / alpha)).squareRoot()
        let logE = rho2 * (estimate * estimate * n / (s * s)) / (2 * (nr2 + 1)) - log((nr2 + 1).squareRoot())
        return Result(lower: estimate - half, upper: estimate + half, pValue: min(1, exp(-logE)))
    }

    /// The mixing variance Statsig documents: τ² = z²_{α/2}·(var(X_t) + var(X_c))/(N_t + N_c), the
    /// per-user variances and user counts of the two groups.
    public static func statsigMixingVariance(varianceTreatment vt: Double, usersTreatment nt: Double, varianceControl vc: Double,
                                             usersControl nc: Double, alpha: Double) -> Double? {
        guard nt + nc > 0, vt >= 0, vc >= 0 else { return nil }
        let z = Distributions.normalQuantile(1 - alpha / 2)
        return z * z * (vt + vc) / (nt + nc)
    }

    /// The mixture SPRT with mixing variance τ² for an estimate of variance V = s²:
    /// Λ = √(V/(V + τ²))·exp(τ²θ̂²/(2V(V + τ²))), the always-valid p-value min(1, 1/Λ), and the
    /// interval {θ₀ : Λ(θ̂ − θ₀) < 1/α} = θ̂ ± √(V(V + τ²)/τ²·(2 ln(1/α) + ln((V + τ²)/V))).
    public static func msprt(estimate: Double, standardError s: Double, tau2: Double, alpha: Double) -> Result? {
        guard s > 0, s.isFinite, tau2 > 0, alpha > 0, alpha < 1, estimate.isFinite else { return nil }
        let v = s * s
        let logLambda = 0.5 * log(v / (v + tau2)) + tau2 * estimate * estimate / (2 * v * (v + tau2))
        let half = (v * (v + tau2) / tau2 * (2 * log(1 / alpha) + log((v + tau2) / v))).squareRoot()
        return Result(lower: estimate - half, upper: estimate + half, pValue: min(1, exp(-logLambda)))
    }
}
