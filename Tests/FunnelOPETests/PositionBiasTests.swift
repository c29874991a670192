import Foundation
@testable import FunnelOPE
import Testing

/// Position-bias estimators on hand-built data whose answer is known exactly.
struct PositionBiasTests {
    /// `n` impressions of `item` at `position` by `ranker` for `cluster`, the first `clicks` clicked.
    static func cell(_ records: inout [ClickRecord], cluster: Int32 = 0, item: Int32, position: Int32, ranker: Int32 = 0,
                     randomized: Bool = false, n: Int, clicks: Int) {
        for j in 0..<n {
            records.append(ClickRecord(cluster: cluster, item: item, position: position, clicked: j < clicks, randomized: randomized, ranker: ranker))
        }
    }

    /// Four users, one shuffled impression at each of two positions. Worked by hand:
    /// C1 = 2, N1 = 4, C2 = 1, N2 = 4 → ratio (1/4)/(2/4) = 0.5; per-user influence on log r is
    /// c_u2/C2 − n_u2/N2 − c_u1/C1 + n_u1/N1 = c_u2 − c_u1/2 → A −0.5, B 0.5, C 0, D 0;
    /// se = √0.5 = 0.707107; interval 0.5·exp(±1.959964·0.707107) = (0.125049, 1.999219).
    @Test func randomizedDeltaMethod() throws {
        let users: [(Bool, Bool)] = [(true, false), (true, true), (false, false), (false, false)]
        var records: [ClickRecord] = []
        for (u, (c1, c2)) in users.enumerated() {
            records.append(ClickRecord(cluster: Int32(u), item: Int32(u), position: 1, clicked: c1, randomized: true, ranker: 0))
            records.append(ClickRecord(cluster: Int32(u), item: Int32(u + 4), position: 2, clicked: c2, randomized: true, ranker: 0))
        }
        // Ranked traffic is ignored by the randomized method.
        records.append(ClickRecord(cluster: 9, item: 1, position: 2, clicked: true, randomized: false, ranker: 0))
        let e = try PositionBias.estimate(records, method: .randomized)
        #expect(e.recordsUsed == 8)
        #expect(abs(e.propensities[1] - 0.5) < 1e-12)
        let ci = try #require(e.intervals[1])
        #expect(abs(ci.0 - 0.125049) < 1e-6, "\(ci)")
        #expect(abs(ci.1 - 1.999219) < 1e-6, "\(ci)")
        // Naive: over all nine impressions, CTR at 2 = 2/5 against 2/4 at 1.
        #expect(abs(e.naive[1] - 0.8) < 1e-12)
    }

    /// Clicks exactly θ_k·γ_i·n on a full item × position grid: the position-based model fits
    /// exactly, so EM's maximum likelihood is the truth, θ = (0.8, 0.4, 0.2) → (1, 0.5, 0.25).
    @Test func emRecoversAnExactGrid() throws {
        let theta = [0.8, 0.4, 0.2], gamma = [0.5, 0.25, 0.75]
        var records: [ClickRecord] = []
        for (i, g) in gamma.enumerated() {
            for (k, t) in theta.enumerated() {
                Self.cell(&records, cluster: Int32(i * 3 + k), item: Int32(i), position: Int32(k + 1), n: 400, clicks: Int((400 * t * g).rounded()))
            }
        }
        let e = try PositionBias.estimate(records, method: .em, bootstrap: 0)
        #expect(abs(e.propensities[1] - 0.5) < 1e-6, "\(e.propensities)")
        #expect(abs(e.propensities[2] - 0.25) < 1e-6, "\(e.propensities)")
        // The naive ratio mixes in nothing here (every item at every position equally often).
        #expect(abs(e.naive[1] - 0.5) < 1e-12)
    }

    /// Two rankers swap three items between positions; click-through exactly θ_k·γ_i with
    /// θ = (1, 0.6, 0.3), γ = (0.1, 0.2, 0.3): each harvested pair gives one ratio exactly
    /// (0.06/0.1 = θ2/θ1, 0.06/0.12 = θ3/θ2, 0.09/0.3 = θ3/θ1), so the fit is (1, 0.6, 0.3).
    @Test func harvestingRecoversSwappedItems() throws {
        var records: [ClickRecord] = []
        let placements: [(item: Int32, position: Int32, ranker: Int32, clicks: Int)] = [
            (0, 1, 0, 100), (1, 2, 0, 120), (2, 3, 0, 90),
            (0, 2, 1, 60), (1, 3, 1, 60), (2, 1, 1, 300),
        ]
        for (c, p) in placements.enumerated() {
            Self.cell(&records, cluster: Int32(c), item: p.item, position: p.position, ranker: p.ranker, n: 1000, clicks: p.clicks)
        }
        let e = try PositionBias.estimate(records, method: .harvesting, bootstrap: 0)
        #expect(abs(e.propensities[1] - 0.6) < 1e-9, "\(e.propensities)")
        #expect(abs(e.propensities[2] - 0.3) < 1e-9, "\(e.propensities)")
        // One ranker only: nothing to harvest, a clear error.
        let single = records.map { r -> ClickRecord in var r = r; r.ranker = 0; return r }
        #expect(throws: OPEError.self) { try PositionBias.estimate(single, method: .harvesting) }
    }

    @Test func randomizedNeedsShuffledTraffic() {
        var records: [ClickRecord] = []
        Self.cell(&records, item: 0, position: 1, n: 10, clicks: 2)
        Self.cell(&records, item: 1, position: 2, n: 10, clicks: 1)
        #expect(throws: OPEError.self) { try PositionBias.estimate(records, method: .randomized) }
    }

    /// Bootstrap intervals of EM contain the estimate and narrow with sixteen times the data.
    @Test func emBootstrapInterval() throws {
        var small: [ClickRecord] = [], large: [ClickRecord] = []
        var u: Int32 = 0
        for (scale, target) in [(1, 0), (16, 1)] {
            for i in 0..<20 {
                for k in 0..<4 {
                    let n = 8 * scale
                    let clicks = Int((Double(n) * [0.9, 0.6, 0.4, 0.3][k] * (0.2 + 0.03 * Double(i))).rounded())
                    for j in 0..<n {
                        let r = ClickRecord(cluster: u, item: Int32(i), position: Int32(k + 1), clicked: j < clicks, randomized: false, ranker: 0)
                        if target == 0 { small.append(r) } else { large.append(r) }
                        if j % 4 == 3 { u += 1 }
                    }
                }
            }
        }
        let a = try PositionBias.estimate(small, method: .em, bootstrap: 100)
        let b = try PositionBias.estimate(large, method: .em, bootstrap: 100)
        for k in 1..<4 {
            let ca = try #require(a.intervals[k]), cb = try #require(b.intervals[k])
            #expect(ca.0 <= a.propensities[k] && a.propensities[k] <= ca.1)
            #expect(cb.0 <= b.propensities[k] && b.propensities[k] <= cb.1)
            #expect(cb.1 - cb.0 < 0.7 * (ca.1 - ca.0), "position \(k + 1): \(ca) vs \(cb)")
        }
    }

    /// Worked by hand: propensities (1, 0.5, 0.02), floor 0.05, one click at each of positions
    /// 1, 2, 3 and at position 5 (no estimate: the floor), eight impressions →
    /// (1 + 2 + 20 + 20) / 8 = 5.375; naive 4/8.
    @Test func debiasedClickThrough() {
        var d = PositionBias.DebiasedCTR()
        for (p, c) in [(1, true), (2, true), (3, true), (5, true), (1, false), (2, false), (3, false), (4, false)] {
            d.add(position: p, clicked: c, propensities: [1, 0.5, 0.02], floor: 0.05)
        }
        #expect(d.impressions == 8 && d.clicks == 4)
        #expect(abs(d.ips - 5.375) < 1e-12)
        #expect(abs(d.naive - 0.5) < 1e-12)
    }
}

/// The bootstrap of off-policy estimates resamples users when rounds are clustered.
struct ClusterBootstrapTests {
    /// Every round repeated ten times within its cluster: the clustered interval is about √10
    /// wider than one that treats the copies as independent.
    @Test func clustersWidenTheInterval() throws {
        var weights: [Double] = [], rewards: [Double] = [], clusters: [Int32] = []
        var state: UInt64 = 7
        for c in 0..<400 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let w = Double(state >> 60) / 4 + 0.25, r: Double = (state >> 20) % 5 == 0 ? 1 : 0
            for _ in 0..<10 { weights.append(w); rewards.append(r); clusters.append(Int32(c)) }
        }
        var x = OffPolicy.Inputs(weights: weights, rewards: rewards, qLogged: nil, qExpected: nil)
        let naive = try #require(OffPolicy.bootstrap(.ipw, x, settings: .init(), draws: 400, alpha: 0.05, seed: 3))
        x.clusters = clusters
        let clustered = try #require(OffPolicy.bootstrap(.ipw, x, settings: .init(), draws: 400, alpha: 0.05, seed: 3))
        let ratio = (clustered.1 - clustered.0) / (naive.1 - naive.0)
        #expect(ratio > 2.4 && ratio < 4.0, "width ratio \(ratio), expected about √10 = 3.16")
    }
}
