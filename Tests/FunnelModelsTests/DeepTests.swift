import Foundation
@testable import FunnelModels
import FunnelKernelsAVX2
import FunnelBase
import FunnelTestSupport
import Testing

/// DeepFM and DCN-v2: every gradient against finite differences, one and two optimiser steps
/// against PyTorch in double precision (`tools/fixtures/make_deep_fixtures.py`), and training that
/// depends only on the seed and the thread count.
/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct DeepTests {
    static func meanLoss(_ m: DeepModel<Double>, _ t: Table) -> Double {
        zip(m.logits(t), t.labels).reduce(0.0) { acc, e in acc + max(e.0, 0) - e.0 * Double(e.1) + log1p(exp(-abs(e.0))) } / Double(t.rows)
    }

    /// DeepFM, DCN-v2, and DCN-v2 with a wide part.
    static let variants: [(DeepKind, Bool)] = [(.deepfm, false), (.dcnv2, false), (.dcnv2, true)]

    static func model(_ kind: DeepKind, wide: Bool = false, seed: UInt64) -> DeepModel<Double> {
        let a = DeepArchitecture(kind: kind, fields: 4, dim: 3, hidden: [6, 4], crossLayers: 2, wide: wide)
        var m = DeepModel<Double>(architecture: a, slots: 10, seed: seed, scale: 0.5)
        m.bias = 0.2
        for i in 0..<m.w.count { m.w[i] = Double(i % 5) * 0.1 - 0.2 }
        return m
    }

    @Test(arguments: variants)
    func gradientsMatchFiniteDifferences(kind: DeepKind, wide: Bool) {
        let t = FMTests.table(rows: 12, fields: 4, slots: 10, seed: 7)
        let m = Self.model(kind, wide: wide, seed: 3)
        #expect(m.w.count == (kind == .deepfm || wide ? 10 : 0))
        let g = m.gradient(t, rows: 0..<t.rows)
        #expect(abs(g.loss - Self.meanLoss(m, t)) < 1e-12)
        let h = 1e-6
        func numeric(_ change: (inout DeepModel<Double>, Double) -> Void) -> Double {
            var up = m, down = m
            change(&up, h); change(&down, -h)
            return (Self.meanLoss(up, t) - Self.meanLoss(down, t)) / (2 * h)
        }
        if m.architecture.hasLinear { #expect(abs(g.bias - numeric { $0.bias += $1 }) < 1e-8) }
        for i in 0..<m.w.count {
            let n = numeric { $0.w[i] += $1 }
            #expect(abs(g.wValue(i) - n) < 1e-8, "w[\(i)]: \(g.wValue(i)) vs \(n)")
        }
        for j in 0..<m.v.count {
            let n = numeric { $0.v[j] += $1 }
            #expect(abs(g.vValue(j) - n) < 1e-8, "v[\(j)]: \(g.vValue(j)) vs \(n)")
        }
        for j in 0..<m.dense.count {
            let n = numeric { $0.dense[j] += $1 }
            #expect(abs(g.denseValue(j) - n) < 1e-8, "\(kind) dense[\(j)]: \(g.denseValue(j)) vs \(n)")
        }
    }

    /// The mean loss with the MLP's hidden units dropped as `dropout` drops them.
    static func meanLoss(_ m: DeepModel<Double>, _ t: Table, dropout: Dropout) -> Double {
        let ws = DeepWorkspace<Double>(m.architecture, rows: t.rows)
        m.forward(t, rows: 0..<t.rows, ws, dropout: dropout)
        return (0..<t.rows).reduce(0.0) { acc, j in
            let z = ws.logit[j]
            return acc + max(z, 0) - z * Double(t.labels[j]) + log1p(exp(-abs(z)))
        } / Double(t.rows)
    }

    /// Dropout: the gradient of the loss with a fixed mask matches finite differences of that
    /// loss (the mask depends only on the key, row, layer and unit), and about `rate` of the units
    /// are dropped.
    @Test(arguments: [DeepKind.deepfm, .dcnv2])
    func dropoutGradientsMatchFiniteDifferences(kind: DeepKind) {
        let t = FMTests.table(rows: 12, fields: 4, slots: 10, seed: 7)
        let m = Self.model(kind, seed: 3)
        let dropout = Dropout(rate: 0.3, key: 42)
        let g = m.gradient(t, rows: 0..<t.rows, dropout: dropout)
        #expect(abs(g.loss - Self.meanLoss(m, t, dropout: dropout)) < 1e-12)
        #expect(abs(g.loss - Self.meanLoss(m, t)) > 1e-6, "the mask changes the loss")
        let h = 1e-6
        func numeric(_ change: (inout DeepModel<Double>, Double) -> Void) -> Double {
            var up = m, down = m
            change(&up, h); change(&down, -h)
            return (Self.meanLoss(up, t, dropout: dropout) - Self.meanLoss(down, t, dropout: dropout)) / (2 * h)
        }
        for j in 0..<m.dense.count {
            let n = numeric { $0.dense[j] += $1 }
            #expect(abs(g.denseValue(j) - n) < 1e-8, "dense[\(j)]: \(g.denseValue(j)) vs \(n)")
        }
        for j in 0..<m.v.count {
            let n = numeric { $0.v[j] += $1 }
            #expect(abs(g.vValue(j) - n) < 1e-8, "v[\(j)]: \(g.vValue(j)) vs \(n)")
        }
        // 200,000 draws at rate 0.3: the share dropped within 5 standard deviations (0.005).
        var dropped = 0
        for r in 0..<1000 { for u in 0..<200 where dropout.drops(row: r, layer: u % 2, unit: u) { dropped += 1 } }
        #expect(abs(Double(dropped) / 200_000 - 0.3) < 0.005)
    }

    @Test func stepsMatchPyTorch() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/deep_fixtures.json")
        let cases = try JSONFixture.load(url).objects("cases")
        #expect(cases.count == 12)
        #expect(cases.filter { $0["embedding_l2"] != nil && $0["batches"] != nil }.count == 6, "cases with L2 over differing batches")
        #expect(cases.filter { ($0["embedding_decay"] as? NSNumber)?.doubleValue ?? 0 > 0 }.count == 2, "cases with the tables' decay")
        #expect(cases.contains { $0["linear_ftrl"] != nil }, "a case trains the linear weights by FTRL")
        #expect(cases.contains { $0["wide"] as? Bool == true }, "a case has DCN-v2's wide part")
        func doubles(_ key: String, _ c: JSONFixture) throws -> [Double] { try c.doubles(key) }
        for c in cases {
            let name = (try c.string("name"))
            let kind = try #require(DeepKind(rawValue: (try c.string("model"))))
            let indices = (try c.rows("indices")), values = (try c.rows("values"))
            var t = Table()
            t.rows = indices.count; t.fields = indices[0].count
            for (r, row) in indices.enumerated() {
                for (q, i) in row.enumerated() { t.indices.append(UInt32(i)); t.values.append(Float(values[r][q])) }
            }
            t.labels = (try doubles("labels", c)).map { Float($0) }
            let a = DeepArchitecture(kind: kind, fields: t.fields, dim: (try c.int("K")),
                                     hidden: (try c.ints("hidden")), crossLayers: (try c.int("cross_layers")), wide: c["wide"] as? Bool ?? false)
            var m = DeepModel<Double>(architecture: a, slots: (try c.int("S")), bias: (try c.double("bias")),
                                      w: (try doubles("w", c)), v: (try doubles("V", c)), dense: (try doubles("dense", c)))
            #expect(m.dense.count == a.denseCount, "\(name): dense size")
            func same(_ got: [Double], _ want: [Double], _ what: String, _ tol: Double) {
                #expect(got.count == want.count, "\(name) \(what): count")
                for (j, (x, y)) in zip(got, want).enumerated() { #expect(abs(x - y) <= tol * max(1, abs(y)), "\(name) \(what)[\(j)]: \(x) vs \(y)") }
            }
            same(m.logits(t), (try doubles("logits_before", c)), "logits before", 1e-12)
            let g = m.gradient(t, rows: 0..<t.rows)
            #expect(abs(g.loss - (try c.double("loss_before"))) < 1e-12)
            same((0..<a.denseCount).map { g.denseValue($0) }, (try doubles("grad_dense", c)), "dense gradient", 1e-12)
            same((0..<m.v.count).map { g.vValue($0) }, (try doubles("grad_V", c)), "V gradient", 1e-12)
            same((0..<m.w.count).map { g.wValue($0) }, (try doubles("grad_w", c)), "w gradient", 1e-12)
            var o = OptimizerSettings()
            o.kind = try #require(OptimizerSettings.Kind(rawValue: (try c.string("optimizer"))))
            o.learningRate = (try c.double("lr"))
            o.epsilon = (try c.double("eps"))
            if let betas = c["betas"] as? [NSNumber] { o.beta1 = betas[0].doubleValue; o.beta2 = betas[1].doubleValue }
            if let f = c["linear_ftrl"] as? [String: NSNumber] {
                var ftrl = FTRLSettings()
                ftrl.alpha = try #require(f["alpha"]).doubleValue; ftrl.beta = try #require(f["beta"]).doubleValue
                ftrl.l1 = try #require(f["l1"]).doubleValue; ftrl.l2 = try #require(f["l2"]).doubleValue
                o.linearFTRL = ftrl
            }
            o.embeddingL2 = (c["embedding_l2"] as? NSNumber)?.doubleValue ?? 0
            o.denseL2 = (c["dense_l2"] as? NSNumber)?.doubleValue ?? 0
            o.embeddingDecay = (c["embedding_decay"] as? NSNumber)?.doubleValue ?? 0
            var optimizer = DeepOptimizer(m, settings: o)
            // A case with "batches" steps on each listed batch in turn (its own mean loss, L2 on the
            // slots it names, lazy updates elsewhere); otherwise every step takes all rows.
            let steps = try c.int("steps")
            let batches = (c["batches"] as? [[NSNumber]])?.map { $0.map(\.intValue) } ?? Array(repeating: Array(0..<t.rows), count: steps)
            #expect(batches.count == steps, "\(name): one batch per step")
            let batchLosses = c["batch_losses"] as? [NSNumber]
            for (s, rows) in batches.enumerated() {
                let sub = t.subset(rows)
                optimizer.catchUp(&m, sub, rows: 0..<sub.rows)
                let g = m.gradient(sub, rows: 0..<sub.rows)
                if let batchLosses { #expect(abs(g.loss - batchLosses[s].doubleValue) < 1e-12, "\(name) batch \(s) loss") }
                optimizer.step(&m, g, rows: sub.rows)
            }
            optimizer.settle(&m)
            same(m.logits(t), (try doubles("logits_after", c)), "logits after", 1e-10)
            same(m.dense, (try doubles("dense_after", c)), "dense after", 1e-10)
            same(m.v, (try doubles("V_after", c)), "V after", 1e-10)
            same(m.w, (try doubles("w_after", c)), "w after", 1e-10)
            if a.hasLinear { #expect(abs(m.bias - (try c.double("bias_after"))) < 1e-10, "\(name) bias after") }
        }
    }

    /// A wide DCN-v2 survives the model file (its `wide` key and its linear weights); a DCN-v2 file
    /// written before the wide part existed (no `wide` key) still loads, as a plain DCN-v2.
    @Test func wideArchitectureRoundTripsThroughTheModelFile() throws {
        let spec = FeatureSpec(label: "click", categorical: ["a", "b", "c", "d"], numeric: [], hashBits: 4)
        let a = DeepArchitecture(kind: .dcnv2, fields: 4, dim: 3, hidden: [6, 4], crossLayers: 2, wide: true)
        var m = DeepModel<Float>(architecture: a, slots: spec.slots, seed: 9, scale: 0.5)
        m.bias = 0.25
        for i in 0..<m.w.count { m.w[i] = Float(i % 7) * 0.125 - 0.375 }
        var file = ModelFile(model: "dcnv2", spec: spec, ftrl: nil, weights: ModelFile.deepWeights(m), trainingRows: 1)
        file.architecture = a
        file.factors = 3
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-wide-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("wide.json").path
        try file.write(to: path)
        let back = try ModelFile.read(path: path)
        #expect(back.architecture == a && back.architecture?.hasLinear == true)
        let t = FMTests.table(rows: 20, fields: 4, slots: spec.slots, seed: 3)
        let z = m.logits(t)
        let plain = DeepModel<Float>(architecture: a, slots: m.slots, bias: 0, w: [Float](repeating: 0, count: m.slots), v: m.v, dense: m.dense).logits(t)
        // The linear part: bias + Σ_f w[i_f]·x_f on top of the network's logit.
        for r in 0..<t.rows {
            let linear = 0.25 + (0..<4).reduce(0.0) { $0 + Double(m.w[Int(t.indices[r * 4 + $1])] * t.values[r * 4 + $1]) }
            #expect(abs(z[r] - plain[r] - linear) < 1e-5)
        }
        #expect(back.predict(t, threads: 1) == z.map { 1 / (1 + exp(-$0)) })
        let old = try JSONEncoder().encode(DeepArchitecture(kind: .dcnv2, fields: 4, dim: 3, hidden: [6, 4], crossLayers: 2))
        #expect(!String(decoding: old, as: UTF8.self).contains("wide"))
        let decoded = try JSONDecoder().decode(DeepArchitecture.self, from: old)
        #expect(decoded.wide == false && decoded.hasLinear == false && decoded.crossLayers == 2)
    }

    /// The eight-wide dense optimiser step equals the scalar loop bit for bit (Adagrad and Adam,
    /// a length with a scalar tail), over several steps.
    @Test(arguments: OptimizerSettings.Kind.allCases)
    func wideOptimizerStepIsBitIdentical(kind: OptimizerSettings.Kind) {
        var o = OptimizerSettings(); o.kind = kind; o.learningRate = 0.01; o.epsilon = kind == .adam ? 1e-8 : 1e-10
        var rng = SplitMix64(seed: 21)
        let n = 37
        var p1 = (0..<n).map { _ in Float(rng.unit() * 2 - 1) }, p2 = p1
        var m1 = [Float](repeating: 0, count: n), m2 = m1, s1 = m1, s2 = m1
        for t in 1...5 {
            let g = (0..<n).map { _ in Float(rng.unit() * 0.2 - 0.1) }
            let c = AdaptiveState<Float>.corrections(o, step: t, rows: 4)
            AdaptiveState<Float>.adaptive(o, &p1, g, &m1, &s1, count: n, c)
            AdaptiveState<Float>.adaptiveFloat8(o, &p2, g, &m2, &s2, count: n, c)
        }
        #expect(p1.map(\.bitPattern) == p2.map(\.bitPattern) && s1 == s2 && m1 == m2)
        #expect(p1 != (0..<n).map { _ in 0 })
    }

    /// Adam's first moments never become subnormal floats (whose arithmetic is slow microcode on
    /// x86), and flushing them leaves the weights bit-identical to Adam written out without the
    /// floor. Each weight's gradient is nonzero for 20 steps and then zero (a ReLU unit that
    /// stopped firing) for 800 more, enough for the written-out first moments to decay into the
    /// subnormal range; both the eight-wide step and the scalar loop are checked.
    @Test func adamMomentsAreFlushedWithoutChangingTheWeights() {
        var o = OptimizerSettings(); o.kind = .adam; o.learningRate = 0.0001; o.epsilon = 1e-8
        let b1 = Float(o.beta1), b2 = Float(o.beta2), eps = Float(o.epsilon)
        var rng = SplitMix64(seed: 8)
        let n = 37
        let start = (0..<n).map { _ in Float(rng.unit() * 2 - 1) }
        var p1 = start, p2 = start, pr = start
        var m1 = [Float](repeating: 0, count: n), m2 = m1, s1 = m1, s2 = m1, mr = m1, sr = m1
        var sawSubnormal = false, flushedSubnormal = false
        for t in 1...820 {
            let g = (0..<n).map { _ in t <= 20 ? Float(rng.unit() * 0.02 - 0.01) : 0 }
            let c = AdaptiveState<Float>.corrections(o, step: t, rows: 256)
            AdaptiveState<Float>.adaptive(o, &p1, g, &m1, &s1, count: n, c)
            AdaptiveState<Float>.adaptiveFloat8(o, &p2, g, &m2, &s2, count: n, c)
            for j in 0..<n {
                mr[j] = b1 * mr[j] + (1 - b1) * g[j]
                sr[j] = b2 * sr[j] + (1 - b2) * g[j] * g[j]
                pr[j] -= c.step * mr[j] / (sr[j].squareRoot() / c.root + eps)
            }
            sawSubnormal = sawSubnormal || mr.contains { $0.isSubnormal }
            flushedSubnormal = flushedSubnormal || m1.contains { $0.isSubnormal } || m2.contains { $0.isSubnormal }
        }
        #expect(sawSubnormal, "the written-out moments reach the subnormal range, so the case is exercised")
        #expect(!flushedSubnormal)
        #expect(m1.allSatisfy { $0 == 0 } && m2.allSatisfy { $0 == 0 })
        #expect(p1.map(\.bitPattern) == pr.map(\.bitPattern) && p2.map(\.bitPattern) == pr.map(\.bitPattern))
        #expect(s1 == sr && s2 == sr && p1 != start)
    }

    /// The optimiser takes the batch's gradient as the threads' parts: a slot's rows (and each dense
    /// weight's values) are summed in thread order, each touched slot is updated once, untouched
    /// ones not at all, and the result is the same on one or two threads. Reference: one Adagrad
    /// step written out, p − lr·g/(√(g²) + ε) with g = part 0 + part 1.
    @Test func optimizerSumsThePartsOfAGradient() {
        var o = OptimizerSettings(); o.kind = .adagrad; o.learningRate = 0.05; o.epsilon = 1e-10
        let lr = Float(o.learningRate), eps = Float(o.epsilon)
        var rng = SplitMix64(seed: 4)
        let width = 4, slots = 5000
        // Part 0 touches slots 0..<3000, part 1 slots 2000..<5000 (both in shuffled order).
        func shuffled(_ range: Range<Int>) -> [Int] {
            var a = Array(range)
            for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, Int(rng.unit() * Double(i + 1))) }
            return a
        }
        let lists = [shuffled(0..<3000), shuffled(2000..<5000)]
        let rows = lists.map { list in (0..<(list.count * width)).map { _ in Float(rng.unit() - 0.5) } }
        let positions: [[Int32]] = lists.map { list in
            var pos = [Int32](repeating: -1, count: slots)
            for (r, slot) in list.enumerated() { pos[slot] = Int32(r) }
            return pos
        }
        let start = (0..<(slots * width)).map { _ in Float(rng.unit() * 2 - 1) }
        var expected = start
        for slot in 0..<slots {
            for e in 0..<width {
                var g: Float? = nil
                for k in 0..<2 where positions[k][slot] >= 0 {
                    let x = rows[k][Int(positions[k][slot]) * width + e]
                    g = g.map { $0 + x } ?? x
                }
                if let g { expected[slot * width + e] -= lr * g / ((0 + g * g).squareRoot() + eps) }
            }
        }
        let c = AdaptiveState<Float>.corrections(o, step: 1, rows: 1)
        for parts in [1, 2] {
            var p = start
            var state = AdaptiveState<Float>(rows: slots, width: width, settings: o)
            lists[0].withUnsafeBufferPointer { s0 in lists[1].withUnsafeBufferPointer { s1 in
                rows[0].withUnsafeBufferPointer { r0 in rows[1].withUnsafeBufferPointer { r1 in
                    positions[0].withUnsafeBufferPointer { q0 in positions[1].withUnsafeBufferPointer { q1 in
                        let sources = [TouchedRows(slots: s0.baseAddress!, count: s0.count, rows: r0.baseAddress!, position: q0.baseAddress!),
                                       TouchedRows(slots: s1.baseAddress!, count: s1.count, rows: r1.baseAddress!, position: q1.baseAddress!)]
                        p.withUnsafeMutableBufferPointer { state.updateTouched(sources, $0.baseAddress!, c, parts: parts) }
                    } }
                } }
            } }
            #expect(zip(p, expected).count { $0.bitPattern != $1.bitPattern } == 0, "parts \(parts)")
        }
        // The dense weights: two parts of 20,000 values, read and left as they are.
        let n = 20_000
        let dense = (0..<2).map { _ in (0..<n).map { _ in Float(rng.unit() - 0.5) } }
        let denseStart = (0..<n).map { _ in Float(rng.unit() * 2 - 1) }
        let denseExpected = (0..<n).map { j -> Float in
            let g = dense[0][j] + dense[1][j]
            return denseStart[j] - lr * g / ((0 + g * g).squareRoot() + eps)
        }
        for parts in [1, 2] {
            var p = denseStart
            var state = AdaptiveState<Float>(rows: 1, width: n, settings: o)
            let buffers = dense.map { values in
                let b = UnsafeMutablePointer<Float>.allocate(capacity: n); b.initialize(from: values, count: n); return b
            }
            defer { buffers.forEach { $0.deallocate() } }
            p.withUnsafeMutableBufferPointer { state.updateRowZero($0.baseAddress!, sources: buffers, c, parts: parts) }
            #expect(zip(p, denseExpected).count { $0.bitPattern != $1.bitPattern } == 0, "parts \(parts)")
            #expect((0..<2).allSatisfy { k in (0..<n).allSatisfy { buffers[k][$0].bitPattern == dense[k][$0].bitPattern } })
        }
    }

    /// The same seed and thread count give bit-identical models; one and two threads differ only by
    /// float summation order, and so do one and eight threads on batches of nine rows (five shares
    /// of at most two rows each).
    @Test(arguments: variants)
    func trainingIsDeterministicPerThreadCount(kind: DeepKind, wide: Bool) {
        let t = FMTests.table(rows: 600, fields: 5, slots: 64, seed: 11)
        let a = DeepArchitecture(kind: kind, fields: 5, dim: 4, hidden: [16, 8], crossLayers: 2, wide: wide)
        func train(threads: Int, batchSize: Int = 64) -> DeepModel<Float> {
            var o = OptimizerSettings(); o.kind = .adam; o.learningRate = 0.01; o.epsilon = 1e-8
            let trainer = DeepTrainer(model: DeepModel<Float>(architecture: a, slots: 64, seed: 5), optimizer: o, batchSize: batchSize,
                                      threads: threads)
            for _ in 0..<3 { trainer.epoch(t) }
            return trainer.model
        }
        let first = train(threads: 2), second = train(threads: 2), single = train(threads: 1)
        #expect(first.dense == second.dense && first.v == second.v && first.w == second.w && first.bias == second.bias)
        let z2 = first.logits(t, threads: 2), z1 = single.logits(t, threads: 1)
        #expect(zip(z1, z2).map { abs($0 - $1) }.max() ?? .infinity < 1e-3)
        #expect(first.logits(t, threads: 1) == z2)
        let z9x8 = train(threads: 8, batchSize: 9).logits(t), z9x1 = train(threads: 1, batchSize: 9).logits(t)
        #expect(zip(z9x8, z9x1).map { abs($0 - $1) }.max() ?? .infinity < 1e-3)
    }
}

/// The tiled matrix product against the textbook triple loop, over shapes with and without
/// remainders and both layouts of each operand the models use.
struct GemmTests {
    @Test(arguments: [(1, 1, 1), (4, 3, 8), (5, 7, 9), (9, 16, 17), (12, 33, 24), (3, 2, 1)])
    func tiledProductMatchesTripleLoop(shape: (Int, Int, Int)) {
        let (rows, inner, columns) = shape
        var rng = SplitMix64Shim(seed: UInt64(rows * 1000 + inner * 10 + columns))
        for (transposed, bTransposed) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = (0..<(rows * inner)).map { _ in rng.next() }, b = (0..<(inner * columns)).map { _ in rng.next() }
            var c = (0..<(rows * columns)).map { _ in rng.next() }
            var want = c
            let (rowStride, innerStride) = transposed ? (1, rows) : (inner, 1)
            // B(q, j) at b[q·columns + j], or stored transposed at b[j·inner + q].
            func bAt(_ q: Int, _ j: Int) -> Double { bTransposed ? b[j * inner + q] : b[q * columns + j] }
            for p in 0..<rows { for j in 0..<columns { for q in 0..<inner { want[p * columns + j] += a[p * rowStride + q * innerStride] * bAt(q, j) } } }
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                gemm(ap.baseAddress!, rowStride: rowStride, innerStride: innerStride, bp.baseAddress!, cp.baseAddress!, rows: rows, inner: inner, columns: columns,
                     bTransposed: bTransposed)
            } } }
            for (x, y) in zip(c, want) { #expect(abs(x - y) < 1e-12, "\(shape) transposed \(transposed) B transposed \(bTransposed)") }
            // C = A·B and C = bias + A·B, whatever C held (NaN here).
            let bias = (0..<columns).map { _ in rng.next() }
            for useBias in [false, true] {
                var fresh = [Double](repeating: .nan, count: rows * columns)
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in bias.withUnsafeBufferPointer { biasp in
                    fresh.withUnsafeMutableBufferPointer { cp in
                        gemm(ap.baseAddress!, rowStride: rowStride, innerStride: innerStride, bp.baseAddress!, cp.baseAddress!, rows: rows, inner: inner,
                             columns: columns, bTransposed: bTransposed, accumulate: false, bias: useBias ? biasp.baseAddress! : nil)
                    }
                } } }
                for p in 0..<rows {
                    for j in 0..<columns {
                        var sum = useBias ? bias[j] : 0
                        for q in 0..<inner { sum += a[p * rowStride + q * innerStride] * bAt(q, j) }
                        #expect(abs(fresh[p * columns + j] - sum) < 1e-12, "\(shape) bias \(useBias) transposed \(transposed) B transposed \(bTransposed)")
                    }
                }
            }
        }
    }
}

struct SplitMix64Shim {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53) - 0.5
    }
}

/// Vocabulary mode: values seen at least `min count` times get their own slot, rarer and unseen
/// values share their column's slot, and a model file keeps the vocabulary.
struct VocabularyTests {
    @Test func minimumCountDecidesWhoGetsASlot() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-vocab-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = dir.appendingPathComponent("train.csv").path, test = dir.appendingPathComponent("test.csv").path
        // item: a ×3, b ×2, c ×1; shop: x ×6.
        try "click,item,shop\n1,a,x\n0,a,x\n0,a,x\n1,b,x\n0,b,x\n0,c,x\n".write(toFile: train, atomically: true, encoding: .utf8)
        try "click,item,shop\n0,b,x\n1,c,x\n0,d,y\n0,a,x\n".write(toFile: test, atomically: true, encoding: .utf8)
        var spec = FeatureSpec(label: "click", categorical: ["item", "shop"], numeric: [])
        spec.vocabularyMinCount = 2
        let (t, fitted) = try TableReader.read(path: train, format: "csv", spec: spec, fit: true)
        // Kept: item a, item b, shop x → 3 slots, then one "other" slot per column (3: item, 4: shop).
        #expect(fitted.vocabulary.count == 3 && fitted.slots == 5)
        let item = (0..<t.rows).map { t.indices[$0 * 2] }, shop = (0..<t.rows).map { t.indices[$0 * 2 + 1] }
        #expect(item[0] == item[1] && item[1] == item[2] && item[3] == item[4] && item[0] != item[3])
        #expect(item[5] == 3 && Set(shop).count == 1 && shop[0] < 3 && item[0] < 3 && item[3] < 3)
        let (u, _) = try TableReader.read(path: test, format: "csv", spec: fitted)
        #expect(u.indices == [item[3], shop[0], 3, shop[0], 3, 4, item[0], shop[0]])
        // The vocabulary survives the model file.
        let file = ModelFile(model: "lr", spec: fitted, ftrl: FTRLSettings(), weights: [Float](repeating: 0.5, count: fitted.slots + 1), trainingRows: t.rows)
        let path = dir.appendingPathComponent("m.json").path
        try file.write(to: path)
        let back = try ModelFile.read(path: path)
        #expect(back.spec.vocabulary == fitted.vocabulary && back.spec.slots == 5)
    }

    /// Quoted cells (commas inside, CRLF line ends, as in the Hillstrom file) are one value each;
    /// an unclosed quote is an error naming the line.
    @Test func quotedCellsAreOneValue() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-quoted-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("q.csv").path
        try "id,segment,visit\r\n1,\"6) $750 - $1,000\",1\r\n2,plain,0\r\n3,\"6) $750 - $1,000\",0\r\n4,\"\",1\r\n".write(toFile: path, atomically: true, encoding: .utf8)
        var spec = FeatureSpec(label: "visit", categorical: ["segment"], numeric: [])
        spec.vocabularyMinCount = 1
        let (t, fitted) = try TableReader.read(path: path, format: "csv", spec: spec, fit: true)
        #expect(t.rows == 4 && t.labels == [1, 0, 0, 1])
        #expect(t.indices[0] == t.indices[2] && t.indices[0] != t.indices[1] && fitted.vocabulary.count == 3)
        let bad = dir.appendingPathComponent("bad.csv").path
        try "id,segment,visit\n1,\"open,1\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(throws: ModelError.self) { try TableReader.read(path: bad, format: "csv", spec: spec, fit: true) }
        do { _ = try TableReader.read(path: bad, format: "csv", spec: spec, fit: true) } catch {
            #expect(error.description.contains("line 2") && error.description.contains("not closed"))
        }
        // A quoted cell may span lines and hold doubled quotes (RFC 4180): one value, the same in
        // both spellings, and the lines after it keep their numbers.
        let spans = dir.appendingPathComponent("spans.csv").path
        try "id,segment,visit\n1,\"two\nlines \"\"x\"\"\",1\n2,\"two\nlines \"\"x\"\"\",0\n3,plain,1\n4,plain,2\n".write(toFile: spans, atomically: true, encoding: .utf8)
        do { _ = try TableReader.read(path: spans, format: "csv", spec: spec, fit: true) } catch {
            #expect(error.description.contains("line 7") && error.description.contains("must be 0 or 1"))
        }
        let good = dir.appendingPathComponent("good.csv").path
        try "id,segment,visit\n1,\"two\nlines\",1\n2,\"two\nlines\",0\n3,\"say \"\"x\"\"\",1\n4,say \"x\",0\n5,plain,1\n".write(toFile: good, atomically: true, encoding: .utf8)
        let (g, gSpec) = try TableReader.read(path: good, format: "csv", spec: spec, fit: true)
        #expect(g.rows == 5 && g.labels == [1, 0, 1, 0, 1])
        // `"say ""x"""` and `say "x"` (a quote inside an unquoted cell is text) are the same value.
        #expect(g.indices[0] == g.indices[1] && g.indices[2] == g.indices[3] && g.indices[0] != g.indices[2])
        #expect(gSpec.vocabulary.count == 3)
    }
}

/// The fused kernel against a double-precision triple loop, on shapes that cross its 32-, 16- and
/// 8-column strips and its 6-row tiles, in both layouts of A and of B: the AVX2 tiles where the
/// processor has AVX2 and FMA, and also the 512-bit tiles of the 32-column strips where it has
/// AVX-512F, which must give the AVX2 tiles' result to the bit.
struct FusedGemmTests {
    @Test(.enabled(if: MatrixKernel.active.fused, "needs AVX2 and FMA"),
          arguments: [(1, 1, 1), (4, 3, 8), (4, 5, 16), (5, 7, 24), (9, 16, 17), (12, 33, 40), (8, 312, 312), (3, 2, 31),
                      (7, 20, 32), (13, 9, 70), (6, 128, 256), (128, 312, 312)])
    func fusedProductMatchesTripleLoop(shape: (Int, Int, Int)) {
        let (rows, inner, columns) = shape
        var rng = SplitMix64Shim(seed: UInt64(rows * 1000 + inner * 10 + columns))
        for (transposed, bTransposed) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = (0..<(rows * inner)).map { _ in Float(rng.next()) }, b = (0..<(inner * columns)).map { _ in Float(rng.next()) }
            let start = (0..<(rows * columns)).map { _ in Float(rng.next()) }
            let (rowStride, innerStride) = transposed ? (1, rows) : (inner, 1)
            func bAt(_ q: Int, _ j: Int) -> Float { bTransposed ? b[j * inner + q] : b[q * columns + j] }
            var want = start.map(Double.init)
            for p in 0..<rows { for j in 0..<columns { for q in 0..<inner { want[p * columns + j] += Double(a[p * rowStride + q * innerStride]) * Double(bAt(q, j)) } } }
            func product(wide: Bool) -> [Float] {
                var c = start
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    fusedGemm(ap.baseAddress!, rowStride: rowStride, innerStride: innerStride, bp.baseAddress!, cp.baseAddress!, rows: rows, inner: inner,
                              columns: columns, bTransposed: bTransposed, wide: wide)
                } } }
                return c
            }
            /// The same product from B packed beforehand into all its strips' panels (untransposed B).
            func packedProduct(wide: Bool) -> [Float] {
                var c = start
                var panels = [Float](repeating: .nan, count: packedPanelsCount(inner: inner, columns: columns, wide: wide))
                b.withUnsafeBufferPointer { bp in panels.withUnsafeMutableBufferPointer { pp in
                    packPanels(bp.baseAddress!, inner: inner, columns: columns, wide: wide, into: pp.baseAddress!)
                } }
                a.withUnsafeBufferPointer { ap in panels.withUnsafeBufferPointer { pp in c.withUnsafeMutableBufferPointer { cp in
                    fusedGemm(ap.baseAddress!, rowStride: rowStride, innerStride: innerStride, panels: pp.baseAddress!, cp.baseAddress!, rows: rows,
                              inner: inner, columns: columns, wide: wide)
                } } }
                return c
            }
            /// C = A·B or bias + A·B over a C of NaNs (never read), against adding to zeros or
            /// copies of the bias row: the same bits, from both kernels, packing and prepacked.
            func startsWithoutReadingC(wide: Bool) {
                let bias = (0..<columns).map { _ in Float(rng.next()) }
                for useBias in [false, true] {
                    var want = [Float](repeating: 0, count: rows * columns)
                    if useBias { for p in 0..<rows { for j in 0..<columns { want[p * columns + j] = bias[j] } } }
                    var panels = [Float](repeating: .nan, count: packedPanelsCount(inner: inner, columns: columns, wide: wide))
                    var fresh = [Float](repeating: .nan, count: rows * columns), prepacked = fresh
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in bias.withUnsafeBufferPointer { biasp in
                        let start = useBias ? biasp.baseAddress! : nil
                        want.withUnsafeMutableBufferPointer { cp in
                            fusedGemm(ap.baseAddress!, rowStride: rowStride, innerStride: innerStride, bp.baseAddress!, cp.baseAddress!, rows: rows,
                                      inner: inner, columns: columns, bTransposed: bTransposed, wide: wide)
                        }
                        fresh.withUnsafeMutableBufferPointer { cp in
                            fusedGemm(ap.baseAddress!, rowStride: rowStride, innerStride: innerStride, bp.baseAddress!, cp.baseAddress!, rows: rows,
                                      inner: inner, columns: columns, bTransposed: bTransposed, wide: wide, accumulate: false, bias: start)
                        }
                        if !bTransposed {
                            panels.withUnsafeMutableBufferPointer { pp in
                                packPanels(bp.baseAddress!, inner: inner, columns: columns, wide: wide, into: pp.baseAddress!)
                                prepacked.withUnsafeMutableBufferPointer { cp in
                                    fusedGemm(ap.baseAddress!, rowStride: rowStride, innerStride: innerStride, panels: UnsafePointer(pp.baseAddress!),
                                              cp.baseAddress!, rows: rows, inner: inner, columns: columns, wide: wide, accumulate: false, bias: start)
                                }
                            }
                        }
                    } } }
                    let what = "\(shape) bias \(useBias) wide \(wide) transposed \(transposed) B transposed \(bTransposed)"
                    #expect(fresh.map(\.bitPattern) == want.map(\.bitPattern), "\(what)")
                    if !bTransposed { #expect(prepacked.map(\.bitPattern) == want.map(\.bitPattern), "\(what), prepacked") }
                }
            }
            startsWithoutReadingC(wide: false)
            if MatrixKernel.active == .avx512 { startsWithoutReadingC(wide: true) }
            let c = product(wide: false)
            // Float rounding of up to 312 products of values in (−½, ½): far below 1e-4.
            for (x, y) in zip(c, want) { #expect(abs(Double(x) - y) < 1e-4, "\(shape) transposed \(transposed) B transposed \(bTransposed)") }
            if !bTransposed {
                #expect(packedProduct(wide: false).map(\.bitPattern) == c.map(\.bitPattern), "\(shape) packed, transposed \(transposed)")
            }
            if MatrixKernel.active == .avx512 {
                #expect(product(wide: true).map(\.bitPattern) == c.map(\.bitPattern), "\(shape) wide, transposed \(transposed) B transposed \(bTransposed)")
                if !bTransposed {
                    #expect(packedProduct(wide: true).map(\.bitPattern) == c.map(\.bitPattern), "\(shape) packed wide, transposed \(transposed)")
                }
            }
        }
    }

    /// An empty inner dimension: C as it was when accumulating, zeros or the bias row otherwise.
    @Test(.enabled(if: MatrixKernel.active.fused, "needs AVX2 and FMA"))
    func emptyProductStartsC() {
        let bias: [Float] = [1, -2, 3], none: [Float] = [9]
        func product(accumulate: Bool, bias: [Float]?) -> [Float] {
            var c: [Float] = [5, 6, 7, 8, 9, 10]
            none.withUnsafeBufferPointer { z in (bias ?? none).withUnsafeBufferPointer { bp in
                fusedGemm(z.baseAddress!, rowStride: 0, innerStride: 1, z.baseAddress!, &c, rows: 2, inner: 0, columns: 3,
                          accumulate: accumulate, bias: bias == nil ? nil : bp.baseAddress!)
            } }
            return c
        }
        #expect(product(accumulate: true, bias: nil) == [5, 6, 7, 8, 9, 10])
        #expect(product(accumulate: false, bias: nil) == [0, 0, 0, 0, 0, 0])
        #expect(product(accumulate: false, bias: bias) == [1, -2, 3, 1, -2, 3])
    }

    /// The AVX2 elementwise passes give the scalar formulas' values to the bit, in the vector body
    /// and the tail (37 = 4 · 8 + 5), with negative values, −0 and NaN among the inputs.
    @Test(.enabled(if: MatrixKernel.active.fused, "needs AVX2 and FMA"))
    func elementwisePassesMatchScalarFormulas() {
        var rng = SplitMix64Shim(seed: 11)
        let n = 37
        func values() -> [Float] {
            var v = (0..<n).map { _ in Float(rng.next()) * 3 }
            v[3] = -0.0; v[9] = .nan; v[20] = 0; v[35] = -.nan
            return v
        }
        let x0 = values(), u = values(), xl = values(), g = values(), start = values()
        func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }
        var next = [Float](repeating: 7, count: n)
        crossForwardAVX2(x0, u, xl, &next, count: n)
        #expect(bits(next) == bits((0..<n).map { x0[$0] * u[$0] + xl[$0] }))
        var du = [Float](repeating: 7, count: n), dx0 = start
        crossBackwardAVX2(g, x0, u, &du, &dx0, count: n)
        #expect(bits(du) == bits((0..<n).map { g[$0] * x0[$0] }))
        #expect(bits(dx0) == bits((0..<n).map { start[$0] + g[$0] * u[$0] }))
        var relu = x0
        reluAVX2(&relu, count: n)
        #expect(bits(relu) == bits(x0.map { $0 < 0 ? 0 : $0 }))
        var masked = g
        reluMaskAVX2(u, &masked, count: n)
        #expect(bits(masked) == bits((0..<n).map { u[$0] <= 0 ? 0 : g[$0] }))
    }

    /// A forward pass reading the weights' panels packed once (`PackedWeights`, as `logits` does)
    /// gives the logits of the pass that packs each weight where it multiplies by it, to the bit;
    /// and `logits` over several blocks equals the blocks' own forward passes.
    @Test(.enabled(if: MatrixKernel.active.fused, "needs AVX2 and FMA"), arguments: [DeepKind.dcnv2, .deepfm])
    func packedWeightsChangeNoBit(kind: DeepKind) throws {
        let t = FMTests.table(rows: 600, fields: 6, slots: 64, seed: 5)
        let arch = DeepArchitecture(kind: kind, fields: 6, dim: 4, hidden: [20, 9], crossLayers: 2)
        let m = DeepModel<Float>(architecture: arch, slots: 64, seed: 2)
        let packed = try #require(PackedWeights(arch, kernel: MatrixKernel.active))
        m.dense.withUnsafeBufferPointer { packed.pack($0.baseAddress!) }
        func pass(_ packed: PackedWeights?) -> [Float] {
            let ws = DeepWorkspace<Float>(arch, rows: t.rows)
            m.forward(t, rows: 0..<t.rows, ws, packed: packed)
            return (0..<t.rows).map { ws.logit[$0] }
        }
        let plain = pass(nil)
        #expect(pass(packed).map(\.bitPattern) == plain.map(\.bitPattern))
        #expect(m.logits(t, threads: 2).map { Float($0).bitPattern } == plain.map(\.bitPattern))
    }

    /// A DCN-v2's Float logits through the fused kernel equal its double-precision logits (which use
    /// the generic kernel) up to float rounding.
    @Test(.enabled(if: MatrixKernel.active.fused, "needs AVX2 and FMA"))
    func fusedForwardMatchesDoublePrecision() {
        let t = FMTests.table(rows: 256, fields: 5, slots: 64, seed: 3)
        let arch = DeepArchitecture(kind: .dcnv2, fields: 5, dim: 4, hidden: [16, 8], crossLayers: 2)
        let d = DeepModel<Double>(architecture: arch, slots: 64, seed: 9)
        let f = DeepModel<Float>(architecture: arch, slots: 64, bias: Float(d.bias), w: d.w.map(Float.init), v: d.v.map(Float.init), dense: d.dense.map(Float.init))
        let zd = d.logits(t), zf = f.logits(t, threads: 1)
        #expect(zip(zd, zf).map { abs($0 - Double($1)) }.max() ?? .infinity < 1e-5)
    }
}
