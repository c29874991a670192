import Foundation
@testable import FunnelModels
import FunnelTestSupport
import Testing

/// The factorization machine's gradients against finite differences, and one optimiser step
/// against PyTorch in double precision (`tools/fixtures/make_fm_fixtures.py`).
/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct FMTests {
    static func table(rows: Int, fields: Int, slots: Int, seed: UInt64) -> Table {
        var t = Table()
        t.rows = rows; t.fields = fields
        var state = seed
        func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
        for _ in 0..<rows {
            for _ in 0..<fields {
                t.indices.append(UInt32(next() % UInt64(slots)))
                t.values.append([1, 0.5, 2.25, -0.75][Int(next() % 4)])
            }
            t.labels.append(next() % 3 == 0 ? 1 : 0)
        }
        return t
    }

    static func meanLoss(_ m: FactorizationMachine<Double>, _ t: Table) -> Double {
        let z = m.logits(t)
        return zip(z, t.labels).reduce(0.0) { acc, e in
            acc + max(e.0, 0) - e.0 * Double(e.1) + log1p(exp(-abs(e.0)))
        } / Double(t.rows)
    }

    @Test func gradientsMatchFiniteDifferences() {
        let t = Self.table(rows: 12, fields: 4, slots: 10, seed: 5)
        var m = FactorizationMachine<Double>(slots: 10, factors: 3, seed: 9, scale: 0.3)
        m.bias = 0.2
        for i in 0..<10 { m.w[i] = Double(i % 5) * 0.1 - 0.2 }
        let g = m.gradient(t, rows: 0..<t.rows)
        let h = 1e-6
        #expect(abs(g.loss - Self.meanLoss(m, t)) < 1e-12)
        func numeric(_ change: (inout FactorizationMachine<Double>, Double) -> Void) -> Double {
            var up = m, down = m
            change(&up, h); change(&down, -h)
            return (Self.meanLoss(up, t) - Self.meanLoss(down, t)) / (2 * h)
        }
        #expect(abs(g.bias - numeric { $0.bias += $1 }) < 1e-8)
        for i in 0..<10 {
            let nw = numeric { $0.w[i] += $1 }
            #expect(abs(g.w[i] - nw) < 1e-8, "w[\(i)]: \(g.w[i]) vs \(nw)")
            for k in 0..<3 {
                let nv = numeric { $0.v[i * 3 + k] += $1 }
                #expect(abs(g.v[i * 3 + k] - nv) < 1e-8, "V[\(i),\(k)]: \(g.v[i * 3 + k]) vs \(nv)")
            }
        }
    }

    @Test func oneStepMatchesPyTorch() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/fm_fixtures.json")
        let cases = try JSONFixture.load(url).objects("cases")
        #expect(cases.count >= 2)
        #expect(cases.contains { $0["embedding_l2"] != nil && $0["batches"] != nil }, "a case has L2 over differing batches")
        #expect(cases.filter { ($0["embedding_decay"] as? NSNumber)?.doubleValue ?? 0 > 0 }.count == 2, "cases with the tables' decay")
        for c in cases {
            let name = c["name"] as? String ?? "?"
            let slots = (try c.int("S")), k = (try c.int("K"))
            let indices = (try c.rows("indices")), values = (try c.rows("values"))
            var t = Table()
            t.rows = indices.count; t.fields = indices[0].count
            for (r, row) in indices.enumerated() {
                for (q, i) in row.enumerated() { t.indices.append(UInt32(i)); t.values.append(Float(values[r][q])) }
            }
            t.labels = (try c.floats("labels"))
            // Values ≠ 1 are chosen exactly representable in Float (the table stores Float).
            let v = (try c.rows("V")).flatMap { $0 }
            var m = FactorizationMachine<Double>(slots: slots, factors: k, bias: (try c.double("bias")),
                                                 w: (try c.doubles("w")), v: v)
            let before = m.logits(t), expectedBefore = (try c.doubles("logits_before"))
            for (a, b) in zip(before, expectedBefore) { #expect(abs(a - b) < 1e-12, "\(name) logits before: \(a) vs \(b)") }
            var o = OptimizerSettings()
            o.kind = try #require(OptimizerSettings.Kind(rawValue: (try c.string("optimizer"))))
            o.learningRate = (try c.double("lr"))
            o.epsilon = (try c.double("eps"))
            if let betas = c["betas"] as? [NSNumber] { o.beta1 = betas[0].doubleValue; o.beta2 = betas[1].doubleValue }
            o.embeddingL2 = (c["embedding_l2"] as? NSNumber)?.doubleValue ?? 0
            o.embeddingDecay = (c["embedding_decay"] as? NSNumber)?.doubleValue ?? 0
            var optimizer = FMOptimizer<Double>(slots: slots, factors: k, settings: o)
            // A case with "batches" steps on each listed batch in turn (its own mean loss, L2 on the
            // slots it names, lazy updates elsewhere); otherwise every step takes all rows.
            let steps = (c["steps"] as? NSNumber)?.intValue ?? 1
            let batches = (c["batches"] as? [[NSNumber]])?.map { $0.map(\.intValue) } ?? Array(repeating: Array(0..<t.rows), count: steps)
            let batchLosses = c["batch_losses"] as? [NSNumber]
            for (s, rows) in batches.enumerated() {
                let sub = t.subset(rows)
                optimizer.catchUp(&m, sub, rows: 0..<sub.rows)
                let g = m.gradient(sub, rows: 0..<sub.rows)
                if let batchLosses { #expect(abs(g.loss - batchLosses[s].doubleValue) < 1e-12, "\(name) batch \(s) loss") }
                optimizer.step(&m, g, rows: sub.rows)
            }
            optimizer.settle(&m)
            let after = m.logits(t), expectedAfter = (try c.doubles("logits_after"))
            for (a, b) in zip(after, expectedAfter) { #expect(abs(a - b) < 1e-10, "\(name) logits after: \(a) vs \(b)") }
            let vAfter = (try c.rows("V_after")).flatMap { $0 }
            #expect(vAfter.count == m.v.count)
            for (a, b) in zip(m.v, vAfter) { #expect(abs(a - b) < 1e-10, "\(name) V after") }
            if c["batches"] != nil {
                for (a, b) in zip(m.w, try c.doubles("w_after")) { #expect(abs(a - b) < 1e-10, "\(name) w after") }
                #expect(abs(m.bias - (try c.double("bias_after"))) < 1e-10, "\(name) bias after")
            }
        }
    }

    /// `linearFTRL`: the linear weights take FTRL-Proximal steps on the batch's summed gradient.
    /// Worked by hand for one feature (x = 1, label 1, every weight 0, so p = ½ and each row's
    /// gradient is −½), α = 0.5, β = 1, λ1 = 0.1, λ2 = 0.2:
    /// one row: g = −0.5, n = 0.25, σ = 0.5/0.5 = 1, z = −0.5, w = 0.4/((1 + 0.5)/0.5 + 0.2) = 0.125;
    /// two such rows: g = −1, n = 1, σ = 2, z = −1, w = 0.9/((1 + 1)/0.5 + 0.2) = 0.9/4.2.
    @Test(arguments: [(1, 0.125), (2, 0.9 / 4.2)])
    func linearWeightsFollowFTRL(rows: Int, expected: Double) {
        var t = Table()
        t.rows = rows; t.fields = 1
        t.indices = [UInt32](repeating: 0, count: rows); t.values = [Float](repeating: 1, count: rows); t.labels = [Float](repeating: 1, count: rows)
        var m = FactorizationMachine<Double>(slots: 2, factors: 2, bias: 0, w: [0, 0], v: [0, 0, 0, 0])
        var o = OptimizerSettings()
        var f = FTRLSettings(); f.alpha = 0.5; f.beta = 1; f.l1 = 0.1; f.l2 = 0.2
        o.linearFTRL = f
        var optimizer = FMOptimizer<Double>(slots: 2, factors: 2, settings: o)
        optimizer.step(&m, m.gradient(t, rows: 0..<rows), rows: rows)
        #expect(abs(m.w[0] - expected) < 1e-12)
        #expect(m.w[1] == 0)
        // The bias keeps Adagrad: −lr·g/|g| on the first step.
        #expect(abs(m.bias - 0.05) < 1e-9)
    }
}
