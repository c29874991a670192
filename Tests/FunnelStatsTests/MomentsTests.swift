import Foundation
import FunnelStats
import Testing

/// Moments against hand-worked sums and against the per-user estimators (which the fixture tests
/// hold to scipy and statsmodels).
struct MomentsTests {
    /// A small deterministic generator (not Funnel's own), enough for test data.
    struct LCG {
        var state: UInt64
        mutating func unit() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) * 0x1p-53
        }
    }

    /// Users with counts of clicks/impressions and a revenue with a large mean, so that naive
    /// one-pass variances would lose digits.
    static func users(_ n: Int, seed: UInt64) -> [[Double]] {
        var g = LCG(state: seed)
        return (0..<n).map { _ in
            let imps = Double(Int(g.unit() * 8))
            let clicks = Double(Int(g.unit() * (imps + 1)))
            let revenue = g.unit() < 0.3 ? 1e6 + g.unit() * 50 : 0
            return [imps, clicks, revenue]
        }
    }

    @Test func handWorkedSums() throws {
        var m = Moments(dimension: 2)
        try m.add([1, 2]); try m.add([2, 0]); try m.add([3, 5])
        #expect(m.count == 3)
        #expect(m.sum(0) == 6 && m.sum(1) == 7)
        // Σ(x − 2)² = 1 + 0 + 1; Σ(x − 2)(y − 7/3) = (−1)(−1/3) + 0 + (1)(8/3) = 3.
        #expect(m.centredSquares(.quantity(0)) == 2)
        #expect(abs(m.centredCross(.quantity(0), .quantity(1)) - 3) < 1e-15)
        let expected = 1 + (12.0 - 7) / 3
        let combination = Combination([(0, 2), (1, -1)], constant: 1)
        #expect(abs(m.mean(combination)! - expected) < 1e-15)
    }

    /// Values are held to 2⁻⁶⁰ (any double of magnitude 2⁻⁸ or more exactly); 2⁶⁰ and beyond is
    /// refused; sums and products far beyond a double's integers stay exact.
    @Test func rangeAndResolution() throws {
        var m = Moments(dimension: 1)
        try m.add([0.1]); try m.add([2e-5])
        #expect(m.sum(0) == 0.1 + 2e-5)
        #expect(abs(m.sums[m.productIndex(0, 0)].value - (0.01 + 4e-10)) <= 1e-17)
        #expect(throws: MomentsRangeError.self) { try m.add([2e18]) }
        #expect(throws: MomentsRangeError.self) { try m.add([.nan]) }
        #expect(m.count == 2)
        var big = Moments(dimension: 2)
        for _ in 0..<1000 { try big.add([2e9, -2e9]) }
        #expect(big.sum(0) == 2e12 && big.sum(1) == -2e12)
        #expect(big.sums[big.productIndex(0, 1)].value == -4e21)
        // 2⁵³ + 1 is not a double, but the exact sum keeps it: subtracting 2⁵³ leaves 1.
        var exact = Moments(dimension: 1)
        try exact.add([0x1p52]); try exact.add([0x1p52]); try exact.add([1])
        var part = Moments(dimension: 1)
        try part.add([0x1p52]); try part.add([0x1p52])
        exact.subtract(part)
        #expect(exact.sum(0) == 1 && exact.count == 1)
    }

    @Test func estimatorsAgreeWithThePerUserOnes() throws {
        let data = Self.users(2000, seed: 7), half = Self.users(1500, seed: 8)
        var m = Moments(dimension: 3), h = Moments(dimension: 3)
        for u in data { try m.add(u) }
        for u in half { try h.add(u) }
        func close(_ a: Double?, _ b: Double?, _ tol: Double = 1e-12) -> Bool {
            guard let a, let b else { return a == nil && b == nil }
            return abs(a - b) <= tol * max(abs(a), abs(b), 1e-300)
        }
        let r1 = Estimators.ratio(m, numerator: 1, denominator: 0, alpha: 0.05)
        let r2 = Estimators.ratio(x: data.map { $0[1] }, y: data.map { $0[0] }, alpha: 0.05)
        #expect(close(r1.value, r2.value))
        #expect(close(r1.variance, r2.variance))
        #expect(close(r1.ci?.0, r2.ci?.0))
        let rev1 = Estimators.mean(m, 2, alpha: 0.05), rev2 = Estimators.mean(data.map { $0[2] }, alpha: 0.05)
        #expect(close(rev1.value, rev2.value))
        #expect(close(rev1.variance, rev2.variance, 1e-10))
        let w1 = Compare.means(control: m, treatment: h, quantity: 2, alpha: 0.05)
        let w2 = Compare.means(control: data.map { $0[2] }, treatment: half.map { $0[2] }, alpha: 0.05)
        #expect(close(w1.absoluteDiff, w2.absoluteDiff, 1e-10))
        #expect(close(w1.pValue, w2.pValue, 1e-8))
        #expect(close(w1.ci?.1, w2.ci?.1, 1e-10))
    }

    /// Any split of the units, merged in any order, gives exactly the sums of the whole (fixed-point
    /// sums), and removing a part gives exactly the rest.
    @Test func mergeIsSplitInvariant() throws {
        let data = Self.users(3000, seed: 11)
        var whole = Moments(dimension: 3)
        for u in data { try whole.add(u) }
        var g = LCG(state: 3)
        for parts in [2, 5, 17] {
            var pieces = [Moments](repeating: Moments(dimension: 3), count: parts)
            for u in data { try pieces[Int(g.unit() * Double(parts))].add(u) }
            var merged = Moments(dimension: 3)
            for p in pieces.shuffled(using: &g) { merged.merge(p) }
            #expect(merged == whole)
            var rest = merged
            rest.subtract(pieces[0])
            var others = Moments(dimension: 3)
            for p in pieces.dropFirst() { others.merge(p) }
            #expect(rest == others)
        }
    }
}

extension MomentsTests.LCG: RandomNumberGenerator {
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state
    }
}
