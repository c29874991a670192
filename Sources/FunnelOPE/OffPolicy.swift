import Foundation
import FunnelBase

/// Off-policy estimators of an evaluation policy's expected reward per round, from logged data
/// (definitions as in Saito et al.'s Open Bandit Pipeline; w_i = π(a_i | k_i) / p_i):
/// - `ipw`: mean(w·r); `snipw`: Σ w·r / Σ w;
/// - `dm`: mean(Σ_a π(a|k_i) q̂(x_i, a, k_i));
/// - `dr`: dm_i + w_i (r_i − q̂_i); `sndr`: dm_i + w_i (r_i − q̂_i) / mean(w);
/// - `switch-dr`: dr with the correction only where w_i ≤ τ;
/// - `dros`: dm_i + w̃_i (r_i − q̂_i) with w̃ = λw/(w² + λ) (optimistic shrinkage).
public enum OffPolicy {
    public enum Estimator: String, CaseIterable, Sendable {
        case dm, ipw, snipw, dr, sndr, switchDR = "switch-dr", dros
        public var needsModel: Bool { ![.ipw, .snipw].contains(self) }
    }

    /// The per-round inputs of every estimator.
    public struct Inputs: Sendable {
        public var weights: [Double]
        public var rewards: [Double]
        public var qLogged: [Double]?
        public var qExpected: [Double]?
        /// Cluster of each round (the user) for the bootstrap; rounds are independent when nil.
        public var clusters: [Int32]? = nil

        public init(weights: [Double], rewards: [Double], qLogged: [Double]?, qExpected: [Double]?) {
            self.weights = weights
            self.rewards = rewards
            self.qLogged = qLogged
            self.qExpected = qExpected
        }
    }

    public struct Settings: Sendable {
        public var switchTau = 100.0
        public var drosLambda = 100.0
        public init() {}
    }

    /// Importance weights π(a_i | k_i) / p_i.
    public static func weights(_ data: LoggedBandit, _ policy: EvaluationPolicy) -> [Double] {
        (0..<data.count).map { i in
            policy.probability(data, round: i, action: Int(data.actions[i]), position: Int(data.positions[i])) / data.propensities[i]
        }
    }

    /// The estimate over the rounds `idx` (all rounds when nil).
    public static func estimate(_ e: Estimator, _ x: Inputs, settings: Settings = Settings(), rounds idx: [Int]? = nil) -> Double? {
        let rows = idx ?? Array(0..<x.weights.count)
        guard !rows.isEmpty else { return nil }
        let n = Double(rows.count)
        switch e {
        case .ipw:
            return rows.reduce(0.0) { $0 + x.weights[$1] * x.rewards[$1] } / n
        case .snipw:
            let sw = rows.reduce(0.0) { $0 + x.weights[$1] }
            return sw > 0 ? rows.reduce(0.0) { $0 + x.weights[$1] * x.rewards[$1] } / sw : nil
        default:
            guard let ql = x.qLogged, let qe = x.qExpected else { return nil }
            let meanW = rows.reduce(0.0) { $0 + x.weights[$1] } / n
            var total = 0.0
            for i in rows {
                let w = x.weights[i], residual = x.rewards[i] - ql[i]
                switch e {
                case .dm: total += qe[i]
                case .dr: total += qe[i] + w * residual
                case .sndr: total += qe[i] + (meanW > 0 ? w / meanW : 0) * residual
                case .switchDR: total += qe[i] + (w <= settings.switchTau ? w * residual : 0)
                case .dros: total += qe[i] + (settings.drosLambda * w / (w * w + settings.drosLambda)) * residual
                default: break
                }
            }
            return total / n
        }
    }

    /// Percentile bootstrap interval: rounds (or whole clusters of rounds) resampled with
    /// replacement `draws` times (seeded SplitMix64), the reward model kept fixed.
    public static func bootstrap(_ e: Estimator, _ x: Inputs, settings: Settings, draws: Int, alpha: Double, seed: UInt64) -> (Double, Double)? {
        guard draws >= 10 else { return nil }
        let n = x.weights.count
        var rng = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15)
        var values: [Double] = []
        values.reserveCapacity(draws)
        var rows = [Int](repeating: 0, count: n)
        if let clusters = x.clusters {
            // Whole clusters (users) resampled with replacement: their rounds are correlated.
            var members: [[Int]] = []
            var slot: [Int32: Int] = [:]
            for (i, c) in clusters.enumerated() {
                if let s = slot[c] { members[s].append(i) } else { slot[c] = members.count; members.append([i]) }
            }
            let m = UInt64(members.count)
            for _ in 0..<draws {
                rows.removeAll(keepingCapacity: true)
                for _ in 0..<members.count { rows.append(contentsOf: members[Int(rng.next() % m)]) }
                if let v = estimate(e, x, settings: settings, rounds: rows) { values.append(v) }
            }
        } else {
            for _ in 0..<draws {
                for j in 0..<n { rows[j] = Int(rng.next() % UInt64(n)) }
                if let v = estimate(e, x, settings: settings, rounds: rows) { values.append(v) }
            }
        }
        guard values.count >= 10 else { return nil }
        values.sort()
        func quantile(_ q: Double) -> Double {
            let h = q * Double(values.count - 1)
            let lo = Int(h.rounded(.down)), hi = min(lo + 1, values.count - 1)
            return values[lo] + (h - Double(lo)) * (values[hi] - values[lo])
        }
        return (quantile(alpha / 2), quantile(1 - alpha / 2))
    }

    /// Weight diagnostics and warnings when a handful of rows carry the estimate.
    public struct Diagnostics: Sendable {
        public var ess: Double
        public var maxWeight: Double
        public var meanWeight: Double
        /// Share of logged rounds whose (action, position) the evaluation policy never takes.
        public var unsupportedShare: Double
        /// Share of Σ w·r carried by the five largest terms.
        public var topFiveShare: Double?
        public var warnings: [String]
    }

    public static func diagnostics(_ x: Inputs) -> Diagnostics {
        let w = x.weights
        let n = Double(w.count)
        let sw = w.reduce(0, +), sw2 = w.reduce(0) { $0 + $1 * $1 }
        let ess = sw2 > 0 ? sw * sw / sw2 : 0
        let maxW = w.max() ?? 0
        let unsupported = Double(w.filter { $0 == 0 }.count) / max(n, 1)
        let terms = zip(w, x.rewards).map { $0 * $1 }.filter { $0 > 0 }.sorted(by: >)
        let totalTerms = terms.reduce(0, +)
        let top5 = totalTerms > 0 ? terms.prefix(5).reduce(0, +) / totalTerms : nil
        var warnings: [String] = []
        if ess < 0.01 * n {
            warnings.append("effective sample size \(String(format: "%.1f", ess)) is under 1 % of the \(Int(n)) rounds: the importance weights are too uneven for IPW-type estimates to be reliable")
        }
        if let top5, top5 > 0.5 {
            warnings.append("the five largest weighted rewards carry \(String(format: "%.0f", top5 * 100)) % of the IPW estimate: a handful of rows decide it")
        }
        if maxW > 100 {
            warnings.append("the largest importance weight is \(String(format: "%.1f", maxW)): some logged actions were very unlikely under the logging policy")
        }
        if unsupported > 0.5 {
            warnings.append("the evaluation policy never takes \(String(format: "%.0f", unsupported * 100)) % of the logged (item, position) pairs")
        }
        return Diagnostics(ess: ess, maxWeight: maxW, meanWeight: sw / max(n, 1), unsupportedShare: unsupported, topFiveShare: top5, warnings: warnings)
    }
}
