import Foundation
import FunnelBase
@testable import FunnelModels
import Testing

/// Prediction-time scoring of LR and FM models (`Scoring`, through `ModelFile.predict`) against
/// the models' definitions evaluated naively in Double: for the FM the pairwise sum
/// Σ_{f<g} ⟨V_f, V_g⟩·x_f·x_g, not the ½[(Σ e)² − Σ e²] identity the scorer uses.
/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct ScoringTests {
    static func table(rows: Int, fields: Int, slots: Int, seed: UInt64) -> Table {
        var rng = SplitMix64(seed: seed)
        var t = Table()
        t.rows = rows; t.fields = fields
        for _ in 0..<(rows * fields) {
            t.indices.append(UInt32(rng.next() % UInt64(slots)))
            t.values.append([1, 0.5, 2.25, -0.75, 0][Int(rng.next() % 5)])
        }
        t.labels = [Float](repeating: 0, count: rows)
        return t
    }

    static func weights(_ count: Int, seed: UInt64, scale: Double) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in Float(scale * (2 * rng.unit() - 1)) }
    }

    /// A model file over `slots` hashed slots (hash bits log2(slots)), for ModelFile.predict.
    static func file(_ model: String, slots: Int, weights: [Float], factors: Int = 0) -> ModelFile {
        let spec = FeatureSpec(label: "y", categorical: ["a", "b"], numeric: [], hashBits: slots.trailingZeroBitCount)
        var f = ModelFile(model: model, spec: spec, ftrl: nil, weights: weights, trainingRows: 1)
        f.factors = factors
        return f
    }

    static func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }

    // 1 row, a few rows (not a multiple of the four rows the linear scorer takes at a time), and
    // enough rows for two threads with a remainder.
    @Test(arguments: [1, 7, 20_003])
    func linearMatchesItsDefinition(rows: Int) {
        let slots = 64, fields = 5
        let t = Self.table(rows: rows, fields: fields, slots: slots, seed: UInt64(rows))
        let w = Self.weights(slots + 1, seed: 3, scale: 0.8)
        for threads in [1, 2] {
            let p = Self.file("lr", slots: slots, weights: w).predict(t, threads: threads)
            #expect(p.count == rows)
            var worst = 0.0
            for r in 0..<rows {
                var z = Double(w[slots])
                for q in 0..<fields { z += Double(w[Int(t.indices[r * fields + q])]) * Double(t.values[r * fields + q]) }
                worst = max(worst, abs(p[r] - Self.sigmoid(z)))
            }
            #expect(worst < 1e-15, "threads \(threads): largest difference \(worst)")
        }
    }

    // Factors in SIMD8 lanes (8, 16), SIMD4 lanes (4, 12) and the scalar fallback (3, 1).
    @Test(arguments: [8, 16, 4, 12, 3, 1])
    func factorizationMachineMatchesThePairwiseSum(factors k: Int) {
        let slots = 128, fields = 6
        for rows in [3, 20_001] {
            let t = Self.table(rows: rows, fields: fields, slots: slots, seed: UInt64(k * 31 + rows))
            let w = Self.weights(slots + 1 + slots * k, seed: UInt64(k), scale: 0.5)
            let v = Array(w[(slots + 1)...])
            for threads in [1, 2] {
                let p = Self.file("fm", slots: slots, weights: w, factors: k).predict(t, threads: threads)
                #expect(p.count == rows)
                var worst = 0.0
                for r in 0..<rows {
                    var z = Double(w[slots])
                    for q in 0..<fields { z += Double(w[Int(t.indices[r * fields + q])]) * Double(t.values[r * fields + q]) }
                    for q in 0..<fields {
                        for g in (q + 1)..<fields {
                            let i = Int(t.indices[r * fields + q]), j = Int(t.indices[r * fields + g])
                            var dot = 0.0
                            for c in 0..<k { dot += Double(v[i * k + c]) * Double(v[j * k + c]) }
                            z += dot * Double(t.values[r * fields + q]) * Double(t.values[r * fields + g])
                        }
                    }
                    worst = max(worst, abs(p[r] - Self.sigmoid(z)))
                }
                // The scorer sums in Float: a few units of Float's last place on logits of order 1.
                #expect(worst < 2e-6, "k \(k), rows \(rows), threads \(threads): largest difference \(worst)")
            }
        }
    }

    /// No rows give no probabilities; rows without cells score the bias alone (no crash on the
    /// empty arrays).
    @Test func emptyTablesAndRowsWithoutCells() {
        let slots = 16
        let w = Self.weights(slots + 1 + slots * 8, seed: 4, scale: 1)
        for (model, factors) in [("lr", 0), ("fm", 8), ("fm", 3)] {
            let weights = model == "lr" ? Array(w[0...slots]) : w
            let file = Self.file(model, slots: slots, weights: weights, factors: factors)
            #expect(file.predict(Table()).isEmpty)
            var bare = Table()
            bare.rows = 3
            bare.labels = [0, 1, 0]
            #expect(file.predict(bare) == [Double](repeating: Self.sigmoid(Double(weights[slots])), count: 3), "\(model) k \(factors)")
        }
    }

    /// The downsampling correction and the calibration are applied after σ, on every thread's rows.
    @Test func correctionAndCalibrationApplyToEveryRow() {
        let slots = 32, rows = 20_000
        let t = Self.table(rows: rows, fields: 3, slots: slots, seed: 11)
        let w = Self.weights(slots + 1, seed: 12, scale: 1)
        var f = Self.file("lr", slots: slots, weights: w)
        let plain = f.predict(t)
        f.negativeRate = 0.25
        f.calibration = .platt(a: 1.5, b: -0.5)
        let adjusted = f.predict(t)
        var worst = 0.0
        for r in 0..<rows {
            let p = plain[r], q = p / (p + (1 - p) / 0.25)                 // p / (p + (1 − p)/r)
            let expected = Self.sigmoid(1.5 * log(q / (1 - q)) - 0.5)
            worst = max(worst, abs(adjusted[r] - expected))
        }
        #expect(worst < 1e-12)
    }
}
